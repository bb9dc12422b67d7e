using System.IO.Pipelines;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// A transport that can freeze a node as <c>SIGSTOP</c> freezes its process: while frozen, every connection the node has
/// (dialled or accepted, old or new) stays open, but no byte it receives reaches the node and no byte it sends leaves,
/// so its peers see open sockets and no answers. Bytes held meanwhile are delivered in order after <see cref="Thaw"/>
/// (as a thawed process reads its socket buffers), so no frame is cut in half. Faults live in the bytes on the wire,
/// not in the node's handlers: the node itself runs on, unaware, and its timers keep sending into the void.
/// </summary>
public sealed class FreezableTransport(IMeshTransport inner) : IMeshTransport
{
    private readonly object _lock = new();
    private TaskCompletionSource? _frozen;
    private long _heldReads;
    private long _heldWrites;

    /// <inheritdoc />
    public bool IsInProcess => inner.IsInProcess;

    /// <summary>True between <see cref="Freeze"/> and <see cref="Thaw"/>.</summary>
    public bool IsFrozen => Volatile.Read(ref _frozen) is not null;

    /// <summary>Reads from the wire that waited for a thaw before reaching the node (bytes the node would have received).</summary>
    public long HeldReads => Interlocked.Read(ref _heldReads);

    /// <summary>Writes of the node that waited for a thaw before reaching the wire.</summary>
    public long HeldWrites => Interlocked.Read(ref _heldWrites);

    /// <summary>From now on nothing crosses any connection of this transport, in either direction.</summary>
    public void Freeze()
    {
        lock (_lock)
        {
            _frozen ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Lets the held bytes through, in order, and everything after them.</summary>
    public void Thaw()
    {
        TaskCompletionSource? frozen;
        lock (_lock)
        {
            frozen = _frozen;
            _frozen = null;
        }

        frozen?.TrySetResult();
    }

    /// <inheritdoc />
    public async ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken) =>
        new WrappingListener(await inner.ListenAsync(host, port, cancellationToken), accepted => new Connection(this, accepted));

    /// <inheritdoc />
    public async ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken) =>
        new Connection(this, await inner.ConnectAsync(address, cancellationToken));

    /// <summary>Waits while frozen; counts one held crossing when it had to wait.</summary>
    private ValueTask PassAsync(ref long heldCounter, CancellationToken cancellationToken)
    {
        var frozen = Volatile.Read(ref _frozen);
        if (frozen is null)
        {
            return ValueTask.CompletedTask;
        }

        Interlocked.Increment(ref heldCounter);
        return new ValueTask(frozen.Task.WaitAsync(cancellationToken));
    }

    /// <summary>The node sees two local pipes; two pumps move bytes between them and the real connection when not frozen.</summary>
    private sealed class Connection : MeshTransportConnection
    {
        private readonly FreezableTransport _transport;
        private readonly MeshTransportConnection _inner;
        private readonly Pipe _received = new();
        private readonly Pipe _sent = new();
        private readonly CancellationTokenSource _closed = new();
        private readonly Task _pumps;
        private int _aborting;
        private readonly TaskCompletionSource _abortRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Connection(FreezableTransport transport, MeshTransportConnection inner)
        {
            _transport = transport;
            _inner = inner;
            _pumps = Task.WhenAll(Task.Run(PumpInAsync), Task.Run(PumpOutAsync));
        }

        public override PipeReader Input => _received.Reader;

        public override PipeWriter Output => _sent.Writer;

        public override string RemoteEndPoint => _inner.RemoteEndPoint;

        public override string RemoteHost => _inner.RemoteHost;

        private async Task PumpInAsync()
        {
            Exception? failure = null;
            try
            {
                while (true)
                {
                    await _transport.PassAsync(ref _transport._heldReads, _closed.Token);
                    var read = await _inner.Input.ReadAsync(_closed.Token);
                    await _transport.PassAsync(ref _transport._heldReads, _closed.Token);
                    foreach (var segment in read.Buffer)
                    {
                        await _received.Writer.WriteAsync(segment, _closed.Token);
                    }

                    _inner.Input.AdvanceTo(read.Buffer.End);
                    if (read.IsCompleted || read.IsCanceled)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Closed.
            }
            catch (Exception e)
            {
                failure = e;
            }

            await _received.Writer.CompleteAsync(failure);
        }

        private async Task PumpOutAsync()
        {
            try
            {
                while (true)
                {
                    var read = await _sent.Reader.ReadAsync(_closed.Token);
                    var aborting = Volatile.Read(ref _aborting) != 0;
                    if (!aborting)
                    {
                        await _transport.PassAsync(ref _transport._heldWrites, _closed.Token);
                    }

                    // Aborting: what the node flushed before closing still goes out, as a socket's buffer would,
                    // unless the node is frozen (then it never left the process).
                    if (!aborting || !_transport.IsFrozen)
                    {
                        foreach (var segment in read.Buffer)
                        {
                            await _inner.Output.WriteAsync(segment, _closed.Token);
                        }
                    }

                    _sent.Reader.AdvanceTo(read.Buffer.End);
                    if (aborting)
                    {
                        break;
                    }

                    if (read.IsCompleted || read.IsCanceled)
                    {
                        await _inner.Output.CompleteAsync(); // the node closed its side; the connection ends at its abort
                        await _abortRequested.Task;
                        break;
                    }
                }
            }
            catch (Exception)
            {
                // Closed, or the wire failed: the node learns it from its input, as with a real socket.
            }

            _inner.Abort();
            _closed.Cancel();
        }

        public override void Abort()
        {
            if (Interlocked.Exchange(ref _aborting, 1) != 0)
            {
                return;
            }

            _abortRequested.TrySetResult();

            try
            {
                if (_transport.IsFrozen)
                {
                    _closed.Cancel();
                    _inner.Abort();
                }
                else
                {
                    _sent.Reader.CancelPendingRead(); // the output pump sends what is queued, then aborts the connection
                    _closed.CancelAfter(TimeSpan.FromSeconds(5)); // a remote that no longer reads cannot hold it open
                }
            }
            catch (ObjectDisposedException)
            {
                // A DisposeAsync that came in meanwhile (its own Abort returned at once, since this one had begun) saw
                // the pumps end and disposed the token source: the connection is closed already.
            }
        }

        public override async ValueTask DisposeAsync()
        {
            Abort();
            await _pumps;
            await _inner.DisposeAsync();
            await _sent.Reader.CompleteAsync();
            await _received.Reader.CompleteAsync();
            _closed.Dispose();
        }
    }
}
