namespace Chord.Dht.Wire;

/// <summary>The first payload packet (<c>p0</c>) of a message: what it means (PROTOCOL.md §3).</summary>
public enum SubFlag : byte
{
    /// <summary>Application broadcast.</summary>
    Broadcast = 0x00,
    /// <summary>Compression negotiation.</summary>
    Compression = 0x01,
    /// <summary>Application whisper.</summary>
    Whisper = 0x02,
    /// <summary>Ping.</summary>
    Ping = 0x03,
    /// <summary>Pong.</summary>
    Pong = 0x04,
    /// <summary>Mesh handshake (5 packets) or chord meta (2 packets).</summary>
    Handshake = 0x05,
    /// <summary>Key added/deleted announcement.</summary>
    Notify = 0x06,
    /// <summary>A routing table.</summary>
    Peers = 0x07,
    /// <summary>Ask for peers, or for the address of a node id.</summary>
    Request = 0x08,
    /// <summary>Ask for the last message again.</summary>
    Resend = 0x09,
    /// <summary>Answer to an address request.</summary>
    Response = 0x0A,
    /// <summary>Store a value at a position.</summary>
    Store = 0x0B,
    /// <summary>Ask for the value at a position.</summary>
    Retrieve = 0x0C,
    /// <summary>Answer to retrieve.</summary>
    Retrieved = 0x0D,
    /// <summary>Forwarding (named by the reference, unused by it).</summary>
    Forward = 0x0E,
    /// <summary>Merge a map into the stored map.</summary>
    Delta = 0x11,
}
