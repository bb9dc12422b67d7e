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

    /// <summary>whisper <c>[hello, version, [members...]]</c>: sent on every new connection (says "I speak the extensions"), and once per stabilize interval to one random peer of ours (membership anti-entropy).</summary>
    Hello = 0x33,
}
