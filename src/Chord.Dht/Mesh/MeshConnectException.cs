namespace Chord.Dht.Mesh;

/// <summary>Thrown when a connection to a node cannot be made or its handshake fails.</summary>
public sealed class MeshConnectException : IOException
{
    /// <summary>Creates the exception.</summary>
    public MeshConnectException(string message) : base(message) { }

    /// <summary>Creates the exception with the error underneath.</summary>
    public MeshConnectException(string message, Exception inner) : base(message, inner) { }

    /// <summary>True when no dial was made: the address failed recently and is in its backoff.</summary>
    public bool IsBackoff { get; init; }
}
