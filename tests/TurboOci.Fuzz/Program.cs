using System.Diagnostics;

namespace TurboOci.Fuzz;

/// <summary>
/// turbooci-fuzz list | replay TARGET DIR | run TARGET DIR [--seconds N] [--seed N] | afl TARGET
/// <list type="bullet">
/// <item>replay: runs every file of a corpus folder once; non-zero exit on any unexpected exception.</item>
/// <item>run: a bounded mutation fuzzer (bit flips, truncations, splices, interesting integers) over a
/// corpus, without coverage feedback; saves inputs that fail into DIR/crashes/.</item>
/// <item>afl: the entry point for AFL++ through SharpFuzz (instrument with the sharpfuzz tool first).</item>
/// </list>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine("usage: TurboOci.Fuzz list | replay TARGET DIR | run TARGET DIR [--seconds N] [--seed N] | afl TARGET");
            return args.Length == 0 ? 1 : 0;
        }

        switch (args[0])
        {
            case "list":
                foreach (var t in FuzzTargets.All)
                {
                    Console.WriteLine(t.Name);
                }

                return 0;
            case "replay" when args.Length == 3:
                return Replay(FuzzTargets.Get(args[1]), args[2]);
            case "run" when args.Length >= 3:
                var seconds = Option(args, "--seconds", 60);
                var seed = Option(args, "--seed", Environment.TickCount);
                return Mutate(FuzzTargets.Get(args[1]), args[2], TimeSpan.FromSeconds(seconds), seed);
            case "afl" when args.Length == 2:
                var target = FuzzTargets.Get(args[1]);
                SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
                {
                    using var buffer = new MemoryStream();
                    stream.CopyTo(buffer);
                    if (FuzzTargets.RunOne(target, buffer.ToArray()) is { } e)
                    {
                        throw e;
                    }
                });
                return 0;
            default:
                Console.Error.WriteLine($"bad arguments: {string.Join(' ', args)}");
                return 1;
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    private static int Replay(IFuzzTarget target, string dir)
    {
        var failures = 0;
        foreach (var file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
        {
            if (FuzzTargets.RunOne(target, File.ReadAllBytes(file)) is { } e)
            {
                failures++;
                Console.Error.WriteLine($"{file}: {e}");
            }
        }

        return failures == 0 ? 0 : 1;
    }

    private static int Mutate(IFuzzTarget target, string dir, TimeSpan budget, int seed)
    {
        var corpus = Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        if (corpus.Count == 0)
        {
            corpus.Add([]);
        }

        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        long runs = 0;
        var failures = 0;
        while (clock.Elapsed < budget)
        {
            var input = Mutator.Mutate(corpus[random.Next(corpus.Count)], corpus[random.Next(corpus.Count)], random);
            runs++;
            if (FuzzTargets.RunOne(target, input) is { } e)
            {
                failures++;
                var crashes = Directory.CreateDirectory(Path.Combine(dir, "crashes")).FullName;
                var name = Path.Combine(crashes, $"crash-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(input))[..16]}");
                File.WriteAllBytes(name, input);
                Console.Error.WriteLine($"{name}: {e.GetType().Name}: {e.Message}");
            }
        }

        Console.WriteLine($"{target.Name}: {runs} runs in {clock.Elapsed.TotalSeconds:F0} s, seed {seed}, {failures} failures");
        return failures == 0 ? 0 : 1;
    }
}

/// <summary>Byte-level mutations: the classic AFL havoc set, without coverage feedback.</summary>
public static class Mutator
{
    private static readonly long[] s_interesting = [0, 1, -1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, 4096, 512];

    public static byte[] Mutate(byte[] input, byte[] other, Random random)
    {
        var data = new List<byte>(input);
        var rounds = 1 + random.Next(8);
        for (var r = 0; r < rounds; r++)
        {
            switch (random.Next(7))
            {
                case 0 when data.Count > 0: // flip a bit
                    var i = random.Next(data.Count);
                    data[i] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when data.Count > 0: // random byte
                    data[random.Next(data.Count)] = (byte)random.Next(256);
                    break;
                case 2 when data.Count > 0: // truncate
                    var keep = random.Next(data.Count);
                    data.RemoveRange(keep, data.Count - keep);
                    break;
                case 3 when data.Count >= 8: // interesting integer, little-endian
                    var value = s_interesting[random.Next(s_interesting.Length)];
                    var width = 1 << random.Next(4);
                    var at = random.Next(data.Count - width + 1);
                    for (var b = 0; b < width; b++)
                    {
                        data[at + b] = (byte)(value >> (8 * b));
                    }

                    break;
                case 4 when other.Length > 0: // splice from another input
                    var from = random.Next(other.Length);
                    var count = random.Next(Math.Min(4096, other.Length - from) + 1);
                    var into = random.Next(data.Count + 1);
                    data.InsertRange(into, other.AsSpan(from, count).ToArray());
                    break;
                case 5 when data.Count > 1: // delete a run
                    var start = random.Next(data.Count);
                    data.RemoveRange(start, random.Next(Math.Min(512, data.Count - start) + 1));
                    break;
                default: // duplicate a run
                    if (data.Count > 0)
                    {
                        var s = random.Next(data.Count);
                        var n = random.Next(Math.Min(512, data.Count - s) + 1);
                        data.InsertRange(random.Next(data.Count + 1), data.GetRange(s, n));
                    }

                    break;
            }
        }

        return [.. data];
    }
}
