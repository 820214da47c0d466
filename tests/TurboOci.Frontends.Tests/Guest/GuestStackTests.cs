using TurboOci.Images;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Guest;

/// <summary>The host side of <see cref="GuestStack"/>: what it records is what the stack really holds.</summary>
public sealed class GuestStackTests
{
    [Fact]
    public void TheRecordedHashAndTreeDescribeTheIndexedStack()
    {
        using var stack = GuestStack.Create();
        using (var disk = ImageStack.Open(ImageConfig.Load(stack.ConfigPath)))
        {
            Assert.Equal(GuestStack.DefaultDiskSize, disk.Size);
            Assert.Equal(stack.RawSha256, ReferenceFixtures.Sha256Of(disk));
        }

        // The JSON the guest agent reads back is the same tree, every hash and xattr in full.
        Assert.Empty(FileTree.Compare(stack.ExpectedTree, FileTreeJson.Load(stack.ExpectedTreePath)));
        Assert.True(stack.ExpectedTree.Entries[stack.LargestFile].Size > 100_000);
    }
}
