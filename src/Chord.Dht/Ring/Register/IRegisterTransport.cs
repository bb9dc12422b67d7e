using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Register;

/// <summary>
/// How a <see cref="RegisterProposer"/> reaches the five acceptors of a key (one per hash method, by index): the ring
/// routes to the positions' owners; the deterministic simulation delivers through its seeded scheduler.
/// </summary>
internal interface IRegisterTransport
{
    /// <summary>The proposer's id: the writer part of its ballots (a node id).</summary>
    string ProposerId { get; }

    /// <summary>The clock for the proposer's waits (position deadline, back-off).</summary>
    TimeProvider Time { get; }

    /// <summary>Sends a prepare; the answer, or null when none came (no route, a closed connection, the token).</summary>
    Task<AcceptorReply?> PrepareAsync(byte[] key, int position, EntryVersion ballot, CancellationToken cancellationToken);

    /// <summary>
    /// The node that holds the acceptor at a position, when the transport knows it (null: every position its own
    /// node). An accept is complete only when its yes answers come from as many distinct nodes as a quorum has
    /// positions (or all there are), so that no two crashes can take every copy of an acknowledged write.
    /// </summary>
    string? AcceptorNode(byte[] key, int position) => null;

    /// <summary>
    /// True while the node named by <see cref="AcceptorNode"/> still holds what it accepted: a member of the ring, or
    /// this proposer's own node while it is not stopping. A yes answer from a node that has crashed since (or from
    /// our own node as it goes down) counts toward no quorum: the write would be acknowledged while its only holder
    /// is gone, and the positions' new owners would answer with the older value.
    /// </summary>
    bool AcceptorAlive(string node) => true;

    /// <summary>
    /// A quorum accepted <paramref name="value"/> at <paramref name="version"/> under this proposer's ballot (every
    /// accept round that reached its quorum: a write, a read's commit, a kept value): the ring keeps its placement
    /// copies from here. Not called for a round whose answers did not all come back in time, even if it landed.
    /// </summary>
    void Committed(byte[] key, MsgValue value, EntryVersion version)
    {
    }

    /// <summary>Sends an accept; the answer, or null when none came.</summary>
    Task<AcceptorReply?> AcceptAsync(byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken);

    /// <summary>
    /// Sends the accept to every position at once; one task per position (by index). A transport may carry several
    /// positions in one message (the ring batches those one node owns); by default each goes alone. Never throws: a
    /// position whose send fails has a task whose answer is null.
    /// </summary>
    Task<AcceptorReply?>[] AcceptAll(byte[] key, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next, CancellationToken cancellationToken)
    {
        var answers = new Task<AcceptorReply?>[RegisterSettings.Positions];
        for (var i = 0; i < answers.Length; i++)
        {
            answers[i] = SafeAcceptAsync(this, key, i, ballot, value, version, next, cancellationToken);
        }

        return answers;
    }

    /// <summary><see cref="AcceptAsync"/>, with a synchronous failure turned into no answer.</summary>
    protected static Task<AcceptorReply?> SafeAcceptAsync(IRegisterTransport transport, byte[] key, int position, EntryVersion ballot, MsgValue value, EntryVersion version, EntryVersion? next,
        CancellationToken cancellationToken)
    {
        try
        {
            return transport.AcceptAsync(key, position, ballot, value, version, next, cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Task.FromResult<AcceptorReply?>(null);
        }
    }
}
