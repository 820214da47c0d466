namespace TurboOci.Formats.Lsmt;

/// <summary>The numbers of overlaybd's LSMT format (formats doc §1.1).</summary>
public static class LsmtConstants
{
    /// <summary>Name used in <see cref="TurboOci.Storage.TurboOciFormatException"/>s.</summary>
    public const string FormatName = "LSMT";

    public const int SectorSize = 512;
    public const int SectorShift = 9;

    /// <summary>Every header and trailer occupies one 4 KiB block.</summary>
    public const int HeaderBlockSize = 4096;

    /// <summary>The value overlaybd stores in the header's size field.</summary>
    public const uint HeaderStructSize = 390;

    /// <summary>Data of a committed layer and of an RW data file starts right after the header.</summary>
    public const long FirstDataSector = HeaderBlockSize / SectorSize;

    /// <summary>Largest length of one mapping, in sectors.</summary>
    public const uint MaxMappingLength = (1u << 14) - 1;

    /// <summary>The logical offset that marks a padding entry (2^50 − 1 sectors).</summary>
    public const ulong InvalidOffset = (1UL << 50) - 1;

    /// <summary>Largest mapped offset (2^55 − 1 sectors).</summary>
    public const ulong MaxMappedOffset = (1UL << 55) - 1;

    /// <summary>Most entries a committed trailer may declare, padding included.</summary>
    public const ulong MaxReadOnlyIndexEntries = 1_000_000;

    /// <summary>Most entries in a writable index file, and in a merged stack index.</summary>
    public const long MaxIndexEntries = 128_000_000;

    /// <summary>Most read-only layers opened together.</summary>
    public const int MaxStackLayers = 255;

    /// <summary>Committed indexes are padded to a multiple of this many entries (4 KiB).</summary>
    public const int IndexPaddingEntries = 256;

    /// <summary>Largest single write into a writable layer; bigger writes are split (overlaybd's MAX_IO_SIZE).</summary>
    public const int MaxIoSize = 4 << 20;

    public const int UserTagSize = 256;
}
