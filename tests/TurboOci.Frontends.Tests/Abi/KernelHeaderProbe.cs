using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using TurboOci.Testing;

namespace TurboOci.Frontends.Tests.Abi;

/// <summary>
/// Asks the C compiler what the kernel's uapi headers say: a generated program includes the headers and
/// prints the value of each C expression (sizeof, offsetof, macros), so tests compare our structs and
/// constants with the headers rather than with numbers we wrote down twice.
/// </summary>
internal static class KernelHeaderProbe
{
    /// <summary>Compiles and runs the probe; returns each expression's value, keyed by its text.</summary>
    public static IReadOnlyDictionary<string, long> Evaluate(IEnumerable<string> includes, IEnumerable<string> expressions)
    {
        var c = new StringBuilder();
        foreach (var include in new[] { "stdio.h", "stddef.h" }.Concat(includes))
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"#include <{include}>");
        }

        c.AppendLine("#define P(name, value) printf(\"%s=%lld\\n\", name, (long long)(value))");
        c.AppendLine("int main(void) {");
        foreach (var expression in expressions)
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"P(\"{expression.Replace("\"", "\\\"", StringComparison.Ordinal)}\", {expression});");
        }

        c.AppendLine("return 0; }");
        using var temp = new TempDir("turbooci-abi-probe-");
        File.WriteAllText(temp.File("probe.c"), c.ToString());
        Tool.RunChecked("gcc", "-Wall", "-Werror", "-o", temp.File("probe"), temp.File("probe.c"));
        return Tool.RunChecked(temp.File("probe")).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .ToDictionary(p => p[0], p => long.Parse(p[1], CultureInfo.InvariantCulture));
    }

    /// <summary>The expressions for a struct's size and each named field's offset.</summary>
    public static IEnumerable<string> Layout(string cStruct, IEnumerable<string> fields) =>
        fields.Select(field => $"offsetof(struct {cStruct}, {field})").Prepend($"sizeof(struct {cStruct})");

    /// <summary>Asserts that <paramref name="ours"/> has the C struct's size and, field by field in declaration order, its offsets.</summary>
    public static void AssertLayout(IReadOnlyDictionary<string, long> kernel, string cStruct, Type ours, IReadOnlyList<string> fields)
    {
        Assert.Equal(kernel[$"sizeof(struct {cStruct})"], Marshal.SizeOf(ours));
        var ourFields = ours.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).OrderBy(f => f.MetadataToken).ToList();
        Assert.Equal(fields.Count, ourFields.Count);
        for (var i = 0; i < fields.Count; i++)
        {
            var expected = kernel[$"offsetof(struct {cStruct}, {fields[i]})"];
            var actual = (long)Marshal.OffsetOf(ours, ourFields[i].Name);
            Assert.True(expected == actual, $"{cStruct}.{fields[i]} is at {expected} in the kernel, {ourFields[i].Name} at {actual} in {ours.Name}");
        }
    }
}
