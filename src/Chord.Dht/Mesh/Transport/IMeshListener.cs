namespace Chord.Dht.Mesh.Transport;

/// <summary>A listening endpoint of an <see cref="IMeshTransport"/>.</summary>
public interface IMeshListener : IAsyncDisposable
{
    /// <summary>The bound address (the actual port when 0 was asked for).</summary>
    PeerAddress BoundAddress { get; }

    /// <summary>The next incoming connection, or null once the listener is closed.</summary>
    ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A listener that closes some connections itself before it hands any over (the TLS transport, whose handshake runs
/// in the listener): it reports each one, so that the node can log and count it like its own refusals.
/// </summary>
public interface IMeshRefusingListener : IMeshListener
{
    /// <summary>
    /// Called once per connection the listener closed: the remote end point, the remote host (IP) alone, and why.
    /// The node sets it right after listening; connections refused before that are not reported.
    /// </summary>
    Action<string, string, string>? Refused { get; set; }
}
