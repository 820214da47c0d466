using TurboOci.Formats.Ext4.Oci;
using TurboOci.Storage;
using TurboOci.Testing;
using TurboOci.Testing.Tar;

namespace TurboOci.Formats.Ext4.Tests;

/// <summary>
/// Applies the synthetic edge-case image layer by layer and compares what the kernel mounts with the
/// independent model of the merged layers (<see cref="LayerModel"/>), after every layer.
/// </summary>
public class LayerApplyTests
{
    /// <summary>Plays the role of the LSMT stack in mapped mode: the mapped device ranges read the tar's bytes.</summary>
    private sealed class CopyingMapper(byte[] tar, BlockSource device) : IFileDataMapper
    {
        public long Mapped { get; private set; }

        public void Map(long deviceOffset, long length, long tarOffset)
        {
            Assert.Equal(0, deviceOffset % 512);
            Assert.Equal(0, tarOffset % 512);
            Assert.Equal(0, length % 512);
            Assert.True(tarOffset + length <= tar.Length, $"mapping [{tarOffset}, +{length}) runs past the {tar.Length}-byte tar");
            device.WriteAt(deviceOffset, tar.AsSpan((int)tarOffset, (int)length));
            Mapped += length;
        }
    }

    [Theory]
    [InlineData("mke2fs:overlaybd-base-64g", LayerDataMode.Mapped)]
    [InlineData("mke2fs:default", LayerDataMode.Copied)]
    [InlineData("ours:metadata_csum", LayerDataMode.Mapped)]
    public void EveryPrefixOfTheSyntheticImageMountsAsTheModelSays(string kind, LayerDataMode mode)
    {
        using var image = EngineTests.MakeImage(kind);
        var layers = SyntheticLayers.Image(includeWideDirectory: false);
        for (var i = 0; i < layers.Count; i++)
        {
            var tar = layers[i].ToArray();
            using (var device = image.OpenWritable())
            using (var fs = Ext4FileSystem.Open(device, writable: true))
            {
                var mapper = new CopyingMapper(tar, device);
                var applier = new OciLayerApplier(fs, mode, mode == LayerDataMode.Mapped ? mapper : null);
                var result = applier.Apply(new MemoryStream(tar));
                Assert.Equal(tar.Length, result.TarBytes);
                Assert.Equal(layers[i].Entries.Count, result.Entries);
                if (mode == LayerDataMode.Mapped)
                {
                    // Every file byte is mapped (rounded up to 512 per file), and none was copied by the engine.
                    Assert.True(mapper.Mapped >= result.FileBytes, $"mapped {mapper.Mapped} of {result.FileBytes} file bytes");
                }
            }

            Ext4Tools.AssertClean(image.Path);
            using var mount = Ext4Mount.Mount(image.Path);
            FileTree.AssertSame(LayerModel.Merge(layers.Take(i + 1)), FileTree.FromDirectory(mount.MountPoint, "lost+found"));
        }
    }

    [Fact]
    public void TheWideDirectoryLayerAppliesCleanly()
    {
        using var image = EngineTests.MakeImage("mke2fs:overlaybd-base");
        var layers = new[] { SyntheticLayers.WideDirectory() };
        image.Modify(fs => new OciLayerApplier(fs, LayerDataMode.Copied).Apply(new MemoryStream(layers[0].ToArray())));
        Ext4Tools.AssertClean(image.Path);
        using var mount = Ext4Mount.Mount(image.Path);
        FileTree.AssertSame(LayerModel.Merge(layers), FileTree.FromDirectory(mount.MountPoint, "lost+found"));
    }
}
