using System.Collections.Concurrent;
using System.Numerics;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>Requests toward the owner of a position, and their answers.</summary>
public sealed partial class RingNode
{
    private static readonly BigInteger Unreachable = RingPosition.Limit;

    // Requests this node started, by request id. The answer is the whole answering payload.
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Answer>> _pending = new(StringComparer.Ordinal);

    // Requests this node forwarded, by the request id it forwarded them under.
    private readonly ConcurrentDictionary<string, Relay> _relays = new(StringComparer.Ordinal);

    // Request ids waiting for a py2p peer's answer, which carries no id: the reference matches by (method, position).
    private readonly ConcurrentDictionary<(HashMethod, BigInteger), ConcurrentQueue<string>> _legacyWaiters = new();

    private long _requestCounter;

    /// <summary>
    /// Asks the owner of one position for its value. The result says how many hops the request took, which
    /// tests and benchmarks use to measure routing.
    /// </summary>
    public async Task<RetrieveResult> RetrieveAsync(HashMethod method, RingPosition position, CancellationToken cancellationToken = default)
    {
        var answer = await RouteAsync(SubFlag.Retrieve, method, position, null, cancellationToken);
        RingMetrics.LookupHops.Record(answer.Hops);
        return new RetrieveResult(method, position, answer.Value, answer.Hops);
    }

    private async Task<IReadOnlyList<RetrieveResult>> RetrieveAllAsync(byte[] key, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Options.RequestTimeout);
        var positions = KeyHashes.All(key);
        var tasks = KeyHashes.Methods.Select(m => RetrieveAsync(m, positions[(int)m], deadline.Token)).ToList();
        var answers = new List<RetrieveResult>(5);
        var quorum = Options.ReadQuorum;
        while (tasks.Count > 0)
        {
            var done = await Task.WhenAny(tasks);
            tasks.Remove(done);
            if (done.IsCompletedSuccessfully)
            {
                answers.Add(done.Result);
                if (answers.GroupBy(a => a.Value).Any(g => g.Count() >= quorum))
                {
                    break; // the quorum agrees: the stragglers cannot change the answer
                }
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        return answers;
    }

    /// <summary>Sends a store (or delta) to all five positions; returns what each acknowledging owner returned.</summary>
    private async Task<IReadOnlyList<MsgValue?>> WriteAllAsync(byte[] key, SubFlag kind, MsgValue value, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Options.RequestTimeout);
        var positions = KeyHashes.All(key);
        var tasks = KeyHashes.Methods.Select(m => RouteAsync(kind, m, positions[(int)m], value, deadline.Token)).ToArray();
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (Exception) when (tasks.Any(t => t.IsCompletedSuccessfully))
        {
            // Some positions failed; the count below decides.
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The deadline passed for all of them; the count below reports it.
        }

        cancellationToken.ThrowIfCancellationRequested();
        var acknowledged = tasks.Where(t => t.IsCompletedSuccessfully && t.Result.Ok).Select(t => t.Result).ToList();
        if (acknowledged.Count < Options.WriteQuorum)
        {
            var refusal = tasks.Where(t => t.IsCompletedSuccessfully && !t.Result.Ok && t.Result.Error is not null).Select(t => t.Result.Error).FirstOrDefault();
            throw new ChordWriteException(
                $"The write to {Describe(key)} was acknowledged by {acknowledged.Count} of 5 positions; {Options.WriteQuorum} are needed."
                + (refusal is null ? string.Empty : $" An owner refused it: {refusal}"), acknowledged.Count);
        }

        return acknowledged.Select(a => a.Result).ToList();
    }

    /// <summary>
    /// Takes one request to the owner of <paramref name="position"/>: handled here when this node owns it,
    /// otherwise forwarded to the best next hop, and re-routed when that hop's connection closes.
    /// </summary>
    private async Task<Answer> RouteAsync(SubFlag kind, HashMethod method, RingPosition position, MsgValue? value, CancellationToken cancellationToken)
    {
        RingMetrics.Requests.Add(1);
        var excluded = new HashSet<string>(StringComparer.Ordinal);
        for (var attempt = 0; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = await NextHopAsync(position, excluded, cancellationToken);
            if (next is null)
            {
                return ApplyLocally(kind, method, position, value, hops: 0);
            }

            var requestId = NewRequestId();
            var pending = new TaskCompletionSource<Answer>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[requestId] = pending;
            try
            {
                var speaksExtensions = SpeaksExtensions(next.Id!);
                if (!speaksExtensions && kind == SubFlag.Retrieve)
                {
                    _legacyWaiters.GetOrAdd((method, position.Value), _ => new()).Enqueue(requestId);
                }

                await next.WhisperAsync(RequestPayload(kind, method, position, value, requestId, hops: 1));
                if (!speaksExtensions && kind != SubFlag.Retrieve)
                {
                    // A py2p owner cannot acknowledge: the write went out, but it does not count toward the quorum.
                    return new Answer(MsgValue.Nil, 1, Ok: false, "a py2p node cannot acknowledge writes", null);
                }

                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, next.ClosedToken);
                return await pending.Task.WaitAsync(linked.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && attempt + 1 < Options.MaxRouteAttempts)
            {
                // The next hop's connection closed before it answered: never wait on a dead peer; go around it.
                excluded.Add(next.Id!);
                RingMetrics.RouteRetries.Add(1);
            }
            finally
            {
                _pending.TryRemove(requestId, out _);
            }
        }
    }

    private string NewRequestId() => $"{Id[..Math.Min(8, Id.Length)]}.{Interlocked.Increment(ref _requestCounter)}";

    private static MsgValue[] RequestPayload(SubFlag kind, HashMethod method, RingPosition position, MsgValue? value, string requestId, int hops)
    {
        var methodName = MsgValue.BinAscii(method.WireName());
        var pos = MsgValue.BinAscii(position.ToBase58());
        return kind == SubFlag.Retrieve
            ? [(long)kind, methodName, pos, requestId, hops]
            : [(long)kind, methodName, pos, value!, requestId, hops];
    }

    /// <summary>
    /// The connection a request for <paramref name="position"/> should go to next, or null when this node is the
    /// owner. Greedy: the connected storing peer nearest at or before the position, when it is nearer than we
    /// are. When no connected peer is nearer but the directory names another owner (a connection not made yet),
    /// the owner is dialled.
    /// </summary>
    private async ValueTask<MeshPeer?> NextHopAsync(RingPosition position, IReadOnlySet<string> excluded, CancellationToken cancellationToken)
    {
        var target = position.Reduced;
        var ownDistance = _storing ? Position.DistanceTo(target) : Unreachable;
        MeshPeer? best = null;
        var bestDistance = ownDistance;
        foreach (var peer in Mesh.Peers)
        {
            if (peer.Id is null || excluded.Contains(peer.Id) || !IsStoringMember(peer.Id, out var member))
            {
                continue;
            }

            var distance = member.Position.DistanceTo(target);
            if (distance < bestDistance)
            {
                best = peer;
                bestDistance = distance;
            }
        }

        if (best is not null)
        {
            return best;
        }

        var owner = OwnerOf(target, excluded);
        if (owner is null || owner.Id == Id)
        {
            return _storing ? null : throw new ChordTimeoutException("No storing node is known: join the ring, or connect to one that has joined.", 0);
        }

        try
        {
            return await Mesh.ConnectAsync(owner.Address, owner.Id, cancellationToken);
        }
        catch (MeshConnectException) when (_storing)
        {
            return null; // the directory's owner is unreachable; we are the best we know
        }
    }

    /// <summary>Handles a request this node owns.</summary>
    private Answer ApplyLocally(SubFlag kind, HashMethod method, RingPosition position, MsgValue? value, int hops)
    {
        var slot = (method, position.Value);
        switch (kind)
        {
            case SubFlag.Retrieve:
                return new Answer(_table.TryGetValue(slot, out var held) ? held : MsgValue.Nil, hops, Ok: true, null, null);
            case SubFlag.Store:
                if (value is null || value.IsNil)
                {
                    _table.TryRemove(slot, out _);
                }
                else
                {
                    _table[slot] = value;
                }

                return new Answer(MsgValue.Nil, hops, Ok: true, null, MsgValue.True);
            case SubFlag.Delta:
                return ApplyDelta(slot, value!, hops);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Only store, retrieve and delta reach an owner.");
        }
    }

    private Answer ApplyDelta((HashMethod, BigInteger) slot, MsgValue delta, int hops)
    {
        if (delta.Kind != MsgKind.Map)
        {
            return new Answer(MsgValue.Nil, hops, Ok: false, $"a delta must be a map, not a {delta.Kind}", null);
        }

        lock (_table)
        {
            var stored = _table.TryGetValue(slot, out var held) ? held : MsgValue.Map(Array.Empty<KeyValuePair<MsgValue, MsgValue>>());
            if (stored.Kind != MsgKind.Map)
            {
                return new Answer(MsgValue.Nil, hops, Ok: false, $"the stored value is a {stored.Kind}, not a map, so a delta cannot merge into it", null);
            }

            var merged = stored.AsMap().ToList();
            foreach (var entry in delta.AsMap())
            {
                var index = merged.FindIndex(e => e.Key.Equals(entry.Key));
                if (index >= 0)
                {
                    merged[index] = entry;
                }
                else
                {
                    merged.Add(entry);
                }
            }

            var result = MsgValue.Map(merged);
            _table[slot] = result;
            return new Answer(MsgValue.Nil, hops, Ok: true, null, result);
        }
    }

    /// <summary>An answer to one position request.</summary>
    /// <param name="Value">The retrieved value (retrieve).</param>
    /// <param name="Hops">Forwarding hops the request took.</param>
    /// <param name="Ok">True when the owner applied the request.</param>
    /// <param name="Error">Why the owner refused it.</param>
    /// <param name="Result">What the owner returned for a write (the merged map for a delta).</param>
    private sealed record Answer(MsgValue Value, int Hops, bool Ok, string? Error, MsgValue? Result);

    /// <summary>A request this node forwarded: whom to send the answer back to, and under which id.</summary>
    private sealed record Relay(MeshPeer From, string? OriginalRequestId, SubFlag Kind, HashMethod Method, RingPosition Position, long Expires);
}
