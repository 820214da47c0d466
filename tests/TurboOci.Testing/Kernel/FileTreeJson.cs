using System.Text.Json;

namespace TurboOci.Testing;

/// <summary>
/// A <see cref="FileTree"/> saved as JSON with every field in full (unlike <see cref="FileTreeEntry.ToString"/>,
/// which shortens hashes), so a tree read on one side (the host's mount of an exported disk) can be compared
/// exactly with one read on the other (the guest's mount of the same stack served by a frontend).
/// </summary>
public static class FileTreeJson
{
    private static readonly JsonSerializerOptions s_options = new() { WriteIndented = false };

    public static void Save(FileTree tree, string path)
    {
        ArgumentNullException.ThrowIfNull(tree);
        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(tree.Entries, s_options));
    }

    public static FileTree Load(string path)
    {
        var entries = JsonSerializer.Deserialize<Dictionary<string, FileTreeEntry>>(File.ReadAllBytes(path), s_options)
            ?? throw new InvalidDataException($"{path} holds no file tree");
        return new FileTree(entries);
    }
}
