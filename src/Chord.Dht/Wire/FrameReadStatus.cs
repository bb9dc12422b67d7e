namespace Chord.Dht.Wire;

/// <summary>What <see cref="FrameCodec.TryReadFrame"/> found at the start of a buffer.</summary>
public enum FrameReadStatus
{
    /// <summary>The buffer does not yet hold a whole frame; read more.</summary>
    NeedMore,
    /// <summary>A whole frame was taken off the buffer.</summary>
    Frame,
    /// <summary>The length header exceeds the maximum: close the connection without buffering the body.</summary>
    TooLong,
}
