namespace Chord.Dht.Wire;

/// <summary>The first packet of every message (PROTOCOL.md §3): how the message travels.</summary>
public enum MainFlag : byte
{
    /// <summary>Flooded to every node.</summary>
    Broadcast = 0x00,
    /// <summary>Connection-level negotiation (compression, resend).</summary>
    Renegotiate = 0x01,
    /// <summary>To one connection only; never relayed.</summary>
    Whisper = 0x02,
    /// <summary>Liveness probe.</summary>
    Ping = 0x03,
    /// <summary>Answer to a ping.</summary>
    Pong = 0x04,
}
