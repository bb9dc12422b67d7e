namespace Chord.Dht.Ring;

/// <summary>
/// Sub-flags this project adds to the protocol (PROTOCOL.md §6: flags py2p does not list, which it ignores and,
/// for broadcasts, still relays). Only our nodes send or read them.
/// </summary>
internal enum RingSubFlag : byte
{
    /// <summary>
    /// <c>[ack, req_id, hops, ok, result, version, accepted, promised]</c>: the owner's answer to a store, delta,
    /// prepare or accept that carried a req_id. <c>result</c> is the merged map (delta), the held value (prepare) or,
    /// when <c>ok</c> is false, the reason; <c>version</c> the held value's version; <c>accepted</c> and
    /// <c>promised</c> the acceptor's ballots (register requests; nil otherwise).
    /// </summary>
    Ack = 0x30,

    /// <summary>broadcast <c>[member, [[host, port], id, storing, epoch]]</c>: a node joined, unjoined or appeared.</summary>
    Member = 0x31,

    /// <summary>broadcast <c>[gone, id, epoch]</c>: a node vanished (its connections closed and it cannot be dialled).</summary>
    Gone = 0x32,

    /// <summary>
    /// whisper <c>[hello, version, [members...], ask_back?]</c>: sent on every new connection (says "I speak the
    /// extensions"), in answer to a directory digest that differs, and in answer to a hello whose <c>ask_back</c> is
    /// true (sent by a node that lacks ours on a live connection).
    /// </summary>
    Hello = 0x33,

    /// <summary>
    /// whisper <c>[digest, bin 16, is_reply]</c>: a hash of the sender's directory, once per stabilize interval to one
    /// random peer of ours (membership anti-entropy). A receiver whose directory hashes differently answers with its
    /// hello and, unless this was itself a reply, its own digest, so the first sender sends its hello back if they
    /// still differ.
    /// </summary>
    Digest = 0x34,

    /// <summary>
    /// <c>[prepare, method, position, req_id, hops, ballot, key]</c>: phase 1 of the key's register at one position,
    /// routed to its owner like a store. Answered by an <see cref="Ack"/> carrying the held value, its version, the
    /// accepted ballot and the promise.
    /// </summary>
    Prepare = 0x35,

    /// <summary>
    /// <c>[accept, method, position, value, req_id, hops, ballot, version, key, next|nil]</c>: phase 2 of the key's
    /// register at one position; <c>next</c> asks the acceptor to promise the proposer's next ballot as well. Answered
    /// by an <see cref="Ack"/> carrying the accepted ballot and the promise.
    /// </summary>
    Accept = 0x36,

    /// <summary>
    /// whisper <c>[copies, key, value, version, method, position, ...]</c>: placement copies of a value the register
    /// committed, sent by its proposer to a node that keeps them (one frame per target, every position it keeps);
    /// not acknowledged. Each position must be one of the key's own.
    /// </summary>
    Copies = 0x37,

    /// <summary>
    /// whisper <c>[fence, [[host, port], id, storing, epoch]]</c>: a node that turned storing asks its predecessor to stop
    /// answering for the positions it now owns (the predecessor merges the entry and hands those positions over) and to say so with <see cref="Fenced"/>.
    /// </summary>
    Fence = 0x38,

    /// <summary>
    /// whisper <c>[fenced, epoch, serving]</c>: the answer to <see cref="Fence"/>, after the answering node's hello on the
    /// same connection: it knows the asking node storing at this epoch (or newer), routes its positions to it and has
    /// handed over the versioned entries it held there; <c>serving</c> says whether it serves itself (when not, the
    /// asking node asks the member before it too).
    /// </summary>
    Fenced = 0x39,

    /// <summary>
    /// whisper <c>[accepts, req_id, hops, key, value, ballot, version, next|nil, [method...]]</c>: the accepts of one
    /// register round for several positions of one key, sent to the node that owns them all (its hello named
    /// extension version 2 or later). Each method (0 to 4) is a position of the key, computed by the owner from the
    /// key. Answered by one <see cref="Acks"/>. Never forwarded: a position the receiver does not own is answered
    /// "not this node's", and the proposer sends that one alone.
    /// </summary>
    Accepts = 0x3A,

    /// <summary>
    /// whisper <c>[acks, req_id, hops, [answer|nil...]]</c>: the answer to <see cref="Accepts"/>, one entry per method
    /// in the request's order: <c>[ok, result|reason, version, accepted, promised, is_copy]</c> as in <see cref="Ack"/>,
    /// or nil where there is no answer.
    /// </summary>
    Acks = 0x3B,

    /// <summary>
    /// whisper <c>[retrieves, req_id, hops, key, [method...]]</c>: a read's requests for several positions of one key,
    /// sent to the node that owns them all (its hello named extension version 3 or later). Each method (0 to 4) is a
    /// position of the key, computed by the owner from the key. Answered by one <see cref="Values"/>. Never forwarded:
    /// a position the receiver does not own is answered nil, and the reader asks that one alone.
    /// </summary>
    Retrieves = 0x3C,

    /// <summary>
    /// whisper <c>[values, req_id, hops, [answer|nil...]]</c>: the answer to <see cref="Retrieves"/>, one entry per method
    /// in the request's order: <c>[value, version, accepted, is_copy]</c>, the value and the fields a <c>retrieved</c>
    /// of ours carries after it, without the key (a nil version with a value: py2p wrote it), or nil for a position that
    /// is not the receiver's.
    /// </summary>
    Values = 0x3D,
}
