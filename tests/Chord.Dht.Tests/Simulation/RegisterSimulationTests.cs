using Chord.Dht.Tests.Linearizability;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// Seeded runs of the register under a faulty network (<see cref="RegisterSimulation"/>), every history checked for
/// linearizability. A failure names its seed; <c>CHORD_SIM_SEED=N dotnet test --filter RegisterSimulationTests</c>
/// replays that one seed, and <c>CHORD_SIM_SEEDS=N</c> runs N seeds instead of the default.
/// </summary>
public sealed class RegisterSimulationTests(ITestOutputHelper output)
{
    private const int DefaultSeeds = 300;

    private static readonly Dictionary<string, SimulationSettings> ProfileSettings = new()
    {
        ["two proposers, calm network"] = new SimulationSettings { Proposers = 2, DropChance = 0, DuplicateChance = 0, SlowChance = 0, CrashChancePerMs = 0 },
        ["three proposers, drops duplicates and delays"] = new SimulationSettings { Proposers = 3, CrashChancePerMs = 0 },
        ["four proposers, drops duplicates and delays"] = new SimulationSettings { Proposers = 4, CrashChancePerMs = 0 },
        ["four proposers, faults and crashes"] = new SimulationSettings { Proposers = 4 },
        ["four proposers, loaded machine (5-60 ms per message)"] = new SimulationSettings { Proposers = 4, DropChance = 0, DuplicateChance = 0, SlowChance = 0, CrashChancePerMs = 0, MinDelayMs = 5, MaxDelayMs = 60 },
        ["three proposers, crashes down to a minority"] = new SimulationSettings { Proposers = 3, AllowMinorityOnly = true, CrashChancePerMs = 0.01 },
    };

    /// <summary>
    /// Profiles whose network loses nothing and no acceptor crashes: there every operation must finish within its
    /// deadline (simulated time, so this is a liveness check, not a timing one). Before the backoff grew with the
    /// round time and a refused prepare skipped ahead, a proposer that wrote the key in one round per write starved the
    /// others: 280 of 14,400 operations of the loaded profile timed out, over 300 seeds.
    /// </summary>
    private static readonly HashSet<string> Live = ["two proposers, calm network", "four proposers, loaded machine (5-60 ms per message)"];

    public static TheoryData<string> Profiles => [.. ProfileSettings.Keys];

    [Theory]
    [MemberData(nameof(Profiles))]
    public void Every_history_is_linearizable(string profile) => Check(profile, ProfileSettings[profile]);

    private void Check(string profile, SimulationSettings settings)
    {
        var seeds = Seeds();
        var timedOutSeeds = new List<int>();
        long operations = 0, unknown = 0, timedOut = 0, oneRound = 0, crashes = 0;
        foreach (var seed in seeds)
        {
            var sim = new RegisterSimulation(seed, settings);
            var history = sim.Run();
            var result = LinearizabilityChecker.Check(history);
            if (!result.IsLinearizable && Environment.GetEnvironmentVariable("CHORD_SIM_TRACE") is { Length: > 0 } tracePath)
            {
                File.WriteAllLines(tracePath, sim.Trace);
            }

            Assert.True(result.IsLinearizable,
                $"{profile}: seed {seed} produced a history that is not linearizable (replay: CHORD_SIM_SEED={seed}).\n{result.Explanation}\n{history.Describe()}\nlast messages:\n{string.Join('\n', sim.Trace.TakeLast(40))}");
            operations += history.Count;
            unknown += history.Count(o => o.Outcome == OperationOutcome.Unknown);
            timedOut += sim.TimedOut;
            if (sim.TimedOut > 0)
            {
                timedOutSeeds.Add(seed);
            }
            oneRound += sim.OneRoundWrites;
            crashes += sim.Crashes;
        }

        output.WriteLine($"{profile}: {seeds.Count} seeds, {operations} operations ({unknown} of unknown outcome, {timedOut} timed out), {oneRound} one-round updates, {crashes} acceptor crashes: all linearizable");
        Assert.True(operations > 0);
        if (Live.Contains(profile))
        {
            Assert.True(timedOut == 0, $"{profile}: {timedOut} of {operations} operations timed out on a network that loses nothing (seeds: {string.Join(", ", timedOutSeeds.Take(10))})");
        }
    }

    [Fact]
    public void A_seed_replays_exactly()
    {
        var settings = new SimulationSettings { Proposers = 4 };
        var first = new RegisterSimulation(17, settings);
        var second = new RegisterSimulation(17, settings);
        var a = first.Run().Describe();
        var b = second.Run().Describe();
        Assert.Equal(a, b);
        Assert.Equal(first.Trace, second.Trace);
        Assert.NotEqual(first.Trace, RunTrace(18, settings)); // the seed matters
    }

    [Fact]
    public void The_checker_catches_acceptors_that_forget_their_promises()
    {
        // The control: the same clients and network against a wrong register must produce a violation somewhere.
        var settings = new SimulationSettings { Proposers = 4, BrokenAcceptors = true, CrashChancePerMs = 0 };
        var violations = Enumerable.Range(0, 200).Count(seed => !LinearizabilityChecker.Check(new RegisterSimulation(seed, settings).Run()).IsLinearizable);
        output.WriteLine($"broken acceptors: {violations} of 200 seeds not linearizable");
        Assert.True(violations > 0, "200 seeds against acceptors that ignore their promises all looked linearizable: the simulation is not testing anything.");
    }

    private static List<string> RunTrace(int seed, SimulationSettings settings)
    {
        var sim = new RegisterSimulation(seed, settings);
        sim.Run();
        return sim.Trace;
    }

    private static List<int> Seeds()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("CHORD_SIM_SEED"), out var one))
        {
            return [one];
        }

        var count = int.TryParse(Environment.GetEnvironmentVariable("CHORD_SIM_SEEDS"), out var n) && n > 0 ? n : DefaultSeeds;
        return [.. Enumerable.Range(1, count)];
    }
}
