namespace Chord.Bench;

/// <summary>The load generator's entry point, callable in-process (the smoke test does).</summary>
public static class BenchRunner
{
    /// <summary>Runs the scenario the arguments name; returns the exit code (0 ok, 2 bad arguments, 1 failure).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await output.WriteLineAsync(e.Message);
            await output.WriteLineAsync(BenchOptions.Usage);
            return 2;
        }

        using var context = new BenchContext(options, output);
        var scenarios = options.Scenario == "all" ? ["floor", "ring", "grain", "scale", "storage", "strangers"] : new[] { options.Scenario };
        foreach (var scenario in scenarios)
        {
            context.Log($"scenario {scenario}");
            await (scenario switch
            {
                "floor" => FloorScenario.RunAsync(context),
                "ring" => RingScenario.RunAsync(context),
                "grain" => GrainScenario.RunAsync(context),
                "storage" => StorageScenario.RunAsync(context),
                "scale" => ScaleScenario.RunAsync(context),
                "strangers" => StrangersScenario.RunAsync(context),
                _ => throw new InvalidOperationException($"No scenario '{scenario}'."),
            });
        }

        return 0;
    }
}
