using Microsoft.Extensions.Logging;

namespace Chord.Dht.Mesh;

/// <summary>Source-generated log messages of the mesh layer.</summary>
internal static partial class MeshLog
{
    [LoggerMessage(1, LogLevel.Information, "Node {NodeId} listening on {Address}")]
    public static partial void Listening(ILogger logger, string nodeId, PeerAddress address);

    [LoggerMessage(2, LogLevel.Warning, "Closing connection to {PeerId} at {Remote}: {Reason}")]
    public static partial void ClosingPeer(ILogger logger, string peerId, string remote, string reason);

    [LoggerMessage(3, LogLevel.Error, "Connection loop of {PeerId} at {Remote} failed")]
    public static partial void PeerLoopFailed(ILogger logger, string peerId, string remote, Exception exception);

    [LoggerMessage(4, LogLevel.Debug, "Peer {PeerId} at {Address} joined the routing table")]
    public static partial void PeerAdded(ILogger logger, string peerId, PeerAddress address);

    [LoggerMessage(5, LogLevel.Debug, "Peer {PeerId} left the routing table")]
    public static partial void PeerRemoved(ILogger logger, string peerId);

    [LoggerMessage(6, LogLevel.Debug, "Could not dial {Address}: {Reason}")]
    public static partial void DialFailed(ILogger logger, PeerAddress address, string reason);

    [LoggerMessage(7, LogLevel.Debug, "Ignoring {Message} from {PeerId}: {Reason}")]
    public static partial void Ignored(ILogger logger, string message, string peerId, string reason);

    [LoggerMessage(8, LogLevel.Error, "A message handler failed on {Message}")]
    public static partial void HandlerFailed(ILogger logger, string message, Exception exception);

    [LoggerMessage(10, LogLevel.Debug, "Dialling {Address}, expecting node {ExpectedId}")]
    public static partial void Dialling(ILogger logger, PeerAddress address, string expectedId);

    [LoggerMessage(9, LogLevel.Debug, "Two connections to {PeerId}: keeping the one {Dialler} dialled")]
    public static partial void ConflictResolved(ILogger logger, string peerId, string dialler);

    [LoggerMessage(11, LogLevel.Warning, "Refused peer {PeerId} at {Remote} (advertised {Advertised}): {Reason}; further refusals from this address for this reason are logged at Debug for a minute")]
    public static partial void PeerRefused(ILogger logger, string peerId, string remote, string advertised, string reason);

    [LoggerMessage(23, LogLevel.Debug, "Refused peer {PeerId} at {Remote} (advertised {Advertised}): {Reason} (a refusal from this address for this reason was logged as a warning within the last minute)")]
    public static partial void PeerRefusedAgain(ILogger logger, string peerId, string remote, string advertised, string reason);

    [LoggerMessage(12, LogLevel.Warning, "Refused connections from {Remote}: {Reason}; further refusals from this address are not logged for a minute")]
    public static partial void ConnectionRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(20, LogLevel.Warning, "Refused TLS connection from {Remote}: {Reason}; further TLS refusals from this address are not logged for a minute")]
    public static partial void TlsRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Node {NodeId} authenticates peers with the built-in development cluster secret, which anyone with this code knows: set ClusterSecret (Chord:ClusterSecret) to the same secret on every node of a real cluster")]
    public static partial void DevelopmentSecret(ILogger logger, string nodeId);

    [LoggerMessage(14, LogLevel.Warning, "Node {NodeId} runs in security mode {Mode}: peers that do not authenticate (py2p nodes) are served, and can read and write through py2p's own messages")]
    public static partial void Unauthenticated(ILogger logger, string nodeId, MeshSecurity mode);

    [LoggerMessage(15, LogLevel.Warning, "Could not reach {Address} (node {ExpectedId}): {Reason}; it is dialled again with backoff, and further failures are logged at Debug until it answers")]
    public static partial void DialFailedOnce(ILogger logger, PeerAddress address, string expectedId, string reason);

    [LoggerMessage(21, LogLevel.Debug, "Could not reach {Address} (node {ExpectedId}) again: {Reason} ({Failures} failed attempts; not dialled again for {BackoffSeconds} s)")]
    public static partial void DialFailedAgain(ILogger logger, PeerAddress address, string expectedId, string reason, int failures, double backoffSeconds);

    [LoggerMessage(22, LogLevel.Information, "Node {PeerId} at {Address} is reachable again, after {Failures} failed dials")]
    public static partial void ReachableAgain(ILogger logger, string peerId, PeerAddress address, int failures);

    [LoggerMessage(16, LogLevel.Debug, "Dial of {Address} failed")]
    public static partial void DialFailedDetail(ILogger logger, PeerAddress address, Exception exception);

    [LoggerMessage(17, LogLevel.Debug, "Peer {PeerId} at {Remote} authenticated")]
    public static partial void PeerAuthenticated(ILogger logger, string peerId, string remote);

    [LoggerMessage(18, LogLevel.Warning, "Could not reach {Address} (node {ExpectedId}): {Reason}")]
    public static partial void AddressUnreachable(ILogger logger, PeerAddress address, string expectedId, string reason);

    [LoggerMessage(24, LogLevel.Debug, "Could not reach {Address} (node {ExpectedId}) again: {Reason} (the connection opened but the handshake did not complete; warned of once a minute until it answers)")]
    public static partial void HandshakeFailedAgain(ILogger logger, PeerAddress address, string expectedId, string reason);

    [LoggerMessage(19, LogLevel.Debug, "Could not reach {Address} (node {ExpectedId}), named in a peer's peers list: {Reason}")]
    public static partial void GossipedPeerUnreachable(ILogger logger, PeerAddress address, string expectedId, string reason);
}
