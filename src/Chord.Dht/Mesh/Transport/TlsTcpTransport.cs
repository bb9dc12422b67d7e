using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;

namespace Chord.Dht.Mesh.Transport;

/// <summary>
/// TCP with TLS (<see cref="SslStream"/>) on every connection, both ways, with one cluster certificate: each node
/// presents it, and accepts a peer only if the peer presents the same one (same SHA-256 thumbprint). Ring traffic is
/// then encrypted and integrity-protected; the mesh's HMAC authentication still runs inside. py2p nodes, which speak
/// plaintext, cannot connect. See docs/SECURITY.md.
/// </summary>
public sealed class TlsTcpTransport : IMeshTransport
{
    private const string TargetHost = "chord-ring";
    private readonly X509Certificate2 _certificate;
    private readonly byte[] _thumbprint;
    private readonly TimeSpan _handshakeTimeout;

    /// <summary>Creates the transport for <paramref name="certificate"/> (with its private key).</summary>
    /// <param name="certificate">The cluster certificate every node of the ring has.</param>
    /// <param name="handshakeTimeout">How long a TLS handshake may take; a slower one closes the connection.</param>
    public TlsTcpTransport(X509Certificate2 certificate, TimeSpan handshakeTimeout)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!certificate.HasPrivateKey)
        {
            throw new ArgumentException($"The TLS certificate {certificate.Subject} has no private key: give a PKCS#12 (.pfx) file that holds it.", nameof(certificate));
        }

        _certificate = certificate;
        _thumbprint = certificate.GetCertHash(HashAlgorithmName.SHA256);
        _handshakeTimeout = handshakeTimeout;
    }

    /// <summary>Loads the cluster certificate from a PKCS#12 file; throws with the path and the reason when it cannot.</summary>
    public static X509Certificate2 LoadCertificate(string path, string? password)
    {
        try
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"The TLS certificate '{path}' could not be loaded ({e.Message}); allowed: a PKCS#12 (.pfx) file with its private key, and its password.", e);
        }
    }

    /// <inheritdoc />
    public async ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken)
    {
        var inner = await TcpTransport.ListenSocketAsync(host, port);
        return new Listener(this, inner.Socket, inner.Bound);
    }

    /// <inheritdoc />
    public async ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, cancellationToken);
            var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false, ValidatePeer);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_handshakeTimeout);
            try
            {
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = TargetHost,
                    ClientCertificates = [_certificate],
                    RemoteCertificateValidationCallback = ValidatePeer,
                }, deadline.Token);
            }
            catch (Exception e) when (e is AuthenticationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                await ssl.DisposeAsync();
                throw new IOException($"The TLS handshake with {address} failed: {e.Message}", e);
            }

            return new TcpConnection(socket, ssl);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Accepts exactly the cluster certificate, whatever chain or name errors a self-signed one has.</summary>
    private bool ValidatePeer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && CryptographicOperations.FixedTimeEquals(certificate.GetCertHash(HashAlgorithmName.SHA256), _thumbprint);

    /// <summary>
    /// Accepts sockets and runs their TLS handshakes in the background (a slow stranger must not hold up the accept
    /// loop), at most <see cref="MaxPendingHandshakes"/> at once: more are closed at once.
    /// </summary>
    private sealed class Listener : IMeshRefusingListener
    {
        private const int MaxPendingHandshakes = 256;
        private readonly TlsTcpTransport _owner;
        private readonly Socket _socket;
        private readonly Channel<MeshTransportConnection> _ready = Channel.CreateBounded<MeshTransportConnection>(MaxPendingHandshakes);
        private readonly CancellationTokenSource _stopping = new();
        private readonly Task _accepting;
        private int _pending;

        public Listener(TlsTcpTransport owner, Socket socket, PeerAddress bound)
        {
            _owner = owner;
            _socket = socket;
            BoundAddress = bound;
            _accepting = Task.Run(AcceptLoopAsync);
        }

        public PeerAddress BoundAddress { get; }

        public Action<string, string, string>? Refused { get; set; }

        public async ValueTask<MeshTransportConnection?> AcceptAsync(CancellationToken cancellationToken)
        {
            try
            {
                return await _ready.Reader.ReadAsync(cancellationToken);
            }
            catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
            {
                return null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            _socket.Dispose();
            await _accepting;
            _ready.Writer.TryComplete();
            while (_ready.Reader.TryRead(out var unclaimed))
            {
                await unclaimed.DisposeAsync();
            }

            _stopping.Dispose();
        }

        private async Task AcceptLoopAsync()
        {
            while (!_stopping.IsCancellationRequested)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync(_stopping.Token);
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                    || (e is SocketException se && se.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted))
                {
                    return;
                }
                catch (SocketException)
                {
                    continue;
                }

                if (Interlocked.Increment(ref _pending) > MaxPendingHandshakes)
                {
                    Interlocked.Decrement(ref _pending);
                    Report(accepted, $"{MaxPendingHandshakes} TLS handshakes are already in progress");
                    accepted.Dispose();
                    continue;
                }

                accepted.NoDelay = true;
                _ = Task.Run(() => HandshakeAsync(accepted));
            }
        }

        /// <summary>Tells the node about a connection closed here.</summary>
        private void Report(Socket accepted, string reason) => Report(RemoteOf(accepted), reason);

        private void Report((string EndPoint, string Host) remote, string reason) => Refused?.Invoke(remote.EndPoint, remote.Host, reason);

        private static (string EndPoint, string Host) RemoteOf(Socket socket)
        {
            try
            {
                var remote = socket.RemoteEndPoint as System.Net.IPEndPoint;
                var endPoint = remote?.ToString() ?? "?";
                return (endPoint, remote?.Address.ToString() ?? endPoint);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                return ("?", "?");
            }
        }

        private async Task HandshakeAsync(Socket accepted)
        {
            var remote = RemoteOf(accepted);
            var ssl = new SslStream(new NetworkStream(accepted, ownsSocket: true), leaveInnerStreamOpen: false);
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                deadline.CancelAfter(_owner._handshakeTimeout);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = _owner._certificate,
                    ClientCertificateRequired = true,
                    RemoteCertificateValidationCallback = _owner.ValidatePeer,
                }, deadline.Token);
                var connection = new TcpConnection(accepted, ssl);
                if (!_ready.Writer.TryWrite(connection))
                {
                    await connection.DisposeAsync();
                }
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException or SocketException)
            {
                // Not a node of this cluster (no certificate, another one, plaintext, too slow): closed, and reported
                // unless the listener is stopping.
                if (!_stopping.IsCancellationRequested)
                {
                    Report(remote, e is OperationCanceledException
                        ? $"it did not complete the TLS handshake within {_owner._handshakeTimeout.TotalSeconds:0.###} s"
                        : $"its TLS handshake failed ({e.Message})");
                }

                await ssl.DisposeAsync();
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }
}
