using TurboOci.Formats.Ext4.OnDisk;
using TurboOci.Storage;

namespace TurboOci.Formats.Ext4;

/// <summary>
/// A managed ext4 filesystem over a <see cref="BlockSource"/>: reads every structure overlaybd's base
/// layer uses and mutates the filesystem the way libext2fs does, keeping bitmaps, group descriptor
/// counts and checksums, superblock counters and metadata_csum checksums valid.
/// </summary>
/// <remarks>
/// Metadata blocks go through a write-back cache (<see cref="Flush"/> writes them); file data in
/// copied mode is written straight to the device. The engine is single-threaded: one writer at a time.
/// The journal (if any) must be clean and is left untouched, like the resize inode.
/// </remarks>
public sealed partial class Ext4FileSystem : IDisposable
{
    private readonly BlockSource _device;
    private readonly Superblock _sb;
    private readonly GroupDescriptorTable _gdt;
    private readonly int _blockSize;
    private readonly uint _csumSeed;
    private readonly bool _metadataCsum;
    private readonly bool _writable;
    private readonly Dictionary<long, byte[]> _cache = [];
    private readonly HashSet<long> _dirtyBlocks = [];
    private readonly HashSet<int> _dirtyGroups = [];
    private bool _superDirty;

    private Ext4FileSystem(BlockSource device, Superblock sb, GroupDescriptorTable gdt, bool writable)
    {
        _device = device;
        _sb = sb;
        _gdt = gdt;
        _blockSize = sb.BlockSize;
        _metadataCsum = sb.HasMetadataChecksums;
        _csumSeed = _metadataCsum ? sb.ChecksumSeed : 0;
        _writable = writable;
    }

    public Superblock Superblock => _sb;

    public GroupDescriptorTable GroupDescriptors => _gdt;

    public int BlockSize => _blockSize;

    public long BlocksCount => _sb.BlocksCount;

    /// <summary>The device holding the filesystem (the engine writes copied file data straight to it).</summary>
    public BlockSource Device => _device;

    /// <summary>Flush automatically once this many metadata blocks are cached, to bound memory.</summary>
    public int MaxCachedBlocks { get; set; } = 32768;

    /// <summary>The clock used for ctime/dtime of changes; fixed in tests for reproducible images.</summary>
    public Func<Ext4Time> Clock { get; set; } = () => Ext4Time.FromDateTimeOffset(DateTimeOffset.UtcNow);

    /// <summary>Opens an existing filesystem. Writing needs a writable device and a supported feature set.</summary>
    public static Ext4FileSystem Open(BlockSource device, bool writable = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (writable && !device.CanWrite)
        {
            throw new ArgumentException("the device is read-only", nameof(device));
        }

        if (device.Size < Ext4Constants.SuperblockOffset + Ext4Constants.SuperblockSize)
        {
            Fail("superblock", Ext4Constants.SuperblockOffset, $"the device ({device.Size} bytes) ends before the superblock does");
        }

        Span<byte> sbBytes = stackalloc byte[Ext4Constants.SuperblockSize];
        device.ReadExactlyAt(Ext4Constants.SuperblockOffset, sbBytes);
        var sb = Superblock.Parse(sbBytes, device.Size);
        if (sb.BlockSize > 16384)
        {
            Fail("superblock.s_log_block_size", Ext4Constants.SuperblockOffset, "block sizes over 16 KiB are not supported");
        }

        var unsupportedRo = sb.RoCompatFeatures & ~RoCompatFeatures.Supported;
        if (writable && unsupportedRo != 0)
        {
            Fail("superblock.s_feature_ro_compat", Ext4Constants.SuperblockOffset + SuperblockFields.FeatureRoCompat,
                $"cannot write a filesystem with {unsupportedRo}");
        }

        if (writable && sb.HasCompat(CompatFeatures.HasJournal) && sb.HasIncompat(IncompatFeatures.Recover))
        {
            Fail("superblock.s_feature_incompat", Ext4Constants.SuperblockOffset + SuperblockFields.FeatureIncompat,
                "the journal needs recovery; replay it first (e2fsck)");
        }

        var groups = sb.GroupCount;
        var descSize = sb.DescriptorSize;
        var gdtBytes = new byte[checked(groups * descSize)];
        var gdtOffset = checked((sb.FirstDataBlock + 1L) * sb.BlockSize);
        if (gdtOffset + gdtBytes.Length > sb.BlocksCount * sb.BlockSize)
        {
            Fail("group descriptors", gdtOffset, $"a table of {groups} descriptors runs past the end of the filesystem");
        }

        device.ReadExactlyAt(gdtOffset, gdtBytes);

        var gdt = new GroupDescriptorTable(gdtBytes, groups, descSize);
        var fs = new Ext4FileSystem(device, sb, gdt, writable);
        fs.ValidateGroupDescriptors(gdtOffset);
        return fs;
    }

    private void ValidateGroupDescriptors(long gdtOffset)
    {
        var itableBlocks = InodeTableBlocks;
        for (var g = 0; g < _gdt.GroupCount; g++)
        {
            var at = gdtOffset + (long)g * _gdt.DescriptorSize;
            if (_sb.HasGroupChecksums)
            {
                var expected = Ext4Checksums.GroupDescriptor(_sb, _csumSeed, g, _gdt.Descriptor(g));
                if (expected != _gdt.StoredChecksum(g))
                {
                    Fail($"group {g}.bg_checksum", at + GroupDescriptorFields.Checksum,
                        $"stored 0x{_gdt.StoredChecksum(g):X4}, computed 0x{expected:X4}");
                }
            }

            CheckBlockRange($"group {g}.bg_block_bitmap", at, _gdt.BlockBitmap(g), 1);
            CheckBlockRange($"group {g}.bg_inode_bitmap", at, _gdt.InodeBitmap(g), 1);
            CheckBlockRange($"group {g}.bg_inode_table", at, _gdt.InodeTable(g), itableBlocks);
            if (_gdt.FreeBlocks(g) > _sb.BlocksPerGroup || _gdt.FreeInodes(g) > _sb.InodesPerGroup)
            {
                Fail($"group {g}.bg_free_*_count", at, "more free blocks or inodes than the group holds");
            }
        }
    }

    private void CheckBlockRange(string field, long at, long block, long count)
    {
        if (block <= _sb.FirstDataBlock || block > _sb.BlocksCount - count)
        {
            Fail(field, at, $"block {block} (+{count}) lies outside the filesystem of {_sb.BlocksCount} blocks");
        }
    }

    internal long InodeTableBlocks => ((long)_sb.InodesPerGroup * _sb.InodeSize + _blockSize - 1) / _blockSize;

    // ---- block cache -------------------------------------------------------------------------

    /// <summary>Reads a metadata block through the cache. The returned array is the cached copy: edit it and call <see cref="WriteBlock"/>.</summary>
    internal byte[] ReadBlock(long block, string what)
    {
        if (_cache.TryGetValue(block, out var cached))
        {
            return cached;
        }

        if (block < 0 || block >= _sb.BlocksCount)
        {
            // The pointer's own location is not known here; the message names the bad block number.
            Fail(what, -1, $"block {block} lies outside the filesystem of {_sb.BlocksCount} blocks");
        }

        var buffer = new byte[_blockSize];
        var offset = block * _blockSize;
        if (_device.ReadAt(offset, buffer) != _blockSize)
        {
            Fail(what, offset, "the device ends inside this block");
        }

        _cache[block] = buffer;
        return buffer;
    }

    internal void WriteBlock(long block, byte[] data)
    {
        EnsureWritable();
        if (block <= _sb.FirstDataBlock || block >= _sb.BlocksCount)
        {
            throw new InvalidOperationException($"refusing to write metadata to block {block}");
        }

        _cache[block] = data;
        _dirtyBlocks.Add(block);
    }

    /// <summary>Forgets a freed block, so a stale cached copy can never overwrite its next owner.</summary>
    private void DropCachedBlock(long block)
    {
        _cache.Remove(block);
        _dirtyBlocks.Remove(block);
    }

    private void EnsureWritable()
    {
        if (!_writable)
        {
            throw new InvalidOperationException("the filesystem was opened read-only");
        }
    }

    /// <summary>Flushes when the cache has grown past <see cref="MaxCachedBlocks"/>; called between operations.</summary>
    private void MaybeFlush()
    {
        if (_cache.Count > MaxCachedBlocks)
        {
            Flush();
        }
    }

    /// <summary>Writes every dirty metadata block, refreshes group checksums, the group table and the superblock.</summary>
    public void Flush()
    {
        if (!_writable)
        {
            return;
        }

        foreach (var g in _dirtyGroups)
        {
            UpdateGroupChecksums(g);
        }

        if (_dirtyGroups.Count > 0)
        {
            var gdtOffset = (_sb.FirstDataBlock + 1L) * _blockSize;
            _device.WriteAt(gdtOffset, _gdt.Bytes);
            _dirtyGroups.Clear();
            _superDirty = true;
        }

        WriteDirtyBlocks();
        _dirtyBlocks.Clear();
        _cache.Clear();
        if (_superDirty)
        {
            var sbBytes = new byte[Ext4Constants.SuperblockSize];
            _sb.WriteTo(sbBytes);
            _device.WriteAt(Ext4Constants.SuperblockOffset, sbBytes);
            _superDirty = false;
        }

        _device.Flush();
    }

    /// <summary>
    /// Writes the dirty blocks in block order, runs of adjacent ones (inode tables, new directories) as one write:
    /// the device below is an LSMT layer, where every write is an index entry.
    /// </summary>
    private void WriteDirtyBlocks()
    {
        const int MaxRunBlocks = 256;
        var run = new byte[MaxRunBlocks * _blockSize];
        long runStart = -1;
        var runBlocks = 0;
        foreach (var block in _dirtyBlocks.Order())
        {
            if (runBlocks == MaxRunBlocks || (runBlocks > 0 && block != runStart + runBlocks))
            {
                _device.WriteAt(runStart * _blockSize, run.AsSpan(0, runBlocks * _blockSize));
                runBlocks = 0;
            }

            if (runBlocks == 0)
            {
                runStart = block;
            }

            _cache[block].CopyTo(run, runBlocks++ * _blockSize);
        }

        if (runBlocks > 0)
        {
            _device.WriteAt(runStart * _blockSize, run.AsSpan(0, runBlocks * _blockSize));
        }
    }

    private void UpdateGroupChecksums(int g)
    {
        if (_metadataCsum)
        {
            if (!_gdt.Flags(g).HasFlag(GroupFlags.BlockUninit))
            {
                var bitmap = ReadBlock(_gdt.BlockBitmap(g), "block bitmap");
                _gdt.SetBlockBitmapChecksum(g, Crc32C.Compute(_csumSeed, bitmap.AsSpan(0, (int)(_sb.BlocksPerGroup / 8))));
            }

            if (!_gdt.Flags(g).HasFlag(GroupFlags.InodeUninit))
            {
                var bitmap = ReadBlock(_gdt.InodeBitmap(g), "inode bitmap");
                _gdt.SetInodeBitmapChecksum(g, Crc32C.Compute(_csumSeed, bitmap.AsSpan(0, (int)(_sb.InodesPerGroup / 8))));
            }
        }

        if (_sb.HasGroupChecksums)
        {
            _gdt.SetChecksum(g, Ext4Checksums.GroupDescriptor(_sb, _csumSeed, g, _gdt.Descriptor(g)));
        }
    }

    public void Dispose()
    {
        Flush();
    }

    internal static void Fail(string field, long offset, string problem) =>
        TurboOciFormatException.Throw(Ext4Constants.FormatName, field, offset, problem);
}
