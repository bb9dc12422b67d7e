using System.IO.Pipelines;
using System.Net.Sockets;

namespace Chord.Dht.Mesh.Transport;

/// <summary>A TCP socket seen through pipes. The pipe thresholds bound what one connection may buffer.</summary>
internal sealed class TcpConnection : MeshTransportConnection
{
    /// <summary>
    /// The most bytes one read of <see cref="Input"/> can add to what is buffered (the pipe reads the stream into
    /// segments of this size). Until a peer is admitted, reads are capped (<see cref="LimitReads"/>), so a connection
    /// not yet authenticated holds at most its pre-authentication budget.
    /// </summary>
    internal const int ReadBufferSize = 64 * 1024;

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly ReadBudgetStream _budget;
    private int _aborted;

    public TcpConnection(Socket socket, Stream? stream = null)
    {
        _socket = socket;
        _stream = stream ?? new NetworkStream(socket, ownsSocket: true);
        _budget = new ReadBudgetStream(_stream);
        Input = PipeReader.Create(_budget, new StreamPipeReaderOptions(bufferSize: ReadBufferSize, minimumReadSize: 4096, leaveOpen: true));
        Output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        RemoteEndPoint = socket.RemoteEndPoint?.ToString() ?? "?";
        RemoteHost = (socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address.ToString() ?? RemoteEndPoint;
    }

    public override string RemoteHost { get; }

    public override PipeReader Input { get; }

    public override PipeWriter Output { get; }

    public override string RemoteEndPoint { get; }

    public override void LimitReads(long total) => _budget.Limit(total);

    public override void LiftReadLimit() => _budget.Lift();

    public override void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Already closed by the other side.
            }

            _stream.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        Abort();
        await Input.CompleteAsync();
        await Output.CompleteAsync();
    }
}
