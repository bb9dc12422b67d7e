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

    /// <summary>
    /// Caps the bytes this connection takes from the network, counted from its start, at <paramref name="total"/>
    /// until <see cref="LiftReadLimit"/>; a read past the cap fails with an <see cref="IOException"/>. The node sets it
    /// to its pre-authentication budget, so a stranger can make it hold no more than that. A transport that cannot
    /// cap its reads ignores it (the default): the node then closes a connection over its budget after the read that
    /// took it there.
    /// </summary>
    public virtual void LimitReads(long total)
    {
    }

    /// <summary>Ends the cap of <see cref="LimitReads"/>.</summary>
    public virtual void LiftReadLimit()
    {
    }

    /// <summary>Closes the connection at once; pending reads and writes complete.</summary>
    public abstract void Abort();

    /// <inheritdoc />
    public abstract ValueTask DisposeAsync();
}
