namespace Chord.Dht.Mesh;

/// <summary>An application message that arrived.</summary>
public sealed class MeshMessageEventArgs(MeshMessage message) : EventArgs
{
    /// <summary>The message.</summary>
    public MeshMessage Message { get; } = message;
}
