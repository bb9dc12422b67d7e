using System.Collections.Immutable;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>What the ring does with each message (PROTOCOL.md §5 and our §6 extensions).</summary>
public sealed partial class RingNode
{
    private async ValueTask<bool> HandleAsync(MeshMessage received)
    {
        var p = received.Payload;
        var from = received.Peer;
        if (from.Id is { } fromId)
        {
            Heard(fromId);
        }

        if (!from.IsAuthenticated)
        {
            var length = p.Length;
            if (!TrimToPy2p(received.Message.SubFlagValue, ref p))
            {
                LogRefusedOnce(from, "one of our extension messages from a peer that has not authenticated");
                return true; // our extensions are for authenticated peers only (docs/SECURITY.md): claimed and ignored
            }

            if (p.Length < length)
            {
                LogRefusedOnce(from, "the trailing packets (request id, version, key) of a py2p message from a peer that has not authenticated; taken as py2p's form");
            }
        }

        if (Volatile.Read(ref DropRequestsForTest) > 0
            && received.Message.SubFlagValue is (int)SubFlag.Store or (int)SubFlag.Delta or (int)SubFlag.Retrieve or (int)RingSubFlag.Prepare or (int)RingSubFlag.Accept or (int)RingSubFlag.Accepts or (int)RingSubFlag.Retrieves
            && Interlocked.Decrement(ref DropRequestsForTest) >= 0)
        {
            return true;
        }

        switch (received.Message.SubFlagValue)
        {
            case (int)SubFlag.Handshake when p.Length == 2:
                HandleChordMeta(from, p[1]);
                return true;
            case (int)SubFlag.Store or (int)SubFlag.Delta when p.Length >= 4:
                await HandleWriteAsync(from, (SubFlag)p[0].AsInt64(), p);
                return true;
            case (int)SubFlag.Retrieve when p.Length >= 3:
                await HandleRetrieveAsync(from, p);
                return true;
            case (int)SubFlag.Retrieved when p.Length >= 4:
                await HandleRetrievedAsync(from, p);
                return true;
            case (int)SubFlag.Notify when p.Length is 2 or 3:
                HandleNotify(p);
                return true;
            case (int)RingSubFlag.Prepare when p.Length >= 7:
            case (int)RingSubFlag.Accept when p.Length >= 10:
                await HandleRegisterRequestAsync(from, p);
                return true;
            case (int)RingSubFlag.Accepts:
                await HandleAcceptsAsync(from, p);
                return true;
            case (int)RingSubFlag.Acks:
                HandleBatchAnswer(from, p, RingSubFlag.Acks);
                return true;
            case (int)RingSubFlag.Retrieves:
                await HandleRetrievesAsync(from, p);
                return true;
            case (int)RingSubFlag.Values:
                HandleBatchAnswer(from, p, RingSubFlag.Values);
                return true;
            case (int)RingSubFlag.Copies when p.Length >= 6:
                HandleCopies(from, p);
                return true;
            case (int)RingSubFlag.Ack when p.Length >= 5:
                await HandleAckAsync(p);
                return true;
            case (int)RingSubFlag.Member when p.Length >= 2:
                if (TryReadMember(p[1], out var member))
                {
                    MergeMember(member);
                }

                return true;
            case (int)RingSubFlag.Gone when p.Length >= 3:
                HandleGone(p[1], p[2]);
                return true;
            case (int)RingSubFlag.Hello when p.Length >= 3:
                HandleHello(from, p[2], askedBack: p.Length >= 4 && p[3].Kind == MsgKind.Bool && p[3].AsBool(), version: p[1].TryGetInt32(out var helloVersion) ? helloVersion : 0);
                return true;
            case (int)RingSubFlag.Fence when p.Length >= 2:
                HandleFence(from, p[1]);
                return true;
            case (int)RingSubFlag.Fenced when p.Length >= 2 && p[1].Kind == MsgKind.Int:
                // A node of ours from before the serving flag sends none: its answer is taken as it always was.
                if (p.Length >= 3 && p[2].Kind != MsgKind.Bool)
                {
                    RingLog.Malformed(Logger, "fenced", from.Id ?? "?");
                    return true;
                }

                HandleFenced(from, p[1].AsInt64(), serving: p.Length < 3 || p[2].AsBool());
                return true;
            case (int)RingSubFlag.Digest when p.Length >= 3 && p[1].Kind == MsgKind.Bin && p[2].Kind == MsgKind.Bool:
                HandleDigest(from, p[1].AsBytes().Span, p[2].AsBool());
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// What an unauthenticated (py2p) peer may send: py2p's own sub-flags only, read as py2p reads them, so trailing
    /// packets (our request ids, versions) are dropped. False for anything else.
    /// </summary>
    private static bool TrimToPy2p(int? subFlag, ref ImmutableArray<MsgValue> p)
    {
        if (subFlag is not (>= 0 and <= byte.MaxValue) || !Enum.IsDefined((SubFlag)subFlag.Value))
        {
            return false;
        }

        var arity = subFlag switch
        {
            (int)SubFlag.Store or (int)SubFlag.Delta or (int)SubFlag.Retrieved => 4,
            (int)SubFlag.Retrieve => 3,
            _ => p.Length,
        };
        if (p.Length > arity)
        {
            p = p[..arity];
        }

        return true;
    }

    private static bool TryReadRequest(ImmutableArray<MsgValue> p, int trailingAt, out HashMethod method, out RingPosition position, out string? requestId, out int hops)
    {
        method = default;
        position = default;
        requestId = null;
        hops = 0;
        if (p[1].Kind != MsgKind.Bin || !KeyHashes.TryParse(p[1].AsBytes().Span, out method) || !TryReadPosition(p[2], out position))
        {
            return false;
        }

        if (p.Length > trailingAt + 1 && p[trailingAt].Kind == MsgKind.Str && p[trailingAt + 1].TryGetInt32(out hops))
        {
            requestId = p[trailingAt].AsString();
        }

        return true;
    }

    /// <summary>
    /// A position as it travels: base58 digits in a bin. 512 bits need 88 digits; a longer text is refused before any
    /// (quadratic) big-integer work.
    /// </summary>
    private static bool TryReadPosition(MsgValue packet, out RingPosition position)
    {
        position = default;
        if (packet.Kind != MsgKind.Bin || !WireCache.TryReadPosition(packet.AsBytes().Span, 90, out var value))
        {
            return false;
        }

        position = new RingPosition(value);
        return true;
    }

    /// <summary>Reads a version and a key from the trailing packets at <paramref name="at"/>, when present.</summary>
    private static (EntryVersion? Version, byte[]? Key) ReadVersionAndKey(ImmutableArray<MsgValue> p, int at)
    {
        EntryVersion? version = p.Length > at && EntryVersion.TryRead(p[at], out var v) ? v : null;
        var key = p.Length > at + 1 && p[at + 1].Kind == MsgKind.Bin ? p[at + 1].AsBytes().ToArray() : null;
        return (version, key);
    }

    private async ValueTask HandleWriteAsync(MeshPeer from, SubFlag kind, ImmutableArray<MsgValue> p)
    {
        if (!TryReadRequest(p, 4, out var method, out var position, out var requestId, out var hops))
        {
            RingLog.Malformed(Logger, kind.ToString(), from.Id ?? "?");
            return;
        }

        // Versions (and with them the register's ballots) come only from our own nodes: HandleAsync has already cut
        // the trailing packets from every peer that did not authenticate (a py2p node has no versions, so any it
        // carries are a forgery that could outrank every honest write).
        var (version, key) = requestId is null ? (null, null) : ReadVersionAndKey(p, 6);
        var replica = requestId is not null && p.Length > 8 && p[8].Kind == MsgKind.Str && p[8].AsString() == ReplicaMark;
        var handoff = requestId is not null && kind == SubFlag.Store && p.Length > 8 && p[8].Kind == MsgKind.Str && p[8].AsString() == HandoffMark;
        if (requestId is not null && p.Length > 6 && !p[6].IsNil && version is null)
        {
            // From one of our nodes a version that does not read is a fault or a forgery: the store is not applied,
            // never taken as py2p's unversioned form, and its sender is told so at once (not left to time out).
            LogRefusedOnce(from, $"a {kind} whose version is out of range (counters 0 to {EntryVersion.MaxWireCounterText}, writer ids up to {EntryVersion.MaxWriterLength} bytes); refused");
            if (!replica)
            {
                await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops, OutOfRange)));
            }

            return;
        }

        var request = new PositionRequest(kind, method, position, p[3], version, key, replica, Handoff: handoff) { Sender = from.Id };

        // A placement copy is kept where it is sent; anything else goes on toward its owner.
        MeshPeer? next;
        for (var decisions = 1; ; decisions++)
        {
            try
            {
                next = replica ? null : await NextHopOrNullAsync(position, from);
            }
            catch (MeshConnectException)
            {
                if (requestId is not null)
                {
                    await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops, OwnerUnreachable)));
                }

                return; // py2p's form: no answer, as from an owner that is gone
            }

            if (next is not null)
            {
                break;
            }

            if (IgnoreWritesForTest)
            {
                return; // a test's unreachable owner: no store, no ack
            }

            if (!WithinHeadroom(request))
            {
                LogRefusedOnce(from, HeadroomRefusal(kind.ToString()));
                if (requestId is not null && !replica)
                {
                    await from.WhisperOwningAsync(AckPayload(requestId, BeyondHeadroomAnswer(request, hops)));
                }

                return;
            }

            var answer = ApplyLocally(request, hops);
            if (answer.Error == MovedAway && decisions < 2)
            {
                continue; // a member took the position over since we decided: it goes on to that member
            }

            if (answer.Error == Py2pDeltaOverRegister)
            {
                LogRefusedOnce(from, Py2pDeltaOverRegister);
            }

            if (requestId is not null && !replica)
            {
                // A placement copy is not acknowledged: its sender waits for nothing (half of a copy's frames).
                await from.WhisperOwningAsync(AckPayload(requestId, answer));
            }

            return;
        }

        RingMetrics.Forwarded.Add(1);
        var forwardId = requestId ?? NewRequestId();
        if (requestId is not null)
        {
            _relays[forwardId] = new Relay(from, requestId, kind, method, position, RelayExpiry());
            if (!await SpeaksExtensionsAsync(next, CancellationToken.None))
            {
                await from.WhisperOwningAsync(AckPayload(requestId, Answer.Refused(hops + 1, PyOwnerCannotAcknowledge)));
                _relays.TryRemove(forwardId, out _);
            }
        }

        await next.WhisperOwningAsync(RequestPayload(request, forwardId, hops + 1));
    }

    private async ValueTask HandleRetrieveAsync(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        if (!TryReadRequest(p, 3, out var method, out var position, out var requestId, out var hops))
        {
            RingLog.Malformed(Logger, "retrieve", from.Id ?? "?");
            return;
        }

        var request = new PositionRequest(SubFlag.Retrieve, method, position);
        MeshPeer? next;
        try
        {
            next = await NextHopOrNullAsync(position, from);
        }
        catch (MeshConnectException)
        {
            return; // the owner is gone: no answer (a retrieve has no refusal; its sender asks again or does without)
        }

        if (next is null)
        {
            await from.WhisperOwningAsync(RetrievedPayload(method, p[2], ApplyLocally(request, hops), requestId));
            return;
        }

        RingMetrics.Forwarded.Add(1);
        var forwardId = requestId ?? NewRequestId();
        _relays[forwardId] = new Relay(from, requestId, SubFlag.Retrieve, method, position, RelayExpiry());
        if (!await SpeaksExtensionsAsync(next, CancellationToken.None))
        {
            AwaitPy2pAnswer(next, method, position, forwardId);
        }

        await next.WhisperOwningAsync(RequestPayload(request, forwardId, hops + 1));
    }

    /// <summary>
    /// <c>[retrieved, method, position, value]</c>, exactly what py2p expects; for our requests followed by the
    /// request id, hops, and the entry's version and key. A version of nil with a value means py2p wrote it.
    /// </summary>
    private static MsgValue[] RetrievedPayload(HashMethod method, MsgValue position, Answer answer, string? requestId) =>
        requestId is null
            ? [(long)SubFlag.Retrieved, WireCache.MethodName(method), position, answer.Value]
            : [(long)SubFlag.Retrieved, WireCache.MethodName(method), position, answer.Value, requestId, answer.Hops,
                answer.Version?.ToMsgValue() ?? MsgValue.Nil, answer.Key is null ? MsgValue.Nil : MsgValue.Bin(answer.Key),
                answer.Accepted?.ToMsgValue() ?? MsgValue.Nil, answer.IsCopy];

    private static MsgValue[] AckPayload(string requestId, Answer answer) =>
        answer.Accepted is null && answer.Promised is null
            ? [(long)RingSubFlag.Ack, requestId, answer.Hops, answer.Ok, answer.Ok ? answer.Result ?? MsgValue.Nil : answer.Error ?? "refused",
                answer.Version?.ToMsgValue() ?? MsgValue.Nil]
            : [(long)RingSubFlag.Ack, requestId, answer.Hops, answer.Ok, answer.Ok ? answer.Result ?? MsgValue.Nil : answer.Error ?? "refused",
                answer.Version?.ToMsgValue() ?? MsgValue.Nil, answer.Accepted?.ToMsgValue() ?? MsgValue.Nil, answer.Promised?.ToMsgValue() ?? MsgValue.Nil,
                answer.IsCopy];

    /// <summary>
    /// The answer an owner of ours gave to a retrieve, from its fields (a <c>retrieved</c>, or an entry of a
    /// <c>values</c> message): a nil version with a value means py2p wrote it.
    /// </summary>
    private static Answer RetrievedAnswer(MsgValue value, int hops, EntryVersion? version, byte[]? key, EntryVersion? accepted, bool isCopy) =>
        new(value, hops, true, null, null, version, key, Versioned: version is not null || value.IsNil) { Accepted = accepted ?? version, IsCopy = isCopy };

    private async ValueTask HandleRetrievedAsync(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        // Our own answers carry the request id, which is all that matches them: no need to decode the position.
        if (p.Length > 5 && p[4].Kind == MsgKind.Str && p[5].TryGetInt32(out var answerHops) && p[2].Kind == MsgKind.Bin)
        {
            var (version, key) = ReadVersionAndKey(p, 6);
            var answerValue = p[3];
            EntryVersion? accepted = p.Length > 8 && EntryVersion.TryRead(p[8], out var a) ? a : null;
            await CompleteAsync(p[4].AsString(), RetrievedAnswer(answerValue, answerHops, version, key, accepted, p.Length > 9 && p[9].Kind == MsgKind.Bool && p[9].AsBool()), p[2]);
            return;
        }

        // A py2p answer: no id (an answer with one went above). py2p answers one connection's retrieves in order, one
        // answer each, so it belongs to the oldest request for this (method, position) still waiting: a retrieve
        // sent after a store must get its own answer, not that of a retrieve sent before the store. (A waiter whose
        // request has ended takes its answer with it.)
        if (!TryReadRequest(p, 4, out var method, out var position, out _, out _))
        {
            return;
        }

        var slot = (from, method, position.Value);
        if (_legacyWaiters.TryGetValue(slot, out var waiters) && waiters.TryDequeue(out var waiting))
        {
            if (waiters.IsEmpty)
            {
                // A request enqueued in between lands in the removed queue and goes unanswered: it is asked again.
                _legacyWaiters.TryRemove(KeyValuePair.Create(slot, waiters));
            }

            await CompleteAsync(waiting, new Answer(p[3], 1, true, null, null, null, null, Versioned: false), p[2]);
        }
    }

    private async ValueTask HandleAckAsync(ImmutableArray<MsgValue> p)
    {
        if (p[1].Kind != MsgKind.Str || !p[2].TryGetInt32(out var hops) || p[3].Kind != MsgKind.Bool)
        {
            return;
        }

        await CompleteAsync(p[1].AsString(), AckAnswer(p.AsSpan()[3..], hops), null);
    }

    /// <summary>
    /// The answer an ack carries, from its packets after the hops: <c>ok</c> (a bool, checked by the caller), then
    /// <c>result|reason</c> and, when present, <c>version, accepted, promised, is_copy</c>. The same fields make an
    /// entry of an acks message (RingNode.Batches.cs).
    /// </summary>
    private static Answer AckAnswer(ReadOnlySpan<MsgValue> f, int hops)
    {
        EntryVersion? version = f.Length > 2 && EntryVersion.TryRead(f[2], out var v) ? v : null;
        EntryVersion? accepted = f.Length > 3 && EntryVersion.TryRead(f[3], out var a) ? a : null;
        EntryVersion? promised = f.Length > 4 && EntryVersion.TryRead(f[4], out var pr) ? pr : null;
        return AckAnswer(f[0].AsBool(), f[1], version, accepted, promised, f.Length > 5 && f[5].Kind == MsgKind.Bool && f[5].AsBool(), hops);
    }

    /// <summary>
    /// The answer an owner of ours gave to a write, from its fields (an <c>ack</c>, or an entry of an <c>acks</c> message,
    /// read as a value tree or in place): <paramref name="resultOrReason"/> is the result when it went through, the
    /// reason (a str; anything else reads as "refused") when not.
    /// </summary>
    private static Answer AckAnswer(bool ok, MsgValue resultOrReason, EntryVersion? version, EntryVersion? accepted, EntryVersion? promised, bool isCopy, int hops) =>
        new(MsgValue.Nil, hops, ok, ok ? null : resultOrReason.Kind == MsgKind.Str ? resultOrReason.AsString() : "refused",
            ok ? resultOrReason : null, version, null, Versioned: version is not null)
        {
            Accepted = accepted,
            Promised = promised,
            IsCopy = isCopy,
        };

    /// <summary>Completes our own request, or relays the answer one step back toward whoever asked us.</summary>
    private async ValueTask CompleteAsync(string requestId, Answer answer, MsgValue? positionPacket)
    {
        if (_pending.TryRemove(requestId, out var pending))
        {
            pending.TrySetResult(answer);
            return;
        }

        if (!_relays.TryRemove(requestId, out var relay) || relay.From.IsClosed)
        {
            return;
        }

        if (relay.Kind == SubFlag.Retrieve)
        {
            var position = positionPacket ?? WireCache.PositionBin(relay.Position.Value);
            await relay.From.WhisperOwningAsync(RetrievedPayload(relay.Method, position, answer, relay.OriginalRequestId));
        }
        else if (relay.OriginalRequestId is not null)
        {
            await relay.From.WhisperOwningAsync(AckPayload(relay.OriginalRequestId, answer));
        }
    }

    private long RelayExpiry() =>
        Options.Mesh.TimeProvider.GetTimestamp() + (long)(Options.RequestTimeout.TotalSeconds * 2 * Options.Mesh.TimeProvider.TimestampFrequency);

    /// <summary>
    /// The next hop for a request that arrived from <paramref name="from"/>, never back to it; null when we own the
    /// position (or cannot do better than ourselves).
    /// </summary>
    /// <exception cref="MeshConnectException">The owner the directory names cannot be reached: nobody answers for it here.</exception>
    private async ValueTask<MeshPeer?> NextHopOrNullAsync(RingPosition position, MeshPeer from)
    {
        try
        {
            // No timer per request: the timeout exists only when the owner must be dialled.
            return await NextHopAsync(position, null, from.Id, Options.RequestTimeout, CancellationToken.None);
        }
        catch (Exception e) when (e is ChordTimeoutException or OperationCanceledException)
        {
            return null; // a leeching node that knows no owner answers from its (empty) table: nil
        }
    }

    private void HandleNotify(ImmutableArray<MsgValue> p)
    {
        if (p[1].Kind != MsgKind.Bin)
        {
            return;
        }

        var key = p[1].AsBytes().ToArray();
        if (p.Length == 2)
        {
            AdoptKey(key);
            if (_keys.TryAdd(key, 0))
            {
                RaiseKeyEvent(KeyAdded, key);
            }
        }
        else if (p[2].Kind == MsgKind.Bin && p[2].AsAscii() == "del" && _keys.TryRemove(key, out _))
        {
            RaiseKeyEvent(KeyDeleted, key);
        }
    }

    private void HandleChordMeta(MeshPeer from, MsgValue flag)
    {
        if (from.Id is null || from.Address is null || flag.Kind != MsgKind.Str || flag.AsString() is not ("0" or "1"))
        {
            RingLog.Malformed(Logger, "chord meta", from.Id ?? "?");
            return;
        }

        var storing = flag.AsString() == "0";

        // Our nodes send hello before chord meta; meta first means a py2p node, which never acknowledges.
        _capabilities.GetOrAdd(from.Id, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(false);
        if (SpeaksExtensionsKnown(from.Id))
        {
            // One of ours: its state travels with its epoch, in its hello and its member broadcasts; the meta (py2p's,
            // no epoch) is for py2p peers. Taken here, a meta queued on a connection before the node joined and read
            // after its relayed "storing at epoch E" would set "leeching at E", and every later "storing at E" would be
            // refused as old news: a 256-node ring lacked one member at every node that way.
            return;
        }

        _members.TryGetValue(from.Id, out var known);
        if (known is null || known.IsStoring != storing)
        {
            // First-hand news from the node itself outranks any relayed news about it.
            MergeMember(new RingMember(from.Id, from.Address.Value, storing, known?.Epoch ?? -1), force: true);
        }
    }
}
