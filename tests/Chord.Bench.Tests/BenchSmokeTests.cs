using System.Globalization;

namespace Chord.Bench.Tests;

/// <summary>Keeps the load generator compiling and working: a shrunken <c>--quick ring</c> must produce a sane table. No speed is asserted.</summary>
public sealed class BenchSmokeTests : IDisposable
{
    private readonly string _results = Path.Combine(Path.GetTempPath(), "chord-bench-test-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Quick_ring_writes_a_table_with_a_row_per_cell_and_positive_counts()
    {
        var output = new StringWriter();
        var code = await BenchRunner.RunAsync(
            ["ring", "--quick", "--nodes", "3", "--values", "64", "--callers", "1,8", "--duration", "0.5", "--warmup", "0.2", "--results", _results],
            output);

        Assert.True(code == 0, output.ToString());
        var file = Path.Combine(_results, "ring.md");
        Assert.True(File.Exists(file), $"no {file}; output: {output}");
        var markdown = await File.ReadAllTextAsync(file);
        Assert.Contains(markdown, output.ToString()); // printed as well as written

        var (header, rows) = ParseTable(markdown);
        int Col(string name) => Array.IndexOf(header, name) is >= 0 and var i ? i : throw new Xunit.Sdk.XunitException($"no column '{name}' in [{string.Join(", ", header)}]");

        // One row per cell of the grid: 1 ring size × 1 value size × 2 caller counts × 3 mixes.
        Assert.Equal(6, rows.Count);
        var cells = rows.Select(r => (r[Col("nodes")], r[Col("mix")], r[Col("callers")], r[Col("value B")])).ToHashSet();
        foreach (var callers in new[] { "1", "8" })
        {
            foreach (var mix in new[] { "100% get", "100% set", "90/10" })
            {
                Assert.Contains(("3", mix, callers, "64"), cells);
            }
        }

        foreach (var row in rows)
        {
            var what = string.Join(" | ", row);
            Assert.True(Number(row[Col("ops/s")]) > 0, what);
            // A write always crosses the network (its accepts need answers from three distinct nodes); a read may not:
            // it asks the positions its node owns first, and with three nodes' random ids one node can own three of
            // most keys' five positions (one CI run read at 0.0 frames per get).
            var writes = row[Col("mix")] != "100% get";
            Assert.True(writes ? Number(row[Col("frames/op")]) > 0 : Number(row[Col("frames/op")]) >= 0, what);
            Assert.True(writes ? Number(row[Col("bytes/op")]) > 0 : Number(row[Col("bytes/op")]) >= 0, what);
            Assert.True(Number(row[Col("alloc B/op")]) > 0, what);
            var p50 = Number(row[Col("p50 µs")]);
            var p99 = Number(row[Col("p99 µs")]);
            Assert.True(p50 > 0 && p99 >= p50 && Number(row[Col("p99.9 µs")]) >= p99, what);
            // Two nodes' proposers writing one key at once can leave one write "may or may not have been applied"
            // (an honest outcome of a duel, counted as an error): rare, never more than 1% of a cell's operations.
            Assert.True(Number(row[Col("errors")]) <= Math.Max(2, Number(row[Col("ops/s")]) * 0.5 / 100), what);
        }
    }

    [Fact]
    public async Task Strangers_writes_a_row_per_attack_and_count_each_closed_by_the_node_within_its_budget()
    {
        var output = new StringWriter();
        var code = await BenchRunner.RunAsync(["strangers", "--quick", "--strangers", "4", "--results", _results], output);

        Assert.True(code == 0, output.ToString());
        var (header, rows) = ParseTable(await File.ReadAllTextAsync(Path.Combine(_results, "strangers.md")));
        int Col(string name) => Array.IndexOf(header, name) is >= 0 and var i ? i : throw new Xunit.Sdk.XunitException($"no column '{name}' in [{string.Join(", ", header)}]");
        Assert.Equal(["huge", "flood", "hold"], rows.Select(r => r[Col("attack")]));
        foreach (var row in rows)
        {
            var what = string.Join(" | ", row);
            Assert.Equal("4", row[Col("connections")]);
            Assert.True(Number(row[Col("node's pre-auth peak B")]) is > 0 and <= 16_384, what); // the default budget
            Assert.Equal(row[Col("attack")] == "hold" ? "0 of 4" : "4 of 4", row[Col("limit closes")]);
            Assert.Equal("100/100", row[Col("gets after")]);
            Assert.True(Number(row[Col("RSS before MB")]) > 0 && Number(row[Col("heap held MB")]) > 0, what); // the samples were read
        }
    }

    [Fact]
    public async Task A_bad_argument_is_refused_with_what_is_allowed()
    {
        var output = new StringWriter();
        var code = await BenchRunner.RunAsync(["ring", "--nodes", "three"], output);

        Assert.Equal(2, code);
        Assert.Contains("--nodes takes a comma-separated list of whole numbers from 1 to 64; 'three' is not one.", output.ToString());
        Assert.Contains("usage:", output.ToString());
        Assert.False(Directory.Exists(_results));
    }

    [Fact]
    public async Task An_unknown_scenario_names_the_allowed_ones()
    {
        var output = new StringWriter();
        var code = await BenchRunner.RunAsync(["rings"], output);

        Assert.Equal(2, code);
        Assert.Contains("Unknown scenario 'rings'; allowed: floor, ring, grain, storage, scale, strangers, all.", output.ToString());
    }

    public void Dispose()
    {
        if (Directory.Exists(_results))
        {
            Directory.Delete(_results, recursive: true);
        }
    }

    private static double Number(string cell) => double.Parse(cell, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

    /// <summary>The first markdown table of the file: its header and its data rows.</summary>
    private static (string[] Header, List<string[]> Rows) ParseTable(string markdown)
    {
        var lines = markdown.Split('\n').Select(l => l.Trim()).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')).ToList();
        Assert.True(lines.Count >= 2, "no markdown table in the result file");
        static string[] Cells(string line) => [.. line.Trim('|').Split('|').Select(c => c.Trim())];
        return (Cells(lines[0]), [.. lines.Skip(2).Select(Cells)]);
    }
}
