using System.Globalization;
using System.Text;

namespace Chord.Bench;

/// <summary>What every scenario shares: the options, the console, the frame counter and the loopback floor.</summary>
public sealed class BenchContext : IDisposable
{
    private double? _floorMicros;

    public BenchContext(BenchOptions options, TextWriter output)
    {
        Options = options;
        Output = output;
        Allocations = options.AllocationProfile ? new AllocationSampler() : null;
    }

    public BenchOptions Options { get; }

    public TextWriter Output { get; }

    public FrameCounter Frames { get; } = new();

    /// <summary>The allocation sampler when <c>--alloc-profile</c> is on.</summary>
    public AllocationSampler? Allocations { get; private set; }

    /// <summary>The tables each scenario produced, by scenario name.</summary>
    public Dictionary<string, List<ResultTable>> Results { get; } = new(StringComparer.Ordinal);

    /// <summary>The loopback round trip (p50, µs) every latency is compared with; measured briefly when the floor scenario has not run.</summary>
    public async Task<double> FloorMicrosAsync()
    {
        if (_floorMicros is { } floor)
        {
            return floor;
        }

        Log("measuring the loopback floor for the ×floor columns (2 s)");
        var m = await FloorScenario.MeasureAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2), 64, this);
        _floorMicros = m.Latency.PercentileMicros(0.5);
        return _floorMicros.Value;
    }

    public void SetFloor(double micros) => _floorMicros = micros;

    public void Log(string line) => Output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {line}");

    /// <summary>Prints the scenario's tables and writes them to <c>SCENARIO.md</c> in the results directory.</summary>
    public void Publish(string scenario, IReadOnlyList<ResultTable> tables, IEnumerable<string> preamble)
    {
        Results[scenario] = [.. tables];
        var text = new StringBuilder();
        text.Append("## ").AppendLine(scenario).AppendLine();
        text.Append("Command: `").Append(Options.CommandLine).AppendLine("`").AppendLine();
        text.Append("Run: ").Append(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture))
            .Append(", mode ").Append(Options.Quick ? "--quick" : "full").Append(", ")
            .Append(Options.Duration.TotalSeconds.ToString("0.##", CultureInfo.InvariantCulture)).Append(" s measured per cell after ")
            .Append(Options.Warmup.TotalSeconds.ToString("0.##", CultureInfo.InvariantCulture)).Append(" s warm-up, ")
            .Append(Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)).Append(" logical CPUs")
            .Append(LoadAverage() is { } load ? $", load average {load} (1, 5, 15 min) as the scenario ended" : string.Empty).AppendLine(".").AppendLine();
        foreach (var line in preamble)
        {
            text.Append("* ").AppendLine(line);
        }

        text.AppendLine();
        foreach (var table in tables)
        {
            text.AppendLine(table.ToMarkdown());
        }

        var markdown = text.ToString();
        Output.WriteLine();
        Output.WriteLine(markdown);
        Directory.CreateDirectory(Options.ResultsDirectory);
        File.WriteAllText(Path.Combine(Options.ResultsDirectory, scenario + ".md"), markdown);
    }

    public static readonly string[] CommonNotes =
    [
        "Everything runs in one process: the callers, every node (and silo) and the GC; `alloc B/op` is "
            + "GC.GetTotalAllocatedBytes over the measured window divided by the operations completed in it, so it counts "
            + "all of them together.",
        "`CPU µs/op` is this process's CPU time (every thread, user and kernel) over the window per operation; "
            + "it is the steadiest number on a shared machine, since other processes' load lengthens latencies but not it.",
        "`frames/op` and `bytes/op` are the frames and bytes all ring nodes sent (the `Chord.Dht` meter's "
            + "`chord.mesh.frames_out` and `chord.mesh.bytes_out`, read by a MeterListener) per operation.",
        "Latencies are per operation, from a log-bucket histogram (32 sub-buckets per power of two, ≤3% error); "
            + "`×floor` divides by the p50 of the `floor` scenario (one loopback TCP ping-pong of one frame).",
        "Other processes' load (the load average above counts this run too: about 1-2 while a cell runs) lengthens "
            + "latencies and lowers ops/s but changes CPU µs/op and alloc B/op much less: compare runs by those.",
    ];

    /// <summary>The first three fields of /proc/loadavg, or null where there is none.</summary>
    private static string? LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length >= 3 ? string.Join(", ", fields[..3]) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        Frames.Dispose();
        Allocations?.Dispose();
    }
}
