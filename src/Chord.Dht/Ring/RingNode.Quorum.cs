using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// Quorum reads and writes of a key's five positions: the ABD register between our nodes, py2p's 3-of-5 value
/// majority when py2p owners take part.
/// </summary>
/// <remarks>
/// <para><b>Write.</b> Ask the positions for their versions until a read quorum answered; write the value with
/// version (highest + 1, our id) to all five; succeed once <see cref="RingOptions.WriteQuorum"/> owners acknowledged.
/// Owners keep a write only when it is newer than what they hold, so a late message never rolls a position back.</para>
/// <para><b>Read.</b> Wait for a read quorum of answers and take the newest version among them. Any read quorum
/// meets any write quorum (3 + 3 &gt; 5), so a read that starts after a write completed sees that write or a later
/// one. If fewer than a write quorum of positions hold the newest version, the read writes it back to them before
/// it returns (read repair), so a second read can never see an older value than the first: reads are
/// linearizable per key, with no clocks involved.</para>
/// <para><b>With py2p.</b> An answer without a version (a py2p owner, or an entry a py2p node wrote) makes the read
/// fall back to py2p's rule: the value at least <see cref="RingOptions.ReadQuorum"/> positions agree on.</para>
/// </remarks>
public sealed partial class RingNode
{
    /// <summary>
    /// Reads the key's newest value and its version, repairing positions that lag. The version is
    /// <see cref="EntryVersion.Zero"/> when the key was never written (Value is then nil); a deleted key has a nil
    /// value and the delete's version. Throws like <see cref="GetAsync(byte[], CancellationToken)"/> except that a
    /// missing value is not an error here.
    /// </summary>
    public async Task<VersionedValue> GetVersionedAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        using var deadline = Deadline(cancellationToken);
        var read = await ReadAsync(key, deadline.Token, cancellationToken);
        return new VersionedValue(read.Value, read.Version);
    }

    /// <inheritdoc cref="GetVersionedAsync(byte[], CancellationToken)"/>
    public Task<VersionedValue> GetVersionedAsync(string key, CancellationToken cancellationToken = default) =>
        GetVersionedAsync(KeyBytes(key), cancellationToken);

    /// <summary>
    /// Writes <paramref name="value"/> (nil deletes) only when the key's committed version is <paramref name="expected"/>
    /// (<see cref="EntryVersion.Zero"/>: never written): <see cref="CompareAndSetAsync(byte[], EntryVersion, MsgValue, CancellationToken)"/>,
    /// atomic against every writer of the key (for a key with a py2p owner: a read and a write, atomic only against
    /// writers ordered with this one).
    /// </summary>
    /// <returns>Whether it was written, and the key's value and version afterwards (or the ones that did not match).</returns>
    /// <exception cref="ChordWriteException">No quorum committed the write in time (it may or may not have been applied).</exception>
    public Task<CompareAndSetResult> SetIfVersionAsync(byte[] key, MsgValue value, EntryVersion expected, CancellationToken cancellationToken = default) =>
        CompareAndSetAsync(key, expected, value, cancellationToken);

    /// <inheritdoc cref="SetIfVersionAsync(byte[], MsgValue, EntryVersion, CancellationToken)"/>
    public Task<CompareAndSetResult> SetIfVersionAsync(string key, MsgValue value, EntryVersion expected, CancellationToken cancellationToken = default) =>
        SetIfVersionAsync(KeyBytes(key), value, expected, cancellationToken);

    /// <summary>
    /// The compare-and-set of a caller that wrote <paramref name="current"/> itself. With the register this is
    /// <see cref="CompareAndSetAsync(byte[], EntryVersion, MsgValue, CancellationToken)"/>: the node that committed the
    /// key's last write holds its acceptors' promise for the next ballot, so the write is one quorum round anyway.
    /// </summary>
    public Task<CompareAndSetResult> SetAfterOwnWriteAsync(byte[] key, MsgValue value, EntryVersion current, CancellationToken cancellationToken = default) =>
        CompareAndSetAsync(key, current, value, cancellationToken);

    /// <inheritdoc cref="SetAfterOwnWriteAsync(byte[], MsgValue, EntryVersion, CancellationToken)"/>
    public Task<CompareAndSetResult> SetAfterOwnWriteAsync(string key, MsgValue value, EntryVersion current, CancellationToken cancellationToken = default) =>
        SetAfterOwnWriteAsync(KeyBytes(key), value, current, cancellationToken);

    /// <summary>
    /// Asks all five positions of the key (waiting for every one until <see cref="RingOptions.RequestTimeout"/>) and
    /// reports each answer beside the decision a read would make. Nothing is repaired: this is for looking, not reading.
    /// </summary>
    public async Task<KeyInspection> InspectAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        using var deadline = Deadline(cancellationToken);
        var answers = await CollectAsync(key, _ => false, deadline.Token);
        cancellationToken.ThrowIfCancellationRequested();
        MsgValue decided = MsgValue.Nil;
        EntryVersion? version = null;
        var hasMajority = false;
        if (answers.Count > 0 && answers.All(a => a.Answer.Versioned))
        {
            var newest = answers.MaxBy(a => a.Answer.Version ?? EntryVersion.Zero)!.Answer;
            (decided, version, hasMajority) = (newest.Value, newest.Version ?? EntryVersion.Zero, answers.Count >= Options.ReadQuorum);
        }
        else if (answers.GroupBy(a => a.Answer.Value).FirstOrDefault(g => g.Count() >= Options.ReadQuorum) is { } agreed)
        {
            (decided, hasMajority) = (agreed.Key, true);
        }

        var positions = KeyHashes.All(key);
        var report = KeyHashes.Methods.Select(method =>
        {
            var position = positions[(int)method];
            var answer = answers.FirstOrDefault(a => a.Method == method)?.Answer;
            var agrees = answer is not null && hasMajority && answer.Value.Equals(decided)
                && (version is null || (answer.Version ?? EntryVersion.Zero) == version);
            return new PositionInspection(method, position, Find(position), answer is not null, answer?.Value ?? MsgValue.Nil, answer?.Version, agrees);
        }).ToList();
        return new KeyInspection(report, decided, version, hasMajority);
    }

    /// <inheritdoc cref="InspectAsync(byte[], CancellationToken)"/>
    public Task<KeyInspection> InspectAsync(string key, CancellationToken cancellationToken = default) => InspectAsync(KeyBytes(key), cancellationToken);

    private CancellationTokenSource Deadline(CancellationToken cancellationToken) =>
        ClockDeadline.Start(Options.Mesh.TimeProvider, Options.RequestTimeout, cancellationToken);

    /// <summary>The outcome of a quorum read.</summary>
    private readonly record struct QuorumRead(MsgValue Value, EntryVersion Version, bool Legacy);

    /// <summary>A read: through the register, or py2p's path for a key with a py2p owner.</summary>
    private Task<QuorumRead> ReadAsync(byte[] key, CancellationToken deadline, CancellationToken caller) =>
        RegisterServes(key) ? ReadRegisterAsync(key, deadline, caller) : ReadQuorumAsync(key, deadline, caller);

    /// <summary>Reads a quorum of positions and decides; repairs lagging positions when every answer is versioned.</summary>
    private async Task<QuorumRead> ReadQuorumAsync(byte[] key, CancellationToken deadline, CancellationToken caller)
    {
        var quorum = Options.ReadQuorum;
        var answers = await CollectAsync(key, a => HasReadQuorum(a, quorum), deadline);
        caller.ThrowIfCancellationRequested();
        if (answers.Any(a => !a.Answer.Versioned))
        {
            var value = DecideByMajority(key, answers);
            AdoptKey(key);
            return new QuorumRead(value, EntryVersion.Zero, Legacy: true);
        }

        if (answers.Count < quorum)
        {
            throw new ChordTimeoutException(
                $"Only {answers.Count} of 5 positions of {Describe(key)} answered within {Options.RequestTimeout.TotalSeconds:0.#} s; {quorum} are needed.", answers.Count);
        }

        var newest = answers.MaxBy(a => a.Answer.Version ?? EntryVersion.Zero)!.Answer;
        var version = newest.Version ?? EntryVersion.Zero;
        if (version > EntryVersion.Zero)
        {
            await RepairReadAsync(key, newest, answers, deadline);
        }

        return new QuorumRead(newest.Value, version, Legacy: false);
    }

    /// <summary>
    /// When the answers so far suffice. A quorum of versioned answers does, unless one of them is "nothing here":
    /// a position whose owner just changed (a crash, a join) answers that until repair reaches it, and three such
    /// answers would hide a value the other positions still hold. So an empty answer makes the read wait for all
    /// five (or the deadline). py2p answers: wait until a value has the quorum's agreement.
    /// </summary>
    private static bool HasReadQuorum(List<PositionAnswer> answers, int quorum) =>
        answers.Any(a => !a.Answer.Versioned)
            ? answers.GroupBy(a => a.Answer.Value).Any(g => g.Count() >= quorum)
            : answers.Count >= quorum && answers.All(a => a.Answer.Version is not null);

    /// <summary>
    /// Read repair: when fewer than a write quorum of the answers hold the newest version, store it at the positions
    /// that lag (or did not answer) until a write quorum holds it. This is what makes the read safe to repeat.
    /// </summary>
    private async Task RepairReadAsync(byte[] key, Answer newest, List<PositionAnswer> answers, CancellationToken deadline)
    {
        var holders = answers.Where(a => a.Answer.Version == newest.Version).Select(a => a.Method).ToHashSet();
        if (holders.Count >= Options.WriteQuorum)
        {
            return;
        }

        RingMetrics.ReadRepairs.Add(1);
        var acks = await SendToPositionsAsync(key, (method, position) => holders.Contains(method)
            ? null
            : new PositionRequest(SubFlag.Store, method, position, newest.Value, newest.Version, newest.Key ?? key), deadline);
        var held = holders.Count + acks.Count(a => a is { Versioned: true } && (a.Ok || (a.Version is { } v && v >= newest.Version!.Value)));
        if (held < Options.WriteQuorum)
        {
            // Returning the value unrepaired could let a later read see an older one: fail instead.
            throw new ChordTimeoutException(
                $"The read of {Describe(key)} found version {newest.Version} at {holders.Count} positions and could repair only {held - holders.Count} more in time; {Options.WriteQuorum} must hold it.", held);
        }
    }

    /// <summary>
    /// Writes (store or delta) to all five positions with the version after <paramref name="basedOn"/>; returns the
    /// acknowledging owners' answers (the result, and the version each holds), or throws
    /// <see cref="ChordWriteException"/> saying how many acknowledged.
    /// </summary>
    private async Task<List<Answer>> WriteQuorumAsync(byte[] key, SubFlag kind, MsgValue value, EntryVersion basedOn, CancellationToken deadline, CancellationToken caller)
    {
        for (var attempt = 0; ; attempt++)
        {
            var version = EntryVersion.After(basedOn, Id);
            var acks = await SendToPositionsAsync(key, (method, position) => new PositionRequest(kind, method, position, value, version, key), deadline);
            caller.ThrowIfCancellationRequested();

            // Our owners acknowledge what they applied; a py2p owner's store counts once a retrieve right after it
            // returned the written value.
            var acknowledged = acks.Where(a => a is { Ok: true } && (a.Versioned || a.ConfirmedByPy2p)).ToList();
            if (acknowledged.Count >= Options.WriteQuorum)
            {
                return [.. acknowledged.Select(a => a!)];
            }

            // An owner holding a newer version (one a py2p answer hid from the version query) refused: go above it.
            var newer = acks.Where(a => a is { Ok: false, Error: NewerHeld, Version: not null }).Select(a => a!.Version!.Value).DefaultIfEmpty(EntryVersion.Zero).Max();
            if (newer > version && attempt < 2)
            {
                basedOn = newer;
                continue;
            }

            var refusal = acks.FirstOrDefault(a => a is { Ok: false, Error: not null and not PyOwnerCannotAcknowledge })?.Error;
            var unacknowledged = acks.Count(a => a is { Error: PyOwnerCannotAcknowledge });
            throw new ChordWriteException(
                $"The write to {Describe(key)} was acknowledged by {acknowledged.Count} of 5 positions; {Options.WriteQuorum} are needed."
                + (unacknowledged > 0 ? $" {unacknowledged} positions are owned by py2p nodes that could not confirm it." : string.Empty)
                + (refusal is null ? string.Empty : $" An owner refused it: {refusal}"), acknowledged.Count);
        }
    }

    /// <summary>py2p's rule: the value at least the read quorum of positions agree on.</summary>
    private MsgValue DecideByMajority(byte[] key, IReadOnlyList<PositionAnswer> answers)
    {
        var quorum = Options.ReadQuorum;
        var best = answers.GroupBy(a => a.Answer.Value).Select(g => (Value: g.Key, Count: g.Count())).OrderByDescending(g => g.Count).FirstOrDefault();
        if (best.Count >= quorum)
        {
            return best.Value;
        }

        if (answers.Count < quorum)
        {
            throw new ChordTimeoutException(
                $"Only {answers.Count} of 5 positions of {Describe(key)} answered within {Options.RequestTimeout.TotalSeconds:0.#} s; {quorum} must agree.", answers.Count);
        }

        throw new ChordNoMajorityException(
            $"The key {Describe(key)} has no agreed value: {answers.Count} positions answered, but no value was given by {quorum} of them.", answers.Count);
    }

    /// <summary>The write's first phase: the highest version a read quorum of positions holds (py2p entries count as none).</summary>
    private async Task<EntryVersion> HighestVersionAsync(byte[] key, CancellationToken deadline, CancellationToken caller)
    {
        // A quorum of answers, waiting for all five when one is "nothing here" (a fresh owner may not have it yet).
        var answers = await CollectAsync(key, a => a.Count >= Options.ReadQuorum && a.All(x => !x.Answer.Versioned || x.Answer.Version is not null), deadline);
        caller.ThrowIfCancellationRequested();
        if (answers.Count < Options.ReadQuorum)
        {
            throw new ChordWriteException(
                $"Only {answers.Count} of 5 positions of {Describe(key)} answered the version query; {Options.ReadQuorum} are needed before a write.", 0);
        }

        return answers.Max(a => a.Answer.Version ?? EntryVersion.Zero);
    }

    private static ChordKeyNotFoundException NotFound(byte[] key) =>
        new($"The key {Describe(key)} has no value: a quorum of its positions hold nothing (or its delete).");
}
