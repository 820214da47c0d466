namespace TurboOci.Frontends.Tcmu;

/// <summary>SCSI sense keys (SPC-4 table 48) that a disk answers with.</summary>
public enum ScsiSenseKey : byte
{
    NoSense = 0x0,
    NotReady = 0x2,
    MediumError = 0x3,
    HardwareError = 0x4,
    IllegalRequest = 0x5,
    DataProtect = 0x7,
    AbortedCommand = 0xb,
}

/// <summary>
/// A CHECK CONDITION: sense key plus additional sense code and qualifier, written as fixed-format sense data
/// (response code 0x70, 18 bytes), which is what the kernel's sd driver expects when D_SENSE is off.
/// </summary>
public readonly record struct ScsiSense(ScsiSenseKey Key, byte Asc, byte Ascq)
{
    public const int FixedLength = 18;

    public static readonly ScsiSense InvalidOperationCode = new(ScsiSenseKey.IllegalRequest, 0x20, 0x00);
    public static readonly ScsiSense InvalidFieldInCdb = new(ScsiSenseKey.IllegalRequest, 0x24, 0x00);
    public static readonly ScsiSense InvalidFieldInParameterList = new(ScsiSenseKey.IllegalRequest, 0x26, 0x00);
    public static readonly ScsiSense ParameterListLengthError = new(ScsiSenseKey.IllegalRequest, 0x1a, 0x00);
    public static readonly ScsiSense LbaOutOfRange = new(ScsiSenseKey.IllegalRequest, 0x21, 0x00);
    public static readonly ScsiSense SavingParametersNotSupported = new(ScsiSenseKey.IllegalRequest, 0x39, 0x00);
    public static readonly ScsiSense WriteProtected = new(ScsiSenseKey.DataProtect, 0x27, 0x00);
    public static readonly ScsiSense UnrecoveredReadError = new(ScsiSenseKey.MediumError, 0x11, 0x00);
    public static readonly ScsiSense WriteError = new(ScsiSenseKey.MediumError, 0x0c, 0x00);

    /// <summary>Writes the 18-byte fixed-format sense (current error) into the start of <paramref name="destination"/>.</summary>
    public void WriteFixed(Span<byte> destination)
    {
        var sense = destination[..FixedLength];
        sense.Clear();
        sense[0] = 0x70;
        sense[2] = (byte)Key;
        sense[7] = FixedLength - 8;
        sense[12] = Asc;
        sense[13] = Ascq;
    }

    public override string ToString() => $"{Key} ASC 0x{Asc:x2} ASCQ 0x{Ascq:x2}";
}

/// <summary>Thrown by the CDB parser and the command executor: the command ends in CHECK CONDITION with this sense.</summary>
public sealed class ScsiCheckConditionException(ScsiSense sense, string message) : Exception($"{message} ({sense})")
{
    public ScsiSense Sense { get; } = sense;
}

/// <summary>SCSI status bytes (SAM-5).</summary>
public static class ScsiStatus
{
    public const byte Good = 0x00;
    public const byte CheckCondition = 0x02;
}
