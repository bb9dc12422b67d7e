using System.Collections.Concurrent;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Tests.Linearizability;
using Chord.Dht.Wire;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// Whole ring nodes (routing, handlers, the register's acceptors in the node's table, persistence) on the in-memory
/// transport, with a seeded <see cref="FaultyTransport"/> that loses, repeats, delays and reorders the ring's requests
/// and answers, and a seeded crasher that kills a node (no unjoin) and restarts it from its data directory. Three
/// clients on three nodes write, delete, compare-and-set and read two keys at once; every history must be
/// linearizable (the WGL checker, per key).
/// </summary>
/// <remarks>
/// The seed fixes every decision the simulation makes (which frame is lost, repeated or held and for how long, which
/// node crashes, when, and for how long, what each client does), but not the threads' interleaving: these are real
/// nodes on the thread pool and a real clock, so a seed replays the same faults, not the same history.
/// <see cref="RegisterSimulationTests"/> is the exact-replay counterpart (the ring's proposer and acceptor rules on one
/// thread and a fake clock). A failure names its seeds and writes each one's trace (every node's ring trace with the
/// history merged in: <see cref="SimulationTrace"/>) to <c>CHORD_RINGSIM_TRACE_DIR</c> or the temp folder;
/// <c>CHORD_RINGSIM_SEED=N</c> runs that one seed (and keeps its trace when <c>CHORD_RINGSIM_TRACE_DIR</c> is set), and
/// <c>CHORD_RINGSIM_SEEDS=N</c> runs N seeds instead of the default.
/// </remarks>
public class RingSimulationTests(ITestOutputHelper output)
{
    private const int DefaultSeeds = 3;

    [Fact]
    public Task Every_history_of_a_ring_that_loses_repeats_and_reorders_messages_is_linearizable() => RunAsync("faults", firstSeed: 1, crashes: false);

    /// <summary>
    /// The same with nodes crashing and restarting all the time (a node killed every 0.2-0.7 s, back from its data
    /// directory 0.2-1.2 s later). Its runs found real bugs, each fixed with a test of its own (docs/DURABILITY.md, the
    /// table of traces): restarted nodes' entries and promises taken as current, a node answering for an owner it
    /// could not reach, the fence asking the wrong neighbour, acknowledgements from crashed nodes, reads of one node's
    /// positions, ballots that went back across a crash. The suite runs three seeds; a longer run is
    /// <c>CHORD_RINGSIM_SEEDS=300 CHORD_RINGSIM_PARALLEL=4</c> with a filter on this test (about 7 minutes).
    /// </summary>
    [Fact]
    public Task Every_history_of_a_ring_whose_nodes_crash_and_restart_is_linearizable() => RunAsync("faults-and-crashes", firstSeed: 1001, crashes: true);

    private async Task RunAsync(string profile, int firstSeed, bool crashes)
    {
        // Seeds run side by side (CHORD_RINGSIM_PARALLEL, default 2): a simulation spends most of its time waiting on
        // its own delays, so a long run finishes in a fraction of the time. Each seed's faults stay its own.
        var failures = new ConcurrentBag<string>();
        var parallel = int.TryParse(Environment.GetEnvironmentVariable("CHORD_RINGSIM_PARALLEL"), out var p) && p > 0 ? p : 2;
        await Parallel.ForEachAsync(Seeds(firstSeed), new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (seed, _) =>
        {
            await using var sim = new RingSimulation(seed, crashes);
            var history = await sim.RunAsync();
            var result = LinearizabilityChecker.CheckPerKey(history);
            output.WriteLine($"{profile} seed {seed}: {history.Count} operations, {history.Count(o => o.Outcome == OperationOutcome.Ok)} ok, "
                + $"{sim.Transport.Describe()}, {sim.Crashes} crashes: {(result.IsLinearizable ? "linearizable" : "NOT linearizable")}");
            if (result.IsLinearizable && Environment.GetEnvironmentVariable("CHORD_RINGSIM_SEED") is { Length: > 0 }
                && Environment.GetEnvironmentVariable("CHORD_RINGSIM_TRACE_DIR") is { Length: > 0 })
            {
                // One seed run on purpose, with a trace folder: its trace is kept whatever the outcome.
                sim.WriteTrace(TracePath(profile, seed), result.Explanation, history);
            }

            if (!result.IsLinearizable)
            {
                var trace = TracePath(profile, seed);
                sim.WriteTrace(trace, result.Explanation, history);
                failures.Add($"seed {seed} (rerun its faults: CHORD_RINGSIM_SEED={seed}; every node's trace with the history: {trace}):\n{result.Explanation}\n{History.Describe(history)}");
            }

            // A run that lost nothing or completed nothing would prove nothing.
            Assert.True(sim.Transport.Faults > 0, $"{profile} seed {seed}: no fault was injected");
            Assert.True(history.Any(o => o.Outcome == OperationOutcome.Ok && o.Kind != OperationKind.Read), $"{profile} seed {seed}: no write completed");
            Assert.True(history.Any(o => o.Outcome == OperationOutcome.Ok && o.Kind == OperationKind.Read), $"{profile} seed {seed}: no read completed");
            Assert.True(!crashes || sim.Crashes > 0, $"{profile} seed {seed}: no node crashed");
        });

        Assert.True(failures.IsEmpty, $"{profile}: {failures.Count} seed(s) produced a history that is not linearizable.\n{string.Join("\n\n", failures)}");
    }

    /// <summary>Where a failing seed's trace goes: <c>CHORD_RINGSIM_TRACE_DIR</c>, or a folder in the temp directory.</summary>
    private static string TracePath(string profile, int seed) =>
        Path.Combine(Environment.GetEnvironmentVariable("CHORD_RINGSIM_TRACE_DIR") is { Length: > 0 } dir ? dir : Path.Combine(Path.GetTempPath(), "chord-ringsim-traces"),
            $"{profile}-seed-{seed}.txt");

    /// <summary>
    /// The seeds to run: <c>CHORD_RINGSIM_SEED=N</c> runs that one; otherwise <c>CHORD_RINGSIM_SEEDS</c> of them
    /// (default <see cref="DefaultSeeds"/>) from the profile's first, or from <c>CHORD_RINGSIM_FIRST_SEED</c>.
    /// </summary>
    private static IEnumerable<int> Seeds(int first)
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("CHORD_RINGSIM_SEED"), out var one))
        {
            return [one];
        }

        if (int.TryParse(Environment.GetEnvironmentVariable("CHORD_RINGSIM_FIRST_SEED"), out var from))
        {
            first = from;
        }

        var count = int.TryParse(Environment.GetEnvironmentVariable("CHORD_RINGSIM_SEEDS"), out var n) && n > 0 ? n : DefaultSeeds;
        return Enumerable.Range(first, count);
    }
}

/// <summary>Five ring nodes on a faulty in-memory network, three clients, and (optionally) a crasher.</summary>
internal sealed class RingSimulation : IAsyncDisposable
{
    private const int NodeCount = 5;
    private const int Clients = 3;
    private const int OperationsPerClient = 30;
    private static readonly string[] Keys = ["sim-a", "sim-b"];

    private readonly int _seed;
    private readonly bool _crashes;
    private readonly Random _random;
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("chord-ringsim-");
    private readonly RingNode?[] _nodes = new RingNode?[NodeCount];
    private readonly int[] _ports = new int[NodeCount];
    private readonly HistoryRecorder _history = new();
    private readonly SimulationTrace _trace = new();
    private readonly Dictionary<string, string> _nodeNames = [];
    private long _nextValue;

    public RingSimulation(int seed, bool crashes)
    {
        _seed = seed;
        _crashes = crashes;
        _random = new Random(seed);
        Transport = new FaultyTransport(new InMemoryTransport(), seed)
        {
            DropChance = 0.03,
            DuplicateChance = 0.03,
            DelayChance = 0.15,
            MaxDelay = TimeSpan.FromMilliseconds(40),
        };
    }

    public FaultyTransport Transport { get; }

    public int Crashes { get; private set; }

    public async Task<IReadOnlyList<Operation>> RunAsync()
    {
        for (var i = 0; i < NodeCount; i++)
        {
            await StartNodeAsync(i);
        }

        await WaitUntilAllStoringAsync();
        Transport.Enabled = true;

        // One seeded decision list per actor, drawn up front, so that no actor's choices depend on another's timing.
        var plans = Enumerable.Range(0, Clients).Select(_ => new Random(_random.Next())).ToList();
        var crasher = new Random(_random.Next());
        using var stop = new CancellationTokenSource();
        var crashing = _crashes ? CrashAndRestartAsync(crasher, stop.Token) : Task.CompletedTask;
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(() => RunClientAsync(c, plans[c]))));
        stop.Cancel();
        await crashing;
        Transport.Enabled = false;
        return _history.ToHistory();
    }

    private async Task StartNodeAsync(int index)
    {
        var node = new RingNode(Options(index), _trace, Transport);
        await node.StartAsync();
        lock (_nodeNames)
        {
            _nodeNames[node.Id] = $"n{index}";
        }

        _trace.Note($"n{index} started");
        _ports[index] = node.Mesh.Address.Port;
        if (_nodes.FirstOrDefault(n => n is not null) is { } seed)
        {
            await node.ConnectAsync(seed.Mesh.Address);
        }

        await node.JoinAsync();
        _nodes[index] = node;
    }

    private RingOptions Options(int index)
    {
        var options = new RingOptions
        {
            DataDirectory = Path.Combine(_root.FullName, $"node-{index}"),
            RequestTimeout = TimeSpan.FromSeconds(3),
            AttemptTimeout = TimeSpan.FromMilliseconds(300),
            RepairTimeout = TimeSpan.FromSeconds(3),
            StabilizeInterval = TimeSpan.FromMilliseconds(200),
        };
        if (_ports[index] != 0)
        {
            options.Mesh.ListenPort = _ports[index]; // a restart comes back at its address, as a restarted host does
        }

        return options;
    }

    private async Task WaitUntilAllStoringAsync()
    {
        await Eventually.UntilAsync(
            () => _nodes.All(n => n is not null && _nodes.All(m => m == n || n.Members.Any(x => x.Id == m!.Id && x.IsStoring))),
            TimeSpan.FromSeconds(60), $"seed {_seed}: every node to know every other as storing");
    }

    /// <summary>Every so often one node dies without a word and comes back from its data directory a little later.</summary>
    private async Task CrashAndRestartAsync(Random plan, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(plan.Next(200, 700), stop);
                var victim = plan.Next(NodeCount);
                var downFor = plan.Next(200, 1200);
                var node = _nodes[victim];
                _nodes[victim] = null; // clients on it wait for the restart
                _trace.Note($"n{victim} crashes (down for {downFor} ms)");
                await node!.DisposeAsync();
                _trace.Note($"n{victim} is down");
                Crashes++;
                await Task.Delay(downFor, CancellationToken.None);
                await StartNodeAsync(victim);
            }
        }
        catch (OperationCanceledException)
        {
            // The clients are done.
        }
    }

    private async Task RunClientAsync(int client, Random plan)
    {
        var name = $"c{client}";
        var lastRead = new Dictionary<string, string?>();
        for (var i = 0; i < OperationsPerClient; i++)
        {
            var key = Keys[plan.Next(Keys.Length)];
            var choice = plan.Next(100);
            var value = $"v{Interlocked.Increment(ref _nextValue)}";
            var node = await NodeForAsync(client);
            if (choice < 35)
            {
                var op = _history.Invoke(name, OperationKind.Write, value, key);
                await RecordAsync(op, async () => { await node.UpdateAsync(key, _ => RegisterChange.To(value), announce: false); _history.Ok(op); });
            }
            else if (choice < 45)
            {
                var op = _history.Invoke(name, OperationKind.Delete, key: key);
                await RecordAsync(op, async () => { await node.UpdateAsync(key, _ => RegisterChange.To(MsgValue.Nil), announce: false); _history.Ok(op); });
            }
            else if (choice < 70)
            {
                var expected = lastRead.GetValueOrDefault(key);
                var op = _history.InvokeCompareAndSet(name, expected, value, key);
                await RecordAsync(op, async () =>
                {
                    var outcome = await node.UpdateAsync(key, current => Text(current.Value) == expected ? RegisterChange.To(value) : RegisterChange.Keep, announce: false);
                    _history.Ok(op, swapped: outcome.Written);
                });
            }
            else
            {
                var op = _history.Invoke(name, OperationKind.Read, key: key);
                await RecordAsync(op, async () =>
                {
                    string? read;
                    try
                    {
                        read = (await node.GetAsync(key)).AsString();
                    }
                    catch (ChordKeyNotFoundException)
                    {
                        read = null;
                    }

                    lastRead[key] = read;
                    _history.Ok(op, read);
                });
            }
        }
    }

    /// <summary>The client's node, waiting while it is down.</summary>
    private async Task<RingNode> NodeForAsync(int client)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (_nodes[client] is { } node)
            {
                return node;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"seed {_seed}: node {client} did not come back within a minute");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Runs one operation; one that fails may still take effect (a write) or tells nothing (a read).</summary>
    private async Task RecordAsync(PendingOperation op, Func<Task> run)
    {
        try
        {
            await run();
        }
        catch (Exception e) when (e is ChordWriteException or ChordTimeoutException or ChordNoMajorityException or OperationCanceledException
            or ObjectDisposedException or Chord.Dht.Mesh.MeshConnectException or InvalidOperationException)
        {
            if (op.Kind == OperationKind.Read)
            {
                _history.Fail(op);
            }
            else
            {
                _history.Unknown(op);
            }
        }
    }

    /// <summary>Writes the checker's verdict and every node's trace, with the history merged in, to <paramref name="path"/>.</summary>
    public void WriteTrace(string path, string verdict, IEnumerable<Operation> history)
    {
        lock (_nodeNames)
        {
            _trace.Write(path, verdict, history, _nodeNames, Keys);
        }
    }

    private static string? Text(MsgValue value) => value.IsNil ? null : value.AsString();

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            if (node is not null)
            {
                await node.DisposeAsync();
            }
        }

        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A file still closing: the temp directory is cleaned up later.
        }
    }
}
