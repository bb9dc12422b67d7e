using System.Globalization;

namespace Chord.Bench;

/// <summary>The command line: <c>SCENARIO [--quick] [--duration S] [--warmup S] [--nodes 3,5] [--values 64] [--callers 1,64] [--results DIR]</c>.</summary>
public sealed class BenchOptions
{
    public static readonly string[] Scenarios = ["floor", "ring", "grain", "storage", "scale", "strangers", "all"];

    public required string Scenario { get; init; }

    public bool Quick { get; init; }

    /// <summary>How long each cell of a grid is measured.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>How long each cell runs before it is measured (JIT, connections, caches).</summary>
    public TimeSpan Warmup { get; init; }

    /// <summary>Ring sizes of the <c>ring</c> scenario.</summary>
    public IReadOnlyList<int>? Nodes { get; init; }

    /// <summary>Ring sizes of the <c>scale</c> scenario.</summary>
    public IReadOnlyList<int>? ScaleNodes { get; init; }

    /// <summary>Connection counts of the <c>strangers</c> scenario.</summary>
    public IReadOnlyList<int>? Strangers { get; init; }

    /// <summary>Value sizes in bytes.</summary>
    public IReadOnlyList<int>? Values { get; init; }

    /// <summary>Concurrent caller counts.</summary>
    public IReadOnlyList<int>? Callers { get; init; }

    /// <summary>Operation mixes of the ring and grain scenarios.</summary>
    public IReadOnlyList<Mix>? Mixes { get; init; }

    /// <summary>Print the top allocated types of each cell (sampled by <see cref="AllocationSampler"/>).</summary>
    public bool AllocationProfile { get; init; }

    /// <summary>
    /// When set, ring node i listens on this port + i with a fixed salt, so every run has the same node ids and so
    /// the same ring layout (which positions each node owns); 0: ports chosen by the OS, a new layout each run.
    /// </summary>
    public int BasePort { get; init; }

    /// <summary>Where SCENARIO.md files go.</summary>
    public required string ResultsDirectory { get; init; }

    /// <summary>The command line as given, for the result files.</summary>
    public required string CommandLine { get; init; }

    public static string Usage =>
        """
        usage: dotnet run -c Release --project bench/Chord.Bench -- SCENARIO [options]
          SCENARIO      floor | ring | grain | storage | scale | strangers | all
          --quick       a few seconds per scenario (1 s per cell, shorter warm-up, fewer keys)
          --duration S  seconds measured per cell (default 5, quick 1)
          --warmup S    seconds run before each cell is measured (default 1, quick 0.3)
          --nodes LIST  ring sizes for 'ring' (default 3,5,16)
          --scale LIST  ring sizes for 'scale' (default 16,64,256; quick 16,64: 256 nodes take minutes to start)
          --values LIST value sizes in bytes (default 64,4096)
          --callers LIST concurrent callers (default 1,64)
          --mixes LIST  get, set and/or 90/10 for 'ring' and 'grain' (default all three)
          --strangers LIST connection counts for 'strangers' (default 32,256,1000; quick 32,256)
          --base-port N ring nodes (and the storage scenario's silos) listen on N, N+1, ... with fixed
                        salts: the same node ids, so the same ring layout, in every run (for before/after comparisons; default: OS ports, random ids).
                        Pick ports below the ephemeral range (Linux: 32768-60999), e.g. 21000.
          --alloc-profile print each cell's top allocated types (GCAllocationTick samples)
          --results DIR where SCENARIO.md is written (default bench/results of the repository)
        """;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> saying what was wrong and what is allowed.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
        {
            throw new ArgumentException("No scenario given.");
        }

        var scenario = args[0].ToLowerInvariant();
        if (!Scenarios.Contains(scenario))
        {
            throw new ArgumentException($"Unknown scenario '{args[0]}'; allowed: {string.Join(", ", Scenarios)}.");
        }

        var quick = false;
        var allocationProfile = false;
        double? duration = null;
        double? warmup = null;
        IReadOnlyList<int>? nodes = null, scale = null, values = null, callers = null, strangers = null;
        IReadOnlyList<Mix>? mixes = null;
        string? results = null;
        var basePort = 0;
        for (var i = 1; i < args.Count; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "--alloc-profile":
                    allocationProfile = true;
                    break;
                case "--quick":
                    quick = true;
                    break;
                case "--duration":
                    duration = Seconds(arg, Next());
                    break;
                case "--warmup":
                    warmup = Seconds(arg, Next(), allowZero: true);
                    break;
                case "--nodes":
                    nodes = List(arg, Next(), 1, 64);
                    break;
                case "--scale":
                    scale = List(arg, Next(), 2, 1024);
                    break;
                case "--values":
                    values = List(arg, Next(), 1, 1024 * 1024);
                    break;
                case "--callers":
                    callers = List(arg, Next(), 1, 4096);
                    break;
                case "--mixes":
                    mixes = ParseMixes(arg, Next());
                    break;
                case "--strangers":
                    strangers = List(arg, Next(), 1, 4000);
                    break;
                case "--base-port":
                    basePort = List(arg, Next(), 1024, 65000)[0];
                    break;
                case "--results":
                    results = Next();
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{arg}'.");
            }
        }

        return new BenchOptions
        {
            Scenario = scenario,
            Quick = quick,
            Duration = TimeSpan.FromSeconds(duration ?? (quick ? 1 : 5)),
            Warmup = TimeSpan.FromSeconds(warmup ?? (quick ? 0.3 : 1)),
            Nodes = nodes,
            ScaleNodes = scale,
            Values = values,
            Callers = callers,
            Mixes = mixes,
            Strangers = strangers,
            AllocationProfile = allocationProfile,
            BasePort = basePort,
            ResultsDirectory = results ?? DefaultResultsDirectory(),
            CommandLine = "dotnet run -c Release --project bench/Chord.Bench -- " + string.Join(' ', args),
        };
    }

    private static double Seconds(string name, string text, bool allowZero = false)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < 0 || (value == 0 && !allowZero) || value > 3600)
        {
            throw new ArgumentException($"{name} takes seconds, a number {(allowZero ? "from 0" : "above 0")} up to 3600; got '{text}'.");
        }

        return value;
    }

    private static int[] List(string name, string text, int min, int max)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var list = new List<int>();
        foreach (var part in parts)
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                throw new ArgumentException($"{name} takes a comma-separated list of whole numbers from {min} to {max}; '{part}' is not one.");
            }

            list.Add(value);
        }

        return list.Count > 0 ? [.. list] : throw new ArgumentException($"{name} needs at least one number.");
    }

    private static Mix[] ParseMixes(string name, string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(part => part switch
        {
            "get" => Mix.All[0],
            "set" => Mix.All[1],
            "90/10" => Mix.All[2],
            _ => throw new ArgumentException($"{name} takes a comma-separated list of get, set and 90/10; '{part}' is not one."),
        })];

    private static string DefaultResultsDirectory()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Chord.Orleans.sln")))
            {
                return Path.Combine(dir.FullName, "bench", "results");
            }
        }

        return Path.Combine(Environment.CurrentDirectory, "bench-results");
    }
}
