using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Numerics;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Ring;

/// <summary>Requests toward the owner of a position, and their answers.</summary>
public sealed partial class RingNode
{
    private static readonly BigInteger Unreachable = RingPosition.Limit;

    // Requests this node started, by request id. Striped as the table is (the default is one lock per processor): every
    // request adds and removes an entry, and with 64 writers on two cores the two default locks showed as contention.
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Answer>> _pending = new(SlotLockCount, 256, StringComparer.Ordinal);

    // Requests this node forwarded, by the request id it forwarded them under.
    private readonly ConcurrentDictionary<string, Relay> _relays = new(SlotLockCount, 256, StringComparer.Ordinal);

    // Request ids waiting for a py2p peer's answer, which carries no id: matched by connection and (method, position),
    // oldest first (py2p answers a connection's retrieves in order). A closed connection's queues go with it.
    private readonly ConcurrentDictionary<(MeshPeer, HashMethod, BigInteger), ConcurrentQueue<string>> _legacyWaiters = new();

    private long _requestCounter;
    private long _readsWidened;
    private long _retrievesAnswered;

    /// <summary>Queues <paramref name="requestId"/> for the next py2p answer on <paramref name="peer"/>'s connection for this position.</summary>
    private void AwaitPy2pAnswer(MeshPeer peer, HashMethod method, RingPosition position, string requestId) =>
        _legacyWaiters.GetOrAdd((peer, method, position.Value), _ => new()).Enqueue(requestId);

    /// <summary>
    /// Asks the owner of one position for its value. The result says how many hops the request took, which
    /// tests and benchmarks use to measure routing.
    /// </summary>
    /// <exception cref="ChordTimeoutException">No answer came within <see cref="RingOptions.RequestTimeout"/>.</exception>
    public async Task<RetrieveResult> RetrieveAsync(HashMethod method, RingPosition position, CancellationToken cancellationToken = default)
    {
        // An answer can be lost (an owner that never answers, a relay whose next hop died): never wait for ever.
        using var deadline = ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RequestTimeout, cancellationToken);
        Answer answer;
        try
        {
            answer = await RouteAsync(new PositionRequest(SubFlag.Retrieve, method, position), deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ChordTimeoutException(
                $"The owner of {method.WireName()} position {position} did not answer within {Options.RequestTimeout.TotalSeconds:0.#} s.", 0);
        }
        catch (MeshConnectException e)
        {
            throw new ChordTimeoutException($"The owner of {method.WireName()} position {position} cannot be reached: {e.Message}", 0);
        }

        RingMetrics.LookupHops.Record(answer.Hops);
        return new RetrieveResult(method, position, answer.Value, answer.Hops);
    }

    /// <summary>
    /// Retrieves the key's positions until <paramref name="enough"/> says the answers suffice, all five answered, or
    /// the token is cancelled (the deadline). Positions that fail to answer are simply missing from the list.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="enough">Whether the answers so far decide the read (called under the list's lock).</param>
    /// <param name="cancellationToken">The deadline.</param>
    /// <param name="first">
    /// How many positions to ask at once (the cheapest: those this node owns first); the others are asked when those
    /// answered without deciding, or when <see cref="RingOptions.ReadHedgeAfter"/> passed first. 5: all at once.
    /// </param>
    /// <param name="owners">
    /// The node of each position (a register read): the first positions asked are then on distinct nodes, as many as
    /// a decision needs (<see cref="DistinctNeeded"/>), after those this node owns.
    /// </param>
    private async Task<List<PositionAnswer>> CollectAsync(byte[] key, Func<List<PositionAnswer>, bool> enough, CancellationToken cancellationToken, int first = 5,
        string[]? owners = null)
    {
        // Each position's task reports into one list as it answers, and the first report that satisfies `enough`
        // (or the last one) ends the wait: one completion for the whole quorum, where a Task.WhenAny loop
        // registered a continuation on every pending task at each round (profiled at 11% of a get's CPU).
        var positions = KeyHashes.AllShared(key);
        var answers = new List<PositionAnswer>(5);
        var collected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = KeyHashes.Methods.Count; // positions not yet reported, asked or not
        var order = owners is null ? AskingOrder(positions, first) : AskingOrderOnDistinctNodes(owners, first);
        var firstOutstanding = order.First; // of the first positions asked, those not yet reported
        var restSent = order.First == order.Methods.Length ? 1 : 0;
        Ask(0, order.First, first: true);

        using var hedge = restSent == 0 && !collected.Task.IsCompleted
            ? Options.Mesh.TimeProvider.CreateTimer(static s => ((Action)s!)(), (Action)SendRest, Options.ReadHedgeAfter, Timeout.InfiniteTimeSpan)
            : null;
        await collected.Task;
        return answers; // complete: nothing is added once `collected` is set

        void SendRest()
        {
            if (Interlocked.Exchange(ref restSent, 1) != 0 || collected.Task.IsCompleted)
            {
                return;
            }

            RingMetrics.ReadsWidened.Add(1);
            Interlocked.Increment(ref _readsWidened);
            Ask(order.First, order.Methods.Length, first: false);
        }

        // Asks order.Methods[start..end): the positions one peer of ours owns two or more of in one batch
        // (RingNode.Batches.cs), the others one by one.
        void Ask(int start, int end, bool first)
        {
            Span<int> batchOf = stackalloc int[end - start]; // per position: the index (in this wave) of its batch's first position; -1: alone
            batchOf.Fill(-1);
            var targets = new MeshPeer?[end - start];
            var anyBatch = false;
            try
            {
                for (var i = 0; i < targets.Length; i++)
                {
                    targets[i] = BatchTarget(positions[(int)order.Methods[start + i]], RetrieveBatchVersion);
                    for (var j = 0; j < i && targets[i] is not null; j++)
                    {
                        if (ReferenceEquals(targets[j], targets[i]))
                        {
                            batchOf[i] = batchOf[j] = j;
                            anyBatch = true;
                            break;
                        }
                    }
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Every position goes alone (each reports, so the read cannot wait for one never asked).
                RingLog.BackgroundUnreachable(Logger, $"batching the retrieves of {Describe(key)} failed ({e.GetType().Name}); they go alone");
                batchOf.Fill(-1);
                anyBatch = false;
            }

            for (var i = 0; i < targets.Length; i++)
            {
                if (batchOf[i] < 0)
                {
                    _ = CollectOneAsync(order.Methods[start + i], first);
                }
            }

            if (!anyBatch)
            {
                return;
            }

            for (var i = 0; i < targets.Length; i++)
            {
                if (batchOf[i] != i)
                {
                    continue; // alone, or not the first position of its batch
                }

                var count = 0;
                for (var j = i; j < targets.Length; j++)
                {
                    count += batchOf[j] == i ? 1 : 0;
                }

                var methods = new HashMethod[count];
                for (int j = i, n = 0; j < targets.Length; j++)
                {
                    if (batchOf[j] == i)
                    {
                        methods[n++] = order.Methods[start + j];
                    }
                }

                _ = CollectBatchAsync(targets[i]!, methods, first);
            }
        }

        async Task CollectBatchAsync(MeshPeer peer, HashMethod[] methods, bool first)
        {
            Answer?[]? batch = null;
            try
            {
                batch = await RetrieveBatchAsync(peer, key, methods, cancellationToken);
            }
            catch (Exception)
            {
                // As for a lost answer: each position is asked alone below.
            }

            var yielded = false;
            for (var n = 0; n < methods.Length; n++)
            {
                if (batch?[n] is { } answer)
                {
                    Report(methods[n], answer, first);
                    continue;
                }

                if (collected.Task.IsCompleted)
                {
                    continue; // the read has ended (the batch was late): nothing to ask again
                }

                if (!yielded)
                {
                    // Off the read loop or timer that ended the wait: a routed request is not bookkeeping.
                    await Task.Yield();
                    yielded = true;
                }

                _ = CollectOneAsync(methods[n], first);
            }
        }

        async Task CollectOneAsync(HashMethod method, bool first)
        {
            Answer? answer = null;
            try
            {
                // Inline: the answer's read loop runs this and the collection step; `collected` hands over to the caller.
                answer = await RouteAsync(new PositionRequest(SubFlag.Retrieve, method, positions[(int)method]), cancellationToken, inlineAnswer: true);
                RingMetrics.LookupHops.Record(answer.Hops);
            }
            catch (Exception)
            {
                // A position that fails to answer (timeout, no route) is simply missing from the list.
            }

            Report(method, answer, first);
        }

        void Report(HashMethod method, Answer? answer, bool first)
        {
            var widen = false;
            lock (answers)
            {
                if (collected.Task.IsCompleted)
                {
                    return;
                }

                if (answer is not null)
                {
                    answers.Add(new PositionAnswer(method, positions[(int)method], answer));
                    if (enough(answers))
                    {
                        collected.TrySetResult();
                        return;
                    }
                }

                if (--pending == 0)
                {
                    collected.TrySetResult();
                    return;
                }

                // The first positions all reported and did not decide: ask the others (outside the lock, since a
                // position this node owns answers at once, on this thread).
                widen = first && --firstOutstanding == 0;
            }

            if (widen)
            {
                SendRest();
            }
        }
    }

    /// <summary>
    /// The order in which a read asks a key's positions, and how many of them to ask at once: all five in method order
    /// when all go at once; otherwise those this node owns first (no frame), then the others in method order.
    /// </summary>
    private (HashMethod[] Methods, int First) AskingOrder(ImmutableArray<RingPosition> positions, int first)
    {
        if (first >= positions.Length || Options.ReadHedgeAfter <= TimeSpan.Zero)
        {
            return (MethodOrder, positions.Length); // no ownership to look up
        }

        var owned = 0;
        for (var i = 0; i < positions.Length; i++)
        {
            if (OwnerOf(positions[i].Reduced, null)?.Id == Id)
            {
                owned |= 1 << i;
            }
        }

        return (OwnedFirst[owned], Math.Max(first, 1));
    }

    /// <summary>
    /// The asking order of a register read: the positions this node owns (no frame), then the other nodes' positions
    /// node by node, the nodes that own the most of them first (one frame asks them all: RingNode.Batches.cs); the first
    /// batch is the shortest prefix that holds <paramref name="first"/> positions on <see cref="DistinctNeeded"/>
    /// distinct nodes (a read decides on no fewer: see <c>Decided</c> in RingNode.Register.cs), with the rest of its
    /// last node's positions, which the same frame asks.
    /// </summary>
    private (HashMethod[] Methods, int First) AskingOrderOnDistinctNodes(string[] owners, int first)
    {
        if (first >= owners.Length || Options.ReadHedgeAfter <= TimeSpan.Zero)
        {
            return (MethodOrder, owners.Length);
        }

        var order = new HashMethod[owners.Length];
        var n = 0;
        for (var i = 0; i < owners.Length; i++)
        {
            if (owners[i] == Id)
            {
                order[n++] = (HashMethod)i;
            }
        }

        var own = n;
        while (n < owners.Length)
        {
            // The node with the most positions not yet placed (the first in method order among equals), all of them.
            var best = -1;
            var bestCount = 0;
            for (var i = 0; i < owners.Length; i++)
            {
                if (owners[i] == Id || NodeAmong(owners, order, n, owners[i]))
                {
                    continue;
                }

                var count = 0;
                for (var j = i; j < owners.Length; j++)
                {
                    count += owners[j] == owners[i] ? 1 : 0;
                }

                if (count > bestCount)
                {
                    (best, bestCount) = (i, count);
                }
            }

            for (var j = best; j < owners.Length; j++)
            {
                if (owners[j] == owners[best])
                {
                    order[n++] = (HashMethod)j;
                }
            }
        }

        // The shortest prefix (own positions included) with `first` positions on enough distinct nodes.
        var needed = DistinctNeeded(owners, ReadSpread);
        var batch = 0;
        var distinct = 0;
        while (batch < order.Length)
        {
            if (!NodeAmong(owners, order, batch, owners[(int)order[batch]]))
            {
                distinct++;
            }

            batch++;
            if (batch >= own && batch >= first && distinct >= needed)
            {
                break;
            }
        }

        // The last node's other positions too: one frame asks them all (or, to a node that takes no batch, yet, a
        // request more; the order stays the same whatever the connections).
        var last = owners[(int)order[batch - 1]];
        while (batch > own && batch < order.Length && owners[(int)order[batch]] == last)
        {
            batch++;
        }

        return (order, batch);

        static bool NodeAmong(string[] owners, HashMethod[] order, int count, string node)
        {
            for (var j = 0; j < count; j++)
            {
                if (owners[(int)order[j]] == node)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Test hook: the positions a register read of <paramref name="key"/> from this node asks first, in order.</summary>
    internal HashMethod[] FirstAskedForTest(string key)
    {
        var bytes = KeyBytes(key);
        var (methods, first) = AskingOrderOnDistinctNodes(PositionOwners(bytes), Options.ReadQuorum);
        return methods[..first];
    }

    /// <summary>How many distinct nodes a register read's deciding answers must come from: <paramref name="atMost"/>, or every node the key has.</summary>
    private static int DistinctNeeded(string[] owners, int atMost)
    {
        var distinct = 0;
        for (var i = 0; i < owners.Length; i++)
        {
            if (Array.IndexOf(owners, owners[i], 0, i) < 0)
            {
                distinct++;
            }
        }

        return Math.Min(atMost, distinct);
    }

    /// <summary>
    /// For each set of positions this node owns (a bit per method), the five methods with those first, each group in
    /// method order: made once (read only, shared), not per read.
    /// </summary>
    private static readonly HashMethod[][] OwnedFirst = [.. Enumerable.Range(0, 32).Select(owned =>
        Enumerable.Range(0, 5).OrderBy(i => (owned & (1 << i)) != 0 ? 0 : 1).ThenBy(i => i).Select(i => (HashMethod)i).ToArray())];

    /// <summary>The five methods in order (read only: shared by every read that asks all five at once).</summary>
    private static HashMethod[] MethodOrder => OwnedFirst[0];

    /// <summary>Sends one request per position, all at once; returns each position's answer, or null where none came.</summary>
    private async Task<Answer?[]> SendToPositionsAsync(byte[] key, Func<HashMethod, RingPosition, PositionRequest?> request, CancellationToken cancellationToken)
    {
        // As in CollectAsync: the answers run their bookkeeping inline on the read loop that brought them, and one
        // completion (asynchronous, so the caller's code never runs on a read loop) ends the wait when all are in.
        var positions = KeyHashes.AllShared(key);
        var answers = new Answer?[KeyHashes.Methods.Count];
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var outstanding = 1; // this method's own share, so that no early answer can end the wait before all are sent
        foreach (var method in KeyHashes.Methods)
        {
            if (request(method, positions[(int)method]) is { } r)
            {
                Interlocked.Increment(ref outstanding);
                _ = SendOneAsync((int)method, r);
            }
        }

        if (Interlocked.Decrement(ref outstanding) == 0)
        {
            done.TrySetResult();
        }

        await done.Task;
        return answers;

        async Task SendOneAsync(int index, PositionRequest positionRequest)
        {
            try
            {
                answers[index] = await RouteAsync(positionRequest, cancellationToken, inlineAnswer: true);
            }
            catch (Exception)
            {
                // A position that fails (timeout, no route, the deadline) stays null; the caller counts the answers.
            }

            if (Interlocked.Decrement(ref outstanding) == 0)
            {
                done.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Takes one request to the owner of its position: handled here when this node owns it, otherwise forwarded to
    /// the best next hop, and re-routed when that hop's connection closes.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">The deadline.</param>
    /// <param name="inlineAnswer">
    /// Run the continuation on the read loop that brings the answer (no thread hop), for callers whose continuation is
    /// our own short bookkeeping that ends in an asynchronous completion; never for a caller that may run user code.
    /// </param>
    private async Task<Answer> RouteAsync(PositionRequest request, CancellationToken cancellationToken, bool inlineAnswer = false)
    {
        RingMetrics.Requests.Add(1);
        HashSet<string>? excluded = null; // made on the first retry
        var sentBefore = false; // an earlier attempt went out and its answer never came
        for (var attempt = 0; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = await NextHopAsync(request.Position, excluded, null, null, cancellationToken);
            if (next is null)
            {
                var local = ApplyLocally(request, hops: 0);
                if (local.Error != MovedAway || attempt + 1 >= Options.MaxRouteAttempts)
                {
                    return sentBefore ? local with { AfterResend = true } : local;
                }

                continue; // a member took the position over since we decided: route it again
            }

            var requestId = NewRequestId();
            var pending = new TaskCompletionSource<Answer>(inlineAnswer ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[requestId] = pending;
            try
            {
                var speaksExtensions = await SpeaksExtensionsAsync(next, cancellationToken);
                next.ClosedToken.ThrowIfCancellationRequested(); // it closed while we waited: go around it
                if (!speaksExtensions && request.IsRegister)
                {
                    // py2p has no register: a prepare or accept is never sent its way (the key takes the py2p path).
                    return Answer.Refused(1, PyOwnerHasNoRegister);
                }

                if (!speaksExtensions && request.Kind == SubFlag.Retrieve)
                {
                    AwaitPy2pAnswer(next, request.Method, request.Position, requestId);
                }

                if (!speaksExtensions && request.Kind != SubFlag.Retrieve)
                {
                    if (request.Kind != SubFlag.Store || OwnerOf(request.Position.Reduced, null)?.Id != next.Id)
                    {
                        // A delta (its result is unknown) or a py2p node that forwards it on: nothing can confirm it.
                        await next.WhisperOwningAsync(RequestPayload(request, requestId, hops: 1), cancellationToken);
                        return Answer.Refused(1, PyOwnerCannotAcknowledge);
                    }

                    return await StoreAtPy2pOwnerAsync(next, request, cancellationToken);
                }

                await next.WhisperOwningAsync(RequestPayload(request, requestId, hops: 1), cancellationToken);
                var resent = sentBefore;
                sentBefore = true;
                if (IsSuspect(next.Id!))
                {
                    // It has not answered for a while: the request went out (an answer clears the mark), but it is
                    // not waited for. A suspect next hop that is not the owner is routed around instead.
                    if (OwnerOf(request.Position.Reduced, null)?.Id == next.Id)
                    {
                        RingMetrics.SuspectSkips.Add(1);
                        throw new ChordTimeoutException($"The owner {next.Id} of {request.Method.WireName()} position {request.Position} is suspect (no answer for {Options.SuspectAfter.TotalSeconds:0.#} s).", 0);
                    }

                    (excluded ??= new HashSet<string>(StringComparer.Ordinal)).Add(next.Id!);
                    continue;
                }

                Awaiting(next);

                // Two registrations instead of a linked source and WaitAsync (both per request, both on the profile),
                // and, unless this is the last attempt, a timer: an answer lost beyond the next hop (a relay whose own
                // next hop died with the request) is asked for again instead of waited for until the deadline.
                using var onDeadline = cancellationToken.UnsafeRegister(CancelPending, pending);
                using var onClose = next.ClosedToken.UnsafeRegister(CancelPending, pending);
                using var onAttemptTimeout = attempt + 1 < Options.MaxRouteAttempts
                    ? Options.Mesh.TimeProvider.CreateTimer(CancelPendingOnTimer, pending, Options.AttemptTimeout, Timeout.InfiniteTimeSpan)
                    : null;
                var answer = await pending.Task;
                return resent ? answer with { AfterResend = true } : answer;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && attempt + 1 < Options.MaxRouteAttempts)
            {
                // The next hop's connection closed before it answered: never wait on a dead peer; go around it. Not
                // around the owner itself: the mesh also closes a connection as the duplicate of another (both ends
                // dialled at once, as after a reconnect), and skipping a live owner made the next member, often this
                // node, store an entry it does not own. The next attempt finds the surviving connection, or dials the
                // owner again. No answer within the attempt's time, on an open connection: the same route is asked
                // again (a relay whose own next hop died has routed around it by now; one that stopped answering is
                // suspect and skipped), since every exclusion is a node the next route may not use.
                if (next.IsClosed && OwnerOf(request.Position.Reduced, null)?.Id != next.Id)
                {
                    (excluded ??= new HashSet<string>(StringComparer.Ordinal)).Add(next.Id!);
                }

                RingMetrics.RouteRetries.Add(1);
            }
            finally
            {
                if (!pending.Task.IsCompletedSuccessfully)
                {
                    // An answer removes its entry before it completes the wait (CompleteAsync); what ended otherwise
                    // (a deadline, a closed connection, a refusal before the send) leaves its entry for us to remove.
                    _pending.TryRemove(requestId, out _);
                }
            }
        }
    }

    /// <summary>
    /// A store at a py2p owner, confirmed the only way py2p can confirm it: py2p handles one connection's messages in
    /// order, so a retrieve sent right after the store on the same connection is answered after the store was applied,
    /// and the written value in that answer proves it. A delete first asks what the owner holds, and sends nothing when
    /// it holds nothing: py2p's <c>del</c> of an absent entry raises <c>KeyError</c>, and py2p drops the connection.
    /// </summary>
    private async Task<Answer> StoreAtPy2pOwnerAsync(MeshPeer owner, PositionRequest request, CancellationToken cancellationToken)
    {
        var written = request.Value ?? MsgValue.Nil;
        if (written.IsNil && (await AskPy2pAsync(owner, request, storeFirst: false, cancellationToken)).IsNil)
        {
            return Py2pConfirmed;
        }

        return (await AskPy2pAsync(owner, request, storeFirst: true, cancellationToken)).Equals(written)
            ? Py2pConfirmed
            : Answer.Refused(1, "the py2p owner did not hold the written value when asked right after the store");
    }

    /// <summary>Sends a retrieve to a py2p owner (after the store, when <paramref name="storeFirst"/>) and returns the value it answers.</summary>
    private async Task<MsgValue> AskPy2pAsync(MeshPeer owner, PositionRequest request, bool storeFirst, CancellationToken cancellationToken)
    {
        var requestId = NewRequestId();
        var pending = new TaskCompletionSource<Answer>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[requestId] = pending;
        try
        {
            // The waiter first: py2p's answer carries no request id and is matched by (method, position).
            AwaitPy2pAnswer(owner, request.Method, request.Position, requestId);
            if (storeFirst)
            {
                await owner.WhisperOwningAsync(RequestPayload(request, requestId, hops: 1), cancellationToken);
            }

            await owner.WhisperOwningAsync(RequestPayload(new PositionRequest(SubFlag.Retrieve, request.Method, request.Position), requestId, hops: 1), cancellationToken);
            Awaiting(owner);
            using var onDeadline = cancellationToken.UnsafeRegister(CancelPending, pending);
            using var onClose = owner.ClosedToken.UnsafeRegister(CancelPending, pending);
            return (await pending.Task).Value;
        }
        finally
        {
            _pending.TryRemove(requestId, out _);
        }
    }

    private static Answer Py2pConfirmed => new(MsgValue.Nil, 1, true, null, MsgValue.True, null, null, Versioned: false) { ConfirmedByPy2p = true };

    /// <summary>
    /// Ends a wait for an answer that will not come. From the thread pool: an inline continuation must not run
    /// inside whoever cancelled (a connection's Close, a timer).
    /// </summary>
    private static readonly Action<object?> CancelPending = static state =>
        ThreadPool.UnsafeQueueUserWorkItem(static s => ((TaskCompletionSource<Answer>)s!).TrySetCanceled(), state);

    private static readonly TimerCallback CancelPendingOnTimer = static state => CancelPending(state);

    private const string PyOwnerCannotAcknowledge = "a py2p node cannot acknowledge writes";

    private const string PyOwnerHasNoRegister = "the owner is a py2p node, which has no register";

    /// <summary>A request id unique to this node: the first characters of its id, a dot and a counter (one string).</summary>
    private string NewRequestId()
    {
        var prefix = Id.AsSpan(0, Math.Min(8, Id.Length));
        var counter = Interlocked.Increment(ref _requestCounter);
        Span<char> buffer = stackalloc char[32];
        prefix.CopyTo(buffer);
        buffer[prefix.Length] = '.';
        counter.TryFormat(buffer[(prefix.Length + 1)..], out var digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        return new string(buffer[..(prefix.Length + 1 + digits)]);
    }

    /// <summary>
    /// The wire form of a request. The first packets are exactly py2p's; what follows (request id, hops, version,
    /// key, and the replica mark) are trailing packets py2p ignores (PROTOCOL.md §6).
    /// </summary>
    private static MsgValue[] RequestPayload(PositionRequest request, string requestId, int hops)
    {
        var methodName = WireCache.MethodName(request.Method);
        var pos = WireCache.PositionBin(request.Position.Value);
        if (request.Kind == SubFlag.Retrieve)
        {
            return [(long)SubFlag.Retrieve, methodName, pos, requestId, hops];
        }

        var keyPacket = request.Key is null ? MsgValue.Nil : MsgValue.Bin(request.Key);
        if (request.Kind == PrepareKind)
        {
            return [(long)RingSubFlag.Prepare, methodName, pos, requestId, hops, request.Ballot!.Value.ToMsgValue(), keyPacket];
        }

        if (request.Kind == AcceptKind)
        {
            return [(long)RingSubFlag.Accept, methodName, pos, request.Value!, requestId, hops, request.Ballot!.Value.ToMsgValue(),
                request.Version!.Value.ToMsgValue(), keyPacket, request.Next?.ToMsgValue() ?? MsgValue.Nil];
        }

        var version = request.Version?.ToMsgValue() ?? MsgValue.Nil;
        var key = request.Key is null ? MsgValue.Nil : MsgValue.Bin(request.Key);
        return request.Replica || request.Handoff
            ? [(long)request.Kind, methodName, pos, request.Value!, requestId, hops, version, key, request.Replica ? ReplicaMark : HandoffMark]
            : [(long)request.Kind, methodName, pos, request.Value!, requestId, hops, version, key];
    }

    private const string ReplicaMark = "replica";

    private const string HandoffMark = "handoff";

    /// <summary>
    /// The connection a request for <paramref name="position"/> should go to next, or null when this node is the
    /// owner. Greedy: the connected storing peer nearest at or before the position, when it is nearer than we
    /// are. When no connected peer is nearer but the directory names another owner (a connection not made yet),
    /// the owner is dialled.
    /// </summary>
    /// <param name="position">Where the request goes.</param>
    /// <param name="excluded">Peers not to use (dead next hops), or null.</param>
    /// <param name="excludedId">One more peer not to use (the one the request came from), or null.</param>
    /// <param name="cancellationToken">Ends a dial.</param>
    /// <param name="dialTimeout">When given, a dial also ends after this long (made only when a dial is needed).</param>
    private ValueTask<MeshPeer?> NextHopAsync(RingPosition position, IReadOnlySet<string>? excluded, string? excludedId, TimeSpan? dialTimeout, CancellationToken cancellationToken)
    {
        // The per-request path: comparisons only (no distance arithmetic), no snapshot of the routing table.
        var target = position.Reduced;
        MeshPeer? best = null;
        RingPosition bestPosition = default;
        var haveBest = _storing;
        if (haveBest)
        {
            bestPosition = Position;
        }

        foreach (var peer in Mesh.RoutingSnapshot)
        {
            var id = peer.Id;
            if (id is null || peer.IsClosed || id == excludedId || (excluded is not null && excluded.Contains(id)) || !IsStoringMember(id, out var member))
            {
                continue;
            }

            if (IsPy2pMember(member) && OwnerOf(target, null)?.Id != id)
            {
                // Never through a py2p node that is not the owner: py2p answers a retrieve it forwards at once with
                // None (its lookup has no value yet) and later again with the owner's value, and it cannot confirm a
                // store it forwards. The owner is reached through our own nodes, or dialled.
                continue;
            }

            if (!haveBest || RingPosition.IsNearer(member.Position, bestPosition, target))
            {
                best = peer;
                bestPosition = member.Position;
                haveBest = true;
            }
        }

        return best is not null ? ValueTask.FromResult<MeshPeer?>(best) : DialOwnerAsync(target, excluded, excludedId, dialTimeout, cancellationToken);
    }

    /// <summary>No connected peer is nearer than we are: we own the position, or the directory names an owner not connected yet, which is dialled.</summary>
    private async ValueTask<MeshPeer?> DialOwnerAsync(RingPosition target, IReadOnlySet<string>? excluded, string? excludedId, TimeSpan? dialTimeout, CancellationToken cancellationToken)
    {
        var owner = OwnerOf(target, excluded);
        if (excludedId is not null && owner?.Id == excludedId)
        {
            // Leaving one more member out changes the owner only when it was that member: the set is made only then
            // (this runs for every request a node owns, with the sender as excludedId).
            excluded = new HashSet<string>(excluded ?? Enumerable.Empty<string>(), StringComparer.Ordinal) { excludedId };
            owner = OwnerOf(target, excluded);
        }

        if (owner is null || owner.Id == Id)
        {
            return _storing ? null : throw new ChordTimeoutException("No storing node is known: join the ring, or connect to one that has joined.", 0);
        }

        using var timeout = dialTimeout is { } t ? ClockDeadline.Start(Options.Mesh.TimeProvider, t, cancellationToken) : null;
        try
        {
            return await Mesh.ConnectAsync(owner.Address, owner.Id, timeout?.Token ?? cancellationToken);
        }
        catch (OperationCanceledException e) when (_disposed == 0 && timeout is not null && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // The dial did not complete in time (a frozen owner): the same as one that failed.
            CheckUnreachableOwner(owner);
            throw new MeshConnectException($"The owner {owner.Id} at {owner.Address} did not complete a connection within {dialTimeout!.Value.TotalSeconds:0.#} s.", e);
        }
        catch (MeshConnectException) when (_disposed == 0 && IsPy2pMember(owner))
        {
            // A py2p owner has no register (its keys take py2p's path, where the best node known answers, as py2p's
            // own routing does): answered here, as before, while it is checked.
            CheckUnreachableOwner(owner);
            return null;
        }
        catch (MeshConnectException) when (_disposed == 0)
        {
            // The directory's owner cannot be reached (gone, and not removed yet). Answering for it from our own table
            // would make this node a second acceptor for its positions, one that holds nothing: a prepare could count
            // it toward a quorum that misses the committed value, and commit an older one over it (one way the
            // crash profile of RingSimulationTests can lose a write). The request fails instead, and the member is
            // checked: once it is removed, its predecessor owns its positions and repair fills them.
            CheckUnreachableOwner(owner);
            throw;
        }
    }

    private readonly ConcurrentDictionary<string, byte> _checkingOwners = new(StringComparer.Ordinal);

    /// <summary>Checks an owner that could not be dialled (one check at a time per member): removed if it still cannot be.</summary>
    private void CheckUnreachableOwner(RingMember owner)
    {
        if (!_checkingOwners.TryAdd(owner.Id, 0))
        {
            return;
        }

        RunInBackground(async () =>
        {
            try
            {
                await RemoveUnlessReachableAsync(owner, "it owns a position asked for and cannot be dialled", tell: true);
            }
            finally
            {
                _checkingOwners.TryRemove(owner.Id, out _);
            }
        });
    }

    /// <summary>Handles a request at the owner: this node.</summary>
    private Answer ApplyLocally(PositionRequest request, int hops)
    {
        if (HoldApplyForTest is { } hold && request.Kind != SubFlag.Retrieve && !request.Replica)
        {
            hold(request.Method, request.Position);
        }

        var answer = ApplyLocallyUntraced(request, hops);
        if (Logger.IsEnabled(LogLevel.Trace))
        {
            _table.TryGetValue((request.Method, request.Position.Value), out var held);
            RingLog.OwnerApplied(Logger, Id, TraceText.Position(request.Method, request.Position), TraceText.Of(request), TraceText.Of(answer), TraceText.Of(held));
        }

        return answer;
    }

    private Answer ApplyLocallyUntraced(PositionRequest request, int hops)
    {
        if (AnswerBeforeFence(request, hops) is { } beforeFence)
        {
            return beforeFence;
        }

        var slot = (request.Method, request.Position.Value);
        switch (request.Kind)
        {
            case SubFlag.Retrieve:
                Interlocked.Increment(ref _retrievesAnswered);
                return _table.TryGetValue(slot, out var held) && !held.IsPromiseOnly
                    ? new Answer(held.Value, hops, true, null, null, held.Version, held.Key, Versioned: held.Version is not null || !held.HasValue)
                    {
                        Accepted = held.Version is null ? null : held.AcceptedBallot,
                        IsCopy = held.IsHint, // a copy or a restored entry: neither decides a read alone
                    }
                    : new Answer(MsgValue.Nil, hops, true, null, null, null, null, Versioned: true)
                    {
                        IsCopy = TakenOverJustNow(slot.Value), // nothing here, at a position taken over from a crashed member: a gap, not an answer
                    };
            case PrepareKind:
                return ApplyPrepare(slot, request, hops);
            case AcceptKind:
                return ApplyAccept(slot, request, hops);
            case SubFlag.Store:
                return ApplyStore(slot, request, hops);
            case SubFlag.Delta:
                return ApplyDelta(slot, request, hops);
            default:
                throw new ArgumentOutOfRangeException(nameof(request), request.Kind, "Only store, retrieve, delta, prepare and accept reach an owner.");
        }
    }

    /// <summary>
    /// A store at the owner. A versioned store is an accept of the key's register at the ballot of its version (see
    /// <c>ApplyVersionedStore</c>): taken when nothing newer is held or promised, acknowledged when it repeats what is
    /// held, refused (saying so) otherwise; a nil value leaves a tombstone. An unversioned store (from py2p) replaces
    /// the entry as py2p does, and nil deletes it.
    /// </summary>
    private Answer ApplyStore((HashMethod Method, BigInteger Position) slot, PositionRequest request, int hops)
    {
        var value = request.Value ?? MsgValue.Nil;
        if (request.Version is not { } version)
        {
            lock (LockFor(slot))
            {
                // py2p's store replaces the value but never the register's promise: a proposer counting on it
                // must still find it (the value itself has no ballot, so reads of it take py2p's rule).
                _table.TryGetValue(slot, out var current);
                var promise = current?.PromisedBallot is { } p && p > EntryVersion.Zero ? p : (EntryVersion?)null;
                if (value.IsNil && promise is null)
                {
                    RemoveEntry(slot);
                }
                else
                {
                    PutEntry(slot, new StoredEntry(value, null, request.Key ?? current?.Key, Promised: promise));
                }
            }

            return new Answer(MsgValue.Nil, hops, true, null, MsgValue.True, null, null, Versioned: false);
        }

        var answer = ApplyVersionedStore(slot, value, version, request.Key, hops, out var applied, copy: request.Replica, handoff: request.Handoff, sender: request.Sender);
        if (applied && !request.Replica && request.Key is { } key && PlacementCopiesApply)
        {
            // Tombstones too: a copy left holding the old value would otherwise outlive the delete.
            RunInBackground(() => KeepPlacementCopyAsync(request.Method, request.Position, value, version, key));
        }

        return answer;
    }

    /// <summary>
    /// A delta at the owner. py2p's delta (no version: from a peer that did not authenticate, or without our trailing
    /// packets) merges only into py2p's own unversioned value, an empty position or a bare promise, as py2p does, and
    /// keeps the promise; it never changes an entry of the register (a value or tombstone with a version: it would keep
    /// the honest version, and so the ETag, over a value its sender chose, or bring a deleted key back): refused
    /// (<see cref="Py2pDeltaOverRegister"/>), the entry unchanged. A versioned delta (our py2p-path write) merges at the
    /// newer of the two versions and keeps the promise; the result is a hint (restored), since no proposer accepted it.
    /// </summary>
    private Answer ApplyDelta((HashMethod Method, BigInteger Position) slot, PositionRequest request, int hops)
    {
        var delta = request.Value ?? MsgValue.Nil;
        if (delta.Kind != MsgKind.Map)
        {
            return Answer.Refused(hops, $"a delta must be a map, not a {delta.Kind}");
        }

        lock (LockFor(slot))
        {
            _table.TryGetValue(slot, out var current);
            if (request.Version is null && current?.Version is not null)
            {
                return Answer.Refused(hops, Py2pDeltaOverRegister);
            }

            var stored = current is null || !current.HasValue ? MsgValue.Map(Array.Empty<KeyValuePair<MsgValue, MsgValue>>()) : current.Value;
            if (stored.Kind != MsgKind.Map)
            {
                return Answer.Refused(hops, $"the stored value is a {stored.Kind}, not a map, so a delta cannot merge into it");
            }

            var result = MergeMaps(stored.AsMap(), delta);
            var key = request.Key ?? current?.Key;
            if (request.Version is not { } incoming)
            {
                // py2p's value (or nothing yet): merged as py2p does; a promise held here stays, as an unversioned store keeps it.
                var promise = current?.PromisedBallot is { } p && p > EntryVersion.Zero ? p : (EntryVersion?)null;
                PutEntry(slot, new StoredEntry(result, null, key, Promised: promise));
                return new Answer(MsgValue.Nil, hops, true, null, result, null, null, Versioned: false);
            }

            var version = current?.Version is { } held && held > incoming ? held : incoming;
            var merged = current is null
                ? new StoredEntry(result, version, key, IsRestored: true)
                : current with
                {
                    Value = result,
                    Version = version,
                    Key = key,
                    Accepted = current.Accepted is { } accepted && accepted > version ? accepted : null,
                    Promised = current.PromisedBallot > version ? current.PromisedBallot : null, // a promise never goes back
                    IsRestored = true,
                };
            PutEntry(slot, merged);
            return new Answer(MsgValue.Nil, hops, true, null, result, version, null, Versioned: true);
        }
    }

    /// <summary>The refusal of py2p's (unversioned) delta at a position that holds an entry of the register.</summary>
    private const string Py2pDeltaOverRegister = "a py2p delta (no version) cannot change a versioned entry of the register; the entry is unchanged";

    /// <summary>One request for one position.</summary>
    /// <param name="Kind">store, retrieve or delta.</param>
    /// <param name="Method">The position's hash method.</param>
    /// <param name="Position">The position.</param>
    /// <param name="Value">The value to store (nil: delete) or the delta map.</param>
    /// <param name="Version">The version of a write; null from py2p.</param>
    /// <param name="Key">The original key, kept with the entry so holders can find its other positions.</param>
    /// <param name="Replica">A placement copy: stored where it is sent, whoever owns the position.</param>
    /// <param name="Ballot">The register ballot of a prepare or an accept.</param>
    /// <param name="Next">An accept's request to promise the proposer's next ballot too (the sticky proposer).</param>
    /// <param name="Handoff">
    /// A versioned store from the position's interim owner, handing back its own acceptor state (accepted while the
    /// receiver was away): it replaces what the receiver loaded at start, whatever their ballots (see ApplyVersionedStore).
    /// </param>
    private sealed record PositionRequest(SubFlag Kind, HashMethod Method, RingPosition Position, MsgValue? Value = null,
        EntryVersion? Version = null, byte[]? Key = null, bool Replica = false, EntryVersion? Ballot = null, EntryVersion? Next = null, bool Handoff = false)
    {
        /// <summary>A prepare or an accept of the key's register (our sub-flags, never sent to py2p).</summary>
        public bool IsRegister => Kind is PrepareKind or AcceptKind;

        /// <summary>The node a store came from, at the owner that applies it (see <c>OwnedElsewhere</c>); null for our own.</summary>
        public string? Sender { get; init; }
    }

    // The register's requests travel as PositionRequests too; their kinds are our sub-flags.
    private const SubFlag PrepareKind = (SubFlag)RingSubFlag.Prepare;
    private const SubFlag AcceptKind = (SubFlag)RingSubFlag.Accept;

    /// <summary>An answer to one position request.</summary>
    /// <param name="Value">The retrieved value (retrieve); nil when the position holds nothing or a tombstone.</param>
    /// <param name="Hops">Forwarding hops the request took.</param>
    /// <param name="Ok">True when the owner applied the request.</param>
    /// <param name="Error">Why the owner refused it.</param>
    /// <param name="Result">What the owner returned for a write (the merged map for a delta).</param>
    /// <param name="Version">The version held (retrieve) or stored (write); null when none.</param>
    /// <param name="Key">The original key of the entry, when the owner knows it.</param>
    /// <param name="Versioned">False when a py2p node answered, or the entry was written by one: py2p's rules apply.</param>
    private sealed record Answer(MsgValue Value, int Hops, bool Ok, string? Error, MsgValue? Result, EntryVersion? Version, byte[]? Key, bool Versioned)
    {
        /// <summary>The ballot the held value was accepted under (retrieve, prepare, accept); null when unknown (py2p).</summary>
        public EntryVersion? Accepted { get; init; }

        /// <summary>The acceptor's promise after a prepare or an accept (granted or not); null when unknown.</summary>
        public EntryVersion? Promised { get; init; }

        /// <summary>What the position holds is a placement copy: a hint, maybe older than the key's value.</summary>
        public bool IsCopy { get; init; }

        /// <summary>A py2p owner's store, proven applied by its answer to a retrieve sent right after it.</summary>
        public bool ConfirmedByPy2p { get; init; }

        /// <summary>
        /// The answer to a later attempt of a request an earlier attempt of which was sent and never answered: that
        /// attempt may have been applied, whatever this answer says (RingRegisterTransport reads a refusal then as
        /// unheard).
        /// </summary>
        public bool AfterResend { get; init; }

        public static Answer Refused(int hops, string why) => new(MsgValue.Nil, hops, false, why, null, null, null, Versioned: false);
    }

    /// <summary>What one of a key's positions answered.</summary>
    private sealed record PositionAnswer(HashMethod Method, RingPosition Position, Answer Answer);

    /// <summary>A request this node forwarded: whom to send the answer back to, and under which id.</summary>
    private sealed record Relay(MeshPeer From, string? OriginalRequestId, SubFlag Kind, HashMethod Method, RingPosition Position, long Expires);
}
