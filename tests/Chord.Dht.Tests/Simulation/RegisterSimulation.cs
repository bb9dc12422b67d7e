using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Tests.Linearizability;
using Chord.Dht.Wire;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// A deterministic simulation of one key's register: five acceptors running the ring's <see cref="Acceptor"/> rules,
/// two to four <see cref="RegisterProposer"/>s (the ring's proposer code) issuing writes, deletes, compare-and-sets
/// and reads concurrently, and a network that delays, drops, duplicates and reorders every message and crashes and
/// restarts acceptors (from their durable state, as a node restarts from its data directory). Everything runs on the
/// calling thread in the order a seeded <see cref="Random"/> decides, on a fake clock, so a seed replays exactly.
/// </summary>
internal sealed class RegisterSimulation
{
    private static readonly byte[] Key = "sim-key"u8.ToArray();

    private readonly Random _random;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch);
    private readonly PriorityQueue<Action, (long At, long Seq)> _events = new();
    private readonly SimAcceptor[] _acceptors;
    private readonly HistoryRecorder _history;
    private readonly SimulationSettings _settings;
    private long _seq;
    private long _nextValue;

    public RegisterSimulation(int seed, SimulationSettings settings)
    {
        Seed = seed;
        _settings = settings;
        _random = new Random(seed);
        _history = new HistoryRecorder(() => _time.GetTimestamp());
        _acceptors = [.. Enumerable.Range(0, RegisterSettings.Positions).Select(i => new SimAcceptor(i, settings.BrokenAcceptors))];
    }

    public int Seed { get; }

    /// <summary>Every message delivered or dropped, in order: two runs of one seed give the same trace.</summary>
    public List<string> Trace { get; } = [];

    public long OneRoundWrites { get; private set; }

    public long Crashes { get; private set; }

    /// <summary>Operations that ran out of time (liveness: none in a calm network).</summary>
    public long TimedOut { get; private set; }

    /// <summary>Runs the clients to the end and returns the history.</summary>
    public History Run()
    {
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null); // every continuation runs inline, here
        try
        {
            var proposers = Enumerable.Range(0, _settings.Proposers).Select(i => new SimProposer(this, $"P{i}")).ToList();
            var clients = proposers.Select(p => RunClientAsync(p)).ToList();
            var limit = TimeSpan.FromMinutes(10);
            while (!clients.All(c => c.IsCompleted))
            {
                if (_time.GetUtcNow() - DateTimeOffset.UnixEpoch > limit)
                {
                    throw new InvalidOperationException($"seed {Seed}: the clients did not finish within {limit} of simulated time.");
                }

                Step();
            }

            foreach (var client in clients)
            {
                client.GetAwaiter().GetResult(); // a client's own failure (not the register's) surfaces here
            }

            OneRoundWrites = proposers.Sum(p => p.Proposer.OneRoundWrites);
            return _history.ToHistory();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    /// <summary>One millisecond: timers fire, then every message due is handled, in (time, sequence) order.</summary>
    private void Step()
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var now = _time.GetTimestamp();
        while (_events.TryPeek(out _, out var due) && due.At <= now)
        {
            _events.Dequeue()();
        }

        if (_random.NextDouble() < _settings.CrashChancePerMs)
        {
            var victim = _acceptors[_random.Next(_acceptors.Length)];
            if (victim.Up && _acceptors.Count(a => a.Up) >= (_settings.AllowMinorityOnly ? 3 : 4))
            {
                victim.Crash();
                Crashes++;
                Trace.Add($"{now} crash A{victim.Index}");
                var downFor = TimeSpan.FromMilliseconds(_random.Next(5, 400));
                Schedule(downFor, () =>
                {
                    victim.Restart();
                    Trace.Add($"{_time.GetTimestamp()} restart A{victim.Index}");
                });
            }
        }
    }

    private void Schedule(TimeSpan after, Action action) =>
        _events.Enqueue(action, (_time.GetTimestamp() + (long)(after.TotalSeconds * _time.TimestampFrequency), _seq++));

    private TimeSpan Delay() => TimeSpan.FromMilliseconds(
        _random.NextDouble() < _settings.SlowChance ? _random.Next(20, 300) : _random.Next(_settings.MinDelayMs, _settings.MaxDelayMs + 1));

    /// <summary>Sends one request to an acceptor and its answer back, through the faulty network.</summary>
    private Task<AcceptorReply?> Send(string from, int index, string what, Func<SimAcceptor, AcceptorReply> handle, CancellationToken cancellationToken)
    {
        var answer = new TaskCompletionSource<AcceptorReply?>(); // inline continuations: the proposer runs here
        cancellationToken.Register(() => answer.TrySetResult(null));
        var copies = _random.NextDouble() < _settings.DuplicateChance ? 2 : 1;
        for (var copy = 0; copy < copies; copy++)
        {
            if (_random.NextDouble() < _settings.DropChance)
            {
                Trace.Add($"{_time.GetTimestamp()} drop {from}->A{index} {what}");
                continue;
            }

            var acceptor = _acceptors[index];
            var epoch = acceptor.Epoch;
            Schedule(Delay(), () =>
            {
                if (!acceptor.Up || acceptor.Epoch != epoch)
                {
                    Trace.Add($"{_time.GetTimestamp()} lost {from}->A{index} {what} (down)");
                    return;
                }

                var reply = handle(acceptor);
                Trace.Add($"{_time.GetTimestamp()} {from}->A{index} {what}: {(reply.Ok ? "ok" : "no")} acc={reply.Accepted} prom={reply.Promised}");
                if (_random.NextDouble() < _settings.DropChance)
                {
                    return; // the answer is lost; the acceptor's state changed all the same
                }

                Schedule(Delay(), () => answer.TrySetResult(reply));
            });
        }

        return answer.Task;
    }

    private async Task RunClientAsync(SimProposer proposer)
    {
        string? lastRead = null;
        for (var i = 0; i < _settings.OperationsPerClient; i++)
        {
            var choice = _random.Next(100);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2), _time);
            if (choice < 35)
            {
                var value = $"v{++_nextValue}";
                var op = _history.Invoke(proposer.Id, OperationKind.Write, value);
                await Record(op, proposer.UpdateAsync(_ => RegisterChange.To(value), deadline.Token), r => _history.Ok(op)).ConfigureAwait(false);
            }
            else if (choice < 45)
            {
                var op = _history.Invoke(proposer.Id, OperationKind.Delete);
                await Record(op, proposer.UpdateAsync(_ => RegisterChange.To(MsgValue.Nil), deadline.Token), r => _history.Ok(op)).ConfigureAwait(false);
            }
            else if (choice < 75)
            {
                var value = $"v{++_nextValue}";
                var expected = lastRead;
                var op = _history.InvokeCompareAndSet(proposer.Id, expected, value);
                await Record(op, proposer.UpdateAsync(current => Text(current.Value) == expected ? RegisterChange.To(value) : RegisterChange.Keep, deadline.Token),
                    r => _history.Ok(op, swapped: r.Written)).ConfigureAwait(false);
            }
            else
            {
                var op = _history.Invoke(proposer.Id, OperationKind.Read);
                await Record(op, proposer.UpdateAsync(_ => RegisterChange.Keep, deadline.Token), r =>
                {
                    lastRead = Text(r.Current.Value);
                    return _history.Ok(op, lastRead);
                }).ConfigureAwait(false);
            }
        }
    }

    private async Task Record(PendingOperation op, Task<RegisterOutcome> update, Func<RegisterOutcome, Operation> ok)
    {
        try
        {
            ok(await update.ConfigureAwait(false));
        }
        catch (Exception e) when (e is OperationCanceledException or ChordWriteException)
        {
            if (e is OperationCanceledException)
            {
                TimedOut++;
            }

            // Timed out, or met a write it cannot tell from its own: a write may still take effect; a read tells nothing.
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

    private static string? Text(MsgValue value) => value.IsNil ? null : value.AsString();

    /// <summary>One node's proposer, with the simulated network as its transport.</summary>
    private sealed class SimProposer : IRegisterTransport
    {
        private readonly RegisterSimulation _sim;

        public SimProposer(RegisterSimulation sim, string id)
        {
            _sim = sim;
            Id = id;
            Proposer = new RegisterProposer(this, new RegisterSettings
            {
                PositionTimeout = TimeSpan.FromMilliseconds(50),
                MaxBackoff = TimeSpan.FromMilliseconds(200),
                InlineContinuations = true,
            }, new Random(sim._random.Next()));
        }

        public string Id { get; }

        public RegisterProposer Proposer { get; }

        public string ProposerId => Id;

        public TimeProvider Time => _sim._time;

        public Task<RegisterOutcome> UpdateAsync(Func<VersionedValue, RegisterChange> change, CancellationToken cancellationToken, bool blind = false) =>
            Proposer.UpdateAsync(Key, change, cancellationToken, blind);

        public Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken) =>
            _sim.Send(Id, position, $"prepare {ballot}", a => a.Prepare(ballot), cancellationToken);

        public Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken) =>
            _sim.Send(Id, position, $"accept {ballot} {(value.IsNil ? "nil" : value.AsString())}@{version}", a => a.Accept(ballot, value, version, next), cancellationToken);
    }

    /// <summary>An acceptor whose state survives a crash (it is written before the answer goes out), as on a data directory.</summary>
    private sealed class SimAcceptor(int index, bool broken)
    {
        private StoredEntry? _durable;

        public int Index { get; } = index;

        public bool Up { get; private set; } = true;

        /// <summary>Bumped by every crash: a message sent before it is lost with the crashed process.</summary>
        public int Epoch { get; private set; }

        public void Crash()
        {
            Up = false;
            Epoch++;
        }

        /// <summary>Back from its durable state, marked as a ring node marks what it loads (RingNode.LoadStoredEntries).</summary>
        public void Restart()
        {
            Up = true;
            _durable = _durable?.AsLoadedAtStart();
        }

        public AcceptorReply Prepare(EntryVersion ballot)
        {
            var (updated, reply) = Acceptor.Prepare(_durable, ballot, Key, floor: 0);
            _durable = updated ?? _durable;
            return reply;
        }

        public AcceptorReply Accept(EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next)
        {
            // The broken acceptor forgets its promises: the control that shows the checker catches a bad register.
            var (updated, reply) = Acceptor.Accept(broken && _durable is not null ? _durable with { Promised = null } : _durable, ballot, value, version, Key, next, floor: 0, learn: broken);
            _durable = updated ?? _durable;
            return reply;
        }
    }
}

/// <summary>How hostile the simulated network is, and how much the clients do.</summary>
internal sealed record SimulationSettings
{
    public int Proposers { get; init; } = 3;

    public int OperationsPerClient { get; init; } = 12;

    public double DropChance { get; init; } = 0.05;

    public double DuplicateChance { get; init; } = 0.05;

    public double SlowChance { get; init; } = 0.05;

    public double CrashChancePerMs { get; init; } = 0.002;

    /// <summary>The usual one-way delay of a message, in milliseconds (a slow one is 20 to 300).</summary>
    public int MinDelayMs { get; init; }

    /// <summary>The longest usual one-way delay, in milliseconds: tens on a loaded machine, where duels last longest.</summary>
    public int MaxDelayMs { get; init; } = 5;

    /// <summary>Let crashes leave fewer than a quorum up for a while (operations then time out).</summary>
    public bool AllowMinorityOnly { get; init; }

    /// <summary>Acceptors that forget their promises on accept (a deliberately wrong register).</summary>
    public bool BrokenAcceptors { get; init; }
}
