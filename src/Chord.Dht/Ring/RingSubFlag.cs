namespace Chord.Dht.Ring;

/// <summary>
/// Sub-flags this project adds to the protocol (PROTOCOL.md §6: flags py2p does not list, which it ignores and,
/// for broadcasts, still relays). Only our nodes send or read them.
/// </summary>
internal enum RingSubFlag : byte
{
    /// <summary><c>[ack, req_id, hops, ok, result]</c>: the owner's answer to a store or delta that carried a req_id.</summary>
    Ack = 0x30,

    /// <summary>broadcast <c>[member, [[host, port], id, storing, epoch]]</c>: a node joined, unjoined or appeared.</summary>
    Member = 0x31,

    /// <summary>broadcast <c>[gone, id, epoch]</c>: a node vanished (its connections closed and it cannot be dialled).</summary>
    Gone = 0x32,

    /// <summary>whisper <c>[hello, version, [members...]]</c>: sent on every new connection (says "I speak the extensions"), and in answer to a directory digest that differs.</summary>
    Hello = 0x33,

    /// <summary>
    /// whisper <c>[digest, bin 16, is_reply]</c>: a hash of the sender's directory, once per stabilize interval to one
    /// random peer of ours (membership anti-entropy). A receiver whose directory hashes differently answers with its
    /// hello and, unless this was itself a reply, its own digest, so the first sender sends its hello back if they
    /// still differ.
    /// </summary>
    Digest = 0x34,
}
