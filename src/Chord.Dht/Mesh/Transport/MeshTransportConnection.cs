using System.IO.Pipelines;

namespace Chord.Dht.Mesh.Transport;

/// <summary>One byte-stream connection: a pipe to read from and a pipe to write to.</summary>
public abstract class MeshTransportConnection : IAsyncDisposable
{
    /// <summary>Bytes arriving from the remote side.</summary>
    public abstract PipeReader Input { get; }

    /// <summary>Bytes to send to the remote side.</summary>
    public abstract PipeWriter Output { get; }

    /// <summary>The remote endpoint as text, for logs.</summary>
    public abstract string RemoteEndPoint { get; }

    /// <summary>The remote host alone (an IP address for TCP), for per-address limits; the end point by default.</summary>
    public virtual string RemoteHost => RemoteEndPoint;

    /// <summary>Closes the connection at once; pending reads and writes complete.</summary>
    public abstract void Abort();

    /// <inheritdoc />
    public abstract ValueTask DisposeAsync();
}
