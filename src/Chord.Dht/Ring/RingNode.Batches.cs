using System.Collections.Concurrent;
using System.Collections.Immutable;
using Chord.Dht.Mesh;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// The accepts of one register round in one frame per owner (<see cref="RingSubFlag.Accepts"/>): the key, the value
/// and the ballots once, then the methods of the positions the receiver owns; one <see cref="RingSubFlag.Acks"/> back.
/// A one-round write of a key whose five positions are on three nodes sends two or three frames and gets as many back,
/// instead of one per remote position each way, and the value travels once per node.
/// </summary>
/// <remarks>
/// <para>Only toward an unsuspected owner of ours on a connection whose hello named extension version 2 or later, and
/// only for two or more of the key's positions: everything else (our own positions, a lone position, a suspect, a node
/// to dial, a py2p owner, an older node of ours) takes the one-request path of <c>RouteAsync</c>, with its retries.</para>
/// <para>A batch is never forwarded, and its receiver never dials for it. A position the receiver does not own (the two
/// directories disagree for a moment) is answered "not this node's", and the proposer sends that position alone,
/// routed. Acks that do not come within an attempt's time (or before the connection closes) send every position again
/// alone, as a resend: a refusal then reads as unheard, since the batch may have landed.</para>
/// </remarks>
public sealed partial class RingNode
{
    // Batches of ours waiting for their answers (acks or values), by request id, with the connection they went on and
    // the sub-flag of the answer they take.
    private readonly ConcurrentDictionary<string, (MeshPeer Peer, RingSubFlag Answer, TaskCompletionSource<MsgValue> Entries)> _batches = new(StringComparer.Ordinal);

    // The extension version each connection's hello named, for those at 2 or later (forgotten when they close: a node
    // restarted as an older binary says so in the hello of its new connection, and gets no batch before it).
    private readonly ConcurrentDictionary<MeshPeer, int> _batchVersions = new();

    /// <summary>The extension version from which a node takes <see cref="RingSubFlag.Accepts"/>.</summary>
    private const int AcceptBatchVersion = 2;

    /// <summary>The extension version from which a node takes <see cref="RingSubFlag.Retrieves"/>.</summary>
    private const int RetrieveBatchVersion = 3;

    /// <summary>Accepts sent in batches (positions, not frames); for tests and statistics.</summary>
    internal long BatchedAccepts => Interlocked.Read(ref _batchedAccepts);

    /// <summary>Positions of batches answered (an entry in the acks, yes or no); for tests and statistics.</summary>
    internal long BatchAnswers => Interlocked.Read(ref _batchAnswers);

    private long _batchAnswers;

    private long _batchedAccepts;

    private const string NotThisNodes = "the position is not this node's";

    /// <summary>
    /// The peer that takes a batch for <paramref name="position"/>: its owner by our directory, connected, not suspect,
    /// and speaking extension version <paramref name="version"/> or later; null when the position must go alone (or is ours).
    /// </summary>
    private MeshPeer? BatchTarget(RingPosition position, int version)
    {
        var owner = OwnerOf(position.Reduced, null);
        if (owner is null || owner.Id == Id || IsSuspect(owner.Id))
        {
            return null;
        }

        return Mesh.GetPeer(owner.Id) is { IsClosed: false } peer && _batchVersions.TryGetValue(peer, out var spoken) && spoken >= version ? peer : null;
    }

    /// <summary>
    /// Sends the accepts of one round: one batch per owner that holds two or more of the key's positions, the rest one
    /// by one through <paramref name="single"/>. One task per position (method index), as the proposer collects them.
    /// </summary>
    private Task<AcceptorReply?>[] SendAccepts(byte[] key, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next,
        Func<int, Task<AcceptorReply?>> single, CancellationToken cancellationToken)
    {
        var results = new Task<AcceptorReply?>[KeyHashes.Methods.Count];
        try
        {
            SendAcceptsCore(key, ballot, value, version, next, single, results, cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever has not gone out yet goes alone; what has keeps its task (never sent twice from here).
            RingLog.BackgroundUnreachable(Logger, $"batching the accepts of {Describe(key)} failed ({e.GetType().Name}); the rest go alone");
            for (var i = 0; i < results.Length; i++)
            {
                results[i] ??= single(i);
            }
        }

        return results;
    }

    private void SendAcceptsCore(byte[] key, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next,
        Func<int, Task<AcceptorReply?>> single, Task<AcceptorReply?>[] results, CancellationToken cancellationToken)
    {
        var positions = KeyHashes.AllShared(key);
        var targets = new MeshPeer?[positions.Length];
        Span<int> first = stackalloc int[positions.Length]; // the first position with the same target
        Span<int> count = stackalloc int[positions.Length]; // by first position: how many share its target
        for (var i = 0; i < positions.Length; i++)
        {
            targets[i] = BatchTarget(positions[i], AcceptBatchVersion);
            first[i] = i;
            for (var j = 0; j < i && targets[i] is not null; j++)
            {
                if (ReferenceEquals(targets[j], targets[i]))
                {
                    first[i] = first[j];
                    break;
                }
            }

            if (targets[i] is not null)
            {
                count[first[i]]++;
            }
        }

        for (var i = 0; i < positions.Length; i++)
        {
            if (targets[i] is null || count[first[i]] < 2)
            {
                results[i] = single(i);
            }
        }

        for (var f = 0; f < positions.Length; f++)
        {
            if (targets[f] is null || first[f] != f || count[f] < 2)
            {
                continue; // not the first position of a batch
            }

            var methods = new List<int>(count[f]);
            for (var i = f; i < positions.Length; i++)
            {
                if (first[i] == f && targets[i] is not null)
                {
                    methods.Add(i);
                }
            }

            var answers = SendBatchAsync(targets[f]!, key, value, ballot, version, next, methods, cancellationToken);
            for (var n = 0; n < methods.Count; n++)
            {
                results[methods[n]] = ReplyOfAsync(answers, n, methods[n], single);
            }
        }
    }

    /// <summary>
    /// The reply of one position of a batch: its entry of the acks; or, for a position its receiver did not own, the
    /// position sent alone; or, when the acks did not come within an attempt's time (a lost frame, a closed or frozen
    /// connection), the position sent alone as a resend: it may have been applied, so a refusal is read as unheard.
    /// </summary>
    private static async Task<AcceptorReply?> ReplyOfAsync(Task<Answer?[]?> batch, int entry, int method, Func<int, Task<AcceptorReply?>> single)
    {
        var answers = await batch.ConfigureAwait(false);
        if (answers is null)
        {
            await Task.Yield(); // off the read loop or timer that ended the wait: a routed request is not bookkeeping
            var resent = await single(method).ConfigureAwait(false);
            return resent is { Ok: false } ? null : resent;
        }

        if (answers[entry] is not { } answer)
        {
            return null; // no answer for it (a test's hook): it may have been applied
        }

        if (answer.Error is NotThisNodes or MovedAway)
        {
            await Task.Yield(); // off the read loop that brought the acks
            return await single(method).ConfigureAwait(false); // certainly not applied there: routed to whoever owns it now
        }

        return RingRegisterTransport.ReplyOf(answer);
    }

    /// <summary>
    /// Sends one batch and waits for its acks. Null when none came within <see cref="RingOptions.AttemptTimeout"/>, before
    /// the connection closed or before the deadline: the caller sends each position again alone.
    /// </summary>
    private async Task<Answer?[]?> SendBatchAsync(MeshPeer peer, byte[] key, MsgValue value, EntryVersion ballot, EntryVersion version, EntryVersion? next,
        List<int> methods, CancellationToken cancellationToken)
    {
        RingMetrics.Requests.Add(methods.Count);
        Interlocked.Add(ref _batchedAccepts, methods.Count);
        var methodPackets = new MsgValue[methods.Count];
        for (var i = 0; i < methods.Count; i++)
        {
            methodPackets[i] = methods[i];
        }

        var entries = await SendBatchAndWaitAsync(peer, RingSubFlag.Acks, requestId =>
            [(long)RingSubFlag.Accepts, requestId, 1, MsgValue.Bin(key), value, ballot.ToMsgValue(), version.ToMsgValue(), next?.ToMsgValue() ?? MsgValue.Nil,
                MsgValue.Array(methodPackets)], cancellationToken);
        if (entries is null || ReadEntries(peer, entries, methods.Count, RingSubFlag.Acks) is not { } answers)
        {
            return null;
        }

        foreach (var answer in answers)
        {
            if (answer is not null)
            {
                Interlocked.Increment(ref _batchAnswers);
                RingMetrics.LookupHops.Record(answer.Hops);
            }
        }

        return answers;
    }

    /// <summary>
    /// Sends the batch <paramref name="payload"/> makes of a new request id and waits for its answer's entries (one per
    /// position, as <see cref="ReadEntries"/> reads them). Null when none came within <see cref="RingOptions.AttemptTimeout"/>,
    /// before the connection closed or before the deadline: the caller sends each position again alone (as it does when
    /// the entries are malformed).
    /// </summary>
    private async Task<MsgValue?> SendBatchAndWaitAsync(MeshPeer peer, RingSubFlag answer, Func<string, MsgValue[]> payload,
        CancellationToken cancellationToken)
    {
        var requestId = NewRequestId();
        // Completed inline on the read loop that brings the answer: what runs there is the caller's bookkeeping, which
        // ends in an asynchronous completion (as RouteAsync's inlineAnswer); a resend yields first.
        var pending = new TaskCompletionSource<MsgValue>();
        _batches[requestId] = (peer, answer, pending);
        try
        {
            await peer.WhisperOwningAsync(payload(requestId), cancellationToken);
            Awaiting(peer);
            using var onDeadline = cancellationToken.UnsafeRegister(CancelBatch, pending);
            using var onClose = peer.ClosedToken.UnsafeRegister(CancelBatch, pending);
            using var onAttemptTimeout = Options.Mesh.TimeProvider.CreateTimer(CancelBatchOnTimer, pending, Options.AttemptTimeout, Timeout.InfiniteTimeSpan);
            return await pending.Task; // read (and its count checked) by ReadEntries
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null; // cancelled (deadline, close, the attempt's time) or the send failed: each position goes again alone
        }
        finally
        {
            _batches.TryRemove(requestId, out _);
        }
    }

    private static readonly Action<object?> CancelBatch = static state =>
        ThreadPool.UnsafeQueueUserWorkItem(static s => ((TaskCompletionSource<MsgValue>)s!).TrySetCanceled(), state);

    private static readonly TimerCallback CancelBatchOnTimer = static state => CancelBatch(state);

    /// <summary>
    /// The entries of our batch answers (<see cref="RingSubFlag.Acks"/>, <see cref="RingSubFlag.Values"/>: p3) are read
    /// where they lie (<see cref="ReadEntries"/>) instead of as a value tree made for every frame.
    /// </summary>
    private static void ReadBatchAnswersInPlace()
    {
        Message.ReadInPlace((int)RingSubFlag.Acks, 3);
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
    }

    /// <summary>
    /// The answers in a batch answer's entries (<paramref name="count"/> of them; null where an entry is nil or
    /// malformed), or null when the entries are not <paramref name="count"/> (the caller sends each position alone).
    /// Entries kept in place by the read loop (<see cref="Message.ReadInPlace"/>: checked msgpack, still bytes) are
    /// read where they lie, by the same rules as a value tree's (<see cref="ReadAckEntry(MsgValue, int)"/>, <see cref="ReadValueEntry(MsgValue, int)"/>).
    /// </summary>
    private Answer?[]? ReadEntries(MeshPeer from, MsgValue entries, int count, RingSubFlag kind)
    {
        var answers = ReadEntriesCore(entries, count, kind);
        if (answers is null)
        {
            RingLog.Malformed(Logger, BatchAnswerName(kind), from.Id ?? "?");
        }

        return answers;
    }

    private static string BatchAnswerName(RingSubFlag kind) => kind == RingSubFlag.Acks ? "acks" : "values";

    /// <summary>What <see cref="ReadEntries"/> reads, each answer as text (the tests compare the two ways of reading).</summary>
    internal static string[]? DescribeEntriesForTest(MsgValue entries, int count, RingSubFlag kind) =>
        ReadEntriesCore(entries, count, kind)?.Select(a => a?.ToString() ?? "none").ToArray();

    private static Answer?[]? ReadEntriesCore(MsgValue entries, int count, RingSubFlag kind)
    {
        var answers = new Answer?[count];
        if (entries.PreEncoded is not { } encoded)
        {
            if (entries.Kind != MsgKind.Array || entries.Count != count)
            {
                return null;
            }

            var items = entries.AsArray();
            for (var i = 0; i < count; i++)
            {
                answers[i] = kind == RingSubFlag.Acks ? ReadAckEntry(items[i], hops: 1) : ReadValueEntry(items[i], hops: 1);
            }

            return answers;
        }

        try
        {
            var reader = new MessagePack.MessagePackReader(encoded);
            if (reader.ReadArrayHeader() != count)
            {
                return null;
            }

            for (var i = 0; i < count; i++)
            {
                answers[i] = kind == RingSubFlag.Acks ? ReadAckEntry(ref reader) : ReadValueEntry(ref reader);
            }

            return answers;
        }
        catch (Exception e) when (e is MsgFormatException or MessagePack.MessagePackSerializationException or EndOfStreamException)
        {
            return null; // checked when it arrived, so not expected; a malformed answer all the same
        }
    }

    /// <summary>The next entry of an acks message read in place, as <see cref="ReadAckEntry(MsgValue, int)"/> reads one of a value tree.</summary>
    private static Answer? ReadAckEntry(ref MessagePack.MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePack.MessagePackType.Array)
        {
            reader.Skip();
            return null;
        }

        var length = reader.ReadArrayHeader();
        if (length < 6 || reader.NextMessagePackType != MessagePack.MessagePackType.Boolean)
        {
            MsgPack.SkipItems(ref reader, length);
            return null;
        }

        var ok = reader.ReadBoolean();
        var resultOrReason = MsgPack.ReadShared(ref reader);
        var version = EntryVersion.ReadOrNull(ref reader);
        var accepted = EntryVersion.ReadOrNull(ref reader);
        var promised = EntryVersion.ReadOrNull(ref reader);
        var isCopy = ReadFlag(ref reader);
        MsgPack.SkipItems(ref reader, length - 6);
        return AckAnswer(ok, resultOrReason, version, accepted, promised, isCopy, hops: 1);
    }

    /// <summary>The next entry of a values message read in place, as <see cref="ReadValueEntry(MsgValue, int)"/> reads one of a value tree.</summary>
    private static Answer? ReadValueEntry(ref MessagePack.MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePack.MessagePackType.Array)
        {
            reader.Skip();
            return null;
        }

        var length = reader.ReadArrayHeader();
        if (length < 4)
        {
            MsgPack.SkipItems(ref reader, length);
            return null;
        }

        var value = MsgPack.ReadShared(ref reader);
        var version = EntryVersion.ReadOrNull(ref reader);
        var accepted = EntryVersion.ReadOrNull(ref reader);
        var isCopy = ReadFlag(ref reader);
        MsgPack.SkipItems(ref reader, length - 4);
        return RetrievedAnswer(value, 1, version, null, accepted, isCopy);
    }

    /// <summary>Reads a bool; anything else reads as false (and is skipped).</summary>
    private static bool ReadFlag(ref MessagePack.MessagePackReader reader)
    {
        if (reader.NextMessagePackType == MessagePack.MessagePackType.Boolean)
        {
            return reader.ReadBoolean();
        }

        reader.Skip();
        return false;
    }

    /// <summary>An entry of an acks message (<c>[ok, result|reason, version, accepted, promised, is_copy]</c>), or null for nil or a malformed one.</summary>
    private static Answer? ReadAckEntry(MsgValue entry, int hops) =>
        entry.Kind != MsgKind.Array || entry.Count < 6 || entry.AsArray()[0].Kind != MsgKind.Bool ? null : AckAnswer(entry.AsArray().AsSpan(), hops);

    /// <summary>One acks entry and one values entry as <see cref="EncodeEntries"/> encodes them, for the tests that pin their wire form.</summary>
    internal static (MsgValue Acks, MsgValue Values) EncodeEntriesForTest(
        bool ok, MsgValue value, MsgValue? result, string? error, EntryVersion? version, EntryVersion? accepted, EntryVersion? promised, bool isCopy)
    {
        var answer = new Answer(value, 1, ok, error, result, version, null, Versioned: true) { Accepted = accepted, Promised = promised, IsCopy = isCopy };
        return (EncodeEntries([answer, null], RingSubFlag.Acks), EncodeEntries([answer, null], RingSubFlag.Values));
    }

    /// <summary>
    /// The entries of a batch's answer, one per position (nil where <paramref name="answers"/> has none), encoded
    /// straight into msgpack (<see cref="MsgValue.PreEncodedArray(byte[])"/>: a value tree would take eight objects an entry, the
    /// largest share of what answering a batch allocated). An acks entry is <c>[ok, result|reason, version, accepted,
    /// promised, is_copy]</c>, a values entry <c>[value, version, accepted, is_copy]</c>.
    /// </summary>
    private static MsgValue EncodeEntries(ReadOnlySpan<Answer?> answers, RingSubFlag kind)
    {
        var scratch = ScratchBuffer.Rent();
        try
        {
            var writer = new MessagePack.MessagePackWriter(scratch);
            writer.WriteArrayHeader(answers.Length);
            foreach (var answer in answers)
            {
                if (answer is null)
                {
                    writer.WriteNil();
                    continue;
                }

                if (kind == RingSubFlag.Acks)
                {
                    writer.WriteArrayHeader(6);
                    writer.Write(answer.Ok);
                    if (answer.Ok)
                    {
                        MsgPack.Write(ref writer, answer.Result ?? MsgValue.Nil);
                    }
                    else
                    {
                        writer.Write(answer.Error ?? "refused");
                    }

                    EntryVersion.Write(ref writer, answer.Version);
                    EntryVersion.Write(ref writer, answer.Accepted);
                    EntryVersion.Write(ref writer, answer.Promised);
                }
                else
                {
                    writer.WriteArrayHeader(4);
                    MsgPack.Write(ref writer, answer.Value);
                    EntryVersion.Write(ref writer, answer.Version);
                    EntryVersion.Write(ref writer, answer.Accepted);
                }

                writer.Write(answer.IsCopy);
            }

            writer.Flush();
            return MsgValue.PreEncodedArray(scratch.WrittenSpan.ToArray());
        }
        finally
        {
            ScratchBuffer.Return(scratch);
        }
    }

    /// <summary>The answer to a batch of ours (<see cref="RingSubFlag.Acks"/> or <see cref="RingSubFlag.Values"/>): its entries complete the wait.</summary>
    private void HandleBatchAnswer(MeshPeer from, ImmutableArray<MsgValue> p, RingSubFlag answer)
    {
        if (p.Length < 4 || p[1].Kind != MsgKind.Str)
        {
            RingLog.Malformed(Logger, BatchAnswerName(answer), from.Id ?? "?");
            return;
        }

        // Only from the connection the batch went on, and only the answer its kind takes (values never complete a batch
        // of accepts): another peer cannot complete it with answers of its own.
        if (_batches.TryGetValue(p[1].AsString(), out var pending) && ReferenceEquals(pending.Peer, from) && pending.Answer == answer
            && _batches.TryRemove(p[1].AsString(), out _))
        {
            pending.Entries.TrySetResult(p[3]);
        }
    }

    /// <summary>
    /// A batch of accepts at this node: each position it owns is applied as a lone accept would be (the headroom, the
    /// ownership check under the slot's lock, the tests' hooks), and one acks message answers them all.
    /// </summary>
    private async ValueTask HandleAcceptsAsync(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        if (p.Length < 9 || p[1].Kind != MsgKind.Str || !p[2].TryGetInt32(out var hops) || p[3].Kind != MsgKind.Bin || p[3].AsBytes().Length == 0 || p[8].Kind != MsgKind.Array)
        {
            RingLog.Malformed(Logger, "accepts", from.Id ?? "?");
            return;
        }

        var requestId = p[1].AsString();
        var methods = p[8].AsArray();
        if (!AreBatchMethods(methods))
        {
            RingLog.Malformed(Logger, "accepts", from.Id ?? "?");
            return;
        }

        var entries = new Answer?[methods.Length];
        if (!EntryVersion.TryRead(p[5], out var ballot) || ballot == EntryVersion.Zero || !EntryVersion.TryRead(p[6], out var version)
            || (!p[7].IsNil && !EntryVersion.TryRead(p[7], out _)))
        {
            LogRefusedOnce(from, $"accepts whose ballot or version is out of range (counters 0 to {EntryVersion.MaxWireCounterText}, writer ids up to {EntryVersion.MaxWriterLength} bytes, a ballot above zero); refused");
            Array.Fill(entries, Answer.Refused(hops, OutOfRange));
            await from.WhisperOwningAsync([(long)RingSubFlag.Acks, requestId, hops, EncodeEntries(entries, RingSubFlag.Acks)]);
            return;
        }

        EntryVersion? next = p[7].IsNil ? null : EntryVersion.TryRead(p[7], out var n) ? n : null;
        var key = p[3].AsBytes().ToArray();
        var value = p[4].Detached(); // once for every position, before any slot's lock
        var positions = KeyHashes.AllShared(key);
        var answered = false;
        for (var i = 0; i < methods.Length; i++)
        {
            var method = (HashMethod)methods[i].AsInt64();
            var request = new PositionRequest(AcceptKind, method, positions[(int)method], value, version, key, Ballot: ballot, Next: next);
            entries[i] = AcceptOneOfBatch(from, request, hops);
            answered |= entries[i] is not null;
        }

        if (answered)
        {
            // Nothing at all when no position answers (the tests' cut-off owner and lost answers), as for lone accepts.
            await from.WhisperOwningAsync([(long)RingSubFlag.Acks, requestId, hops, EncodeEntries(entries, RingSubFlag.Acks)]);
        }
    }

    /// <summary>True when <paramref name="methods"/> names one to five distinct methods (0 to 4): a batch's positions.</summary>
    private static bool AreBatchMethods(ImmutableArray<MsgValue> methods)
    {
        if (methods.IsEmpty)
        {
            return false;
        }

        var seen = 0;
        foreach (var m in methods)
        {
            if (!m.TryGetInt32(out var method) || method is < 0 or > 4 || (seen & (1 << method)) != 0)
            {
                return false;
            }

            seen |= 1 << method;
        }

        return true;
    }

    /// <summary>
    /// One position of a batch, applied as a lone accept this node owns (<see cref="ApplyAsOwner"/>); nil for no answer
    /// (a test's hook). Ownership is decided from the directory alone: a batch names positions its sender believes are
    /// ours, and one that is not is answered at once (never dialled for, never forwarded).
    /// </summary>
    private Answer? AcceptOneOfBatch(MeshPeer from, PositionRequest request, int hops)
    {
        for (var decisions = 1; ; decisions++)
        {
            if (!_storing || OwnerOf(request.Position.Reduced, null) is not { } owner || owner.Id != Id)
            {
                return Answer.Refused(hops, NotThisNodes); // the proposer sends it alone, routed
            }

            var answer = ApplyAsOwner(from, request, hops, lastDecision: decisions >= 2);
            if (answer is null)
            {
                return null; // a test's cut-off owner or lost answer: no answer
            }

            if (answer.Error == MovedAway && decisions < 2)
            {
                continue; // a member took the position over since we decided: asked again, then answered as not ours
            }

            return answer.Error == MovedAway ? Answer.Refused(hops, NotThisNodes) : answer;
        }
    }

    /// <summary>Positions a read asked in batches (positions, not frames); for tests and statistics.</summary>
    internal long BatchedRetrieves => Interlocked.Read(ref _batchedRetrieves);

    private long _batchedRetrieves;

    /// <summary>
    /// Asks <paramref name="peer"/> for several positions of <paramref name="key"/> in one <see cref="RingSubFlag.Retrieves"/>
    /// frame. Each entry is the position's answer, or null where the peer does not own it; the whole is null when no
    /// answer came within <see cref="RingOptions.AttemptTimeout"/>, before the connection closed or before the deadline.
    /// Either way the caller asks those positions alone, routed.
    /// </summary>
    private async Task<Answer?[]?> RetrieveBatchAsync(MeshPeer peer, byte[] key, HashMethod[] methods, CancellationToken cancellationToken)
    {
        RingMetrics.Requests.Add(methods.Length);
        Interlocked.Add(ref _batchedRetrieves, methods.Length);
        var methodPackets = new MsgValue[methods.Length];
        for (var i = 0; i < methods.Length; i++)
        {
            methodPackets[i] = (long)methods[i];
        }

        var entries = await SendBatchAndWaitAsync(peer, RingSubFlag.Values, requestId =>
            [(long)RingSubFlag.Retrieves, requestId, 1, MsgValue.Bin(key), MsgValue.Array(methodPackets)], cancellationToken);
        if (entries is null || ReadEntries(peer, entries, methods.Length, RingSubFlag.Values) is not { } answers)
        {
            return null;
        }

        foreach (var answer in answers)
        {
            if (answer is not null)
            {
                RingMetrics.LookupHops.Record(1);
            }
        }

        return answers;
    }

    /// <summary>An entry of a values message (<c>[value, version, accepted, is_copy]</c>) as a retrieve's answer; null for nil or a malformed one.</summary>
    private static Answer? ReadValueEntry(MsgValue entry, int hops)
    {
        if (entry.Kind != MsgKind.Array || entry.Count < 4)
        {
            return null;
        }

        var f = entry.AsArray();
        EntryVersion? version = EntryVersion.TryRead(f[1], out var v) ? v : null;
        EntryVersion? accepted = EntryVersion.TryRead(f[2], out var a) ? a : null;
        return RetrievedAnswer(f[0], hops, version, null, accepted, f[3].Kind == MsgKind.Bool && f[3].AsBool());
    }

    /// <summary>
    /// A read's batch at this node: each position it owns (by its directory) is answered as a lone retrieve would be;
    /// one it does not own gets nil, and the reader asks that one alone. One values message answers them all.
    /// </summary>
    private async ValueTask HandleRetrievesAsync(MeshPeer from, ImmutableArray<MsgValue> p)
    {
        if (p.Length < 5 || p[1].Kind != MsgKind.Str || !p[2].TryGetInt32(out var hops) || p[3].Kind != MsgKind.Bin || p[3].AsBytes().Length == 0
            || p[4].Kind != MsgKind.Array || !AreBatchMethods(p[4].AsArray()))
        {
            RingLog.Malformed(Logger, "retrieves", from.Id ?? "?");
            return;
        }

        var methods = p[4].AsArray();
        var positions = KeyHashes.AllShared(p[3].AsBytes().Span);
        var entries = new Answer?[methods.Length];
        for (var i = 0; i < methods.Length; i++)
        {
            var method = (HashMethod)methods[i].AsInt64();
            var position = positions[(int)method];
            if (_storing && OwnerOf(position.Reduced, null) is { } owner && owner.Id == Id)
            {
                entries[i] = ApplyLocally(new PositionRequest(SubFlag.Retrieve, method, position), hops);
            }

            // Otherwise nil: not this node's, the reader asks it alone, routed.
        }

        await from.WhisperOwningAsync([(long)RingSubFlag.Values, p[1], hops, EncodeEntries(entries, RingSubFlag.Values)]);
    }
}
