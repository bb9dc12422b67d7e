using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// A transport whose connections lose, repeat, delay and so reorder the ring's requests and answers (store, retrieve,
/// retrieved, prepare, accept, ack, copies) as a node receives them, each decision drawn from one seeded
/// <see cref="Random"/>. Everything else (handshakes, membership, pings) passes untouched and in order, so that the
/// mesh stays up and the faults land on the register and the routing that must survive them. A repeated frame is the
/// same bytes again (the mesh sees its message id twice); a delayed one arrives after frames sent later.
/// </summary>
public sealed class FaultyTransport(IMeshTransport inner, int seed) : IMeshTransport
{
    private static readonly HashSet<long> RingTraffic =
    [
        (long)SubFlag.Store, (long)SubFlag.Retrieve, (long)SubFlag.Retrieved,
        (long)RingSubFlag.Prepare, (long)RingSubFlag.Accept, (long)RingSubFlag.Ack, (long)RingSubFlag.Accepts, (long)RingSubFlag.Acks, (long)RingSubFlag.Retrieves, (long)RingSubFlag.Values, (long)RingSubFlag.Copies,
        (long)RingSubFlag.Fence, (long)RingSubFlag.Fenced,
    ];

    private readonly Random _random = new(seed);
    private volatile bool _enabled;
    private long _passed;
    private long _dropped;
    private long _duplicated;
    private long _delayed;

    /// <summary>Chance that a ring frame is lost.</summary>
    public double DropChance { get; init; }

    /// <summary>Chance that a ring frame arrives twice.</summary>
    public double DuplicateChance { get; init; }

    /// <summary>Chance that a ring frame is held back (and so overtaken by later ones).</summary>
    public double DelayChance { get; init; }

    /// <summary>The longest a held frame waits.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Faults happen only while enabled (not while the ring forms, nor during the final check).</summary>
    public bool Enabled
    {
        get => _enabled;
        set => _enabled = value;
    }

    /// <inheritdoc />
    public bool IsInProcess => inner.IsInProcess;

    /// <summary>What the faults did so far.</summary>
    public string Describe() =>
        $"{Interlocked.Read(ref _passed)} ring frames passed, {Interlocked.Read(ref _dropped)} dropped, {Interlocked.Read(ref _duplicated)} duplicated, {Interlocked.Read(ref _delayed)} delayed";

    /// <summary>Ring frames lost, repeated and held back so far.</summary>
    public long Faults => Interlocked.Read(ref _dropped) + Interlocked.Read(ref _duplicated) + Interlocked.Read(ref _delayed);

    /// <inheritdoc />
    public async ValueTask<IMeshListener> ListenAsync(string host, int port, CancellationToken cancellationToken) =>
        new WrappingListener(await inner.ListenAsync(host, port, cancellationToken), accepted => new Connection(this, accepted));

    /// <inheritdoc />
    public async ValueTask<MeshTransportConnection> ConnectAsync(PeerAddress address, CancellationToken cancellationToken) =>
        new Connection(this, await inner.ConnectAsync(address, cancellationToken));

    /// <summary>For one received frame: how many copies arrive, and after what delay each (zero: at once, in order).</summary>
    private (int Copies, TimeSpan First, TimeSpan Second) Decide(ReadOnlySequence<byte> body)
    {
        if (!_enabled || !IsRingTraffic(body))
        {
            return (1, TimeSpan.Zero, TimeSpan.Zero);
        }

        lock (_random)
        {
            if (_random.NextDouble() < DropChance)
            {
                Interlocked.Increment(ref _dropped);
                return (0, TimeSpan.Zero, TimeSpan.Zero);
            }

            var first = _random.NextDouble() < DelayChance ? Delay() : TimeSpan.Zero;
            if (first > TimeSpan.Zero)
            {
                Interlocked.Increment(ref _delayed);
            }

            if (_random.NextDouble() < DuplicateChance)
            {
                Interlocked.Increment(ref _duplicated);
                return (2, first, Delay());
            }

            Interlocked.Increment(ref _passed);
            return (1, first, TimeSpan.Zero);
        }

        TimeSpan Delay() => TimeSpan.FromMilliseconds(1 + (_random.NextDouble() * MaxDelay.TotalMilliseconds));
    }

    private static bool IsRingTraffic(ReadOnlySequence<byte> body)
    {
        try
        {
            var message = FrameCodec.DecodeBody(body, Compression.Supported, acceptBareDigest: true); // frames between two of our nodes go bare
            var payload = message.Payload;
            return message.Type == MainFlag.Whisper && payload.Length > 0 && payload[0].TryGetInt32(out var flag) && RingTraffic.Contains(flag);
        }
        catch (MsgFormatException)
        {
            return false; // not ours to judge: the node closes the connection for it
        }
    }

    /// <summary>
    /// The node writes to the real connection; what it reads comes through a pump that cuts the incoming bytes into
    /// frames and delivers each as <see cref="Decide"/> says, through one queue, so that delivery never interleaves two
    /// frames' bytes.
    /// </summary>
    private sealed class Connection : MeshTransportConnection
    {
        private readonly FaultyTransport _transport;
        private readonly MeshTransportConnection _inner;
        private readonly Pipe _received = new();
        private readonly Channel<byte[]> _deliveries = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _closed = new();
        private readonly Task _pumps;

        public Connection(FaultyTransport transport, MeshTransportConnection inner)
        {
            _transport = transport;
            _inner = inner;
            _pumps = Task.WhenAll(Task.Run(CutFramesAsync), Task.Run(DeliverAsync));
        }

        public override PipeReader Input => _received.Reader;

        public override PipeWriter Output => _inner.Output;

        public override string RemoteEndPoint => _inner.RemoteEndPoint;

        public override string RemoteHost => _inner.RemoteHost;

        private async Task CutFramesAsync()
        {
            var passThrough = false; // after a frame too long to cut: the bytes go on as they are, for the node to refuse
            try
            {
                while (true)
                {
                    var read = await _inner.Input.ReadAsync(_closed.Token);
                    var buffer = read.Buffer;
                    if (passThrough)
                    {
                        _deliveries.Writer.TryWrite(buffer.ToArray());
                        buffer = buffer.Slice(buffer.End);
                    }

                    while (!passThrough)
                    {
                        var start = buffer.Start;
                        var status = FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out _);
                        if (status == FrameReadStatus.NeedMore)
                        {
                            break;
                        }

                        if (status == FrameReadStatus.TooLong)
                        {
                            passThrough = true;
                            var rest = read.Buffer.Slice(start);
                            _deliveries.Writer.TryWrite(rest.ToArray());
                            buffer = rest.Slice(rest.End);
                            break;
                        }

                        var frame = read.Buffer.Slice(start, body.End).ToArray();
                        var (copies, first, second) = _transport.Decide(body);
                        Deliver(frame, copies >= 1, first);
                        Deliver(frame, copies >= 2, second);
                    }

                    _inner.Input.AdvanceTo(buffer.Start, buffer.End);
                    if (read.IsCompleted || read.IsCanceled)
                    {
                        break;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or IOException)
            {
                // Closed.
            }

            await _inner.Input.CompleteAsync();
            _deliveries.Writer.TryComplete(); // a frame still held back is lost with the connection, as in flight
        }

        private void Deliver(byte[] frame, bool send, TimeSpan after)
        {
            if (!send)
            {
                return;
            }

            if (after <= TimeSpan.Zero)
            {
                _deliveries.Writer.TryWrite(frame);
                return;
            }

            _ = Task.Delay(after).ContinueWith(_ => _deliveries.Writer.TryWrite(frame), TaskScheduler.Default);
        }

        private async Task DeliverAsync()
        {
            try
            {
                await foreach (var frame in _deliveries.Reader.ReadAllAsync(_closed.Token))
                {
                    var flush = await _received.Writer.WriteAsync(frame, _closed.Token);
                    if (flush.IsCompleted)
                    {
                        break;
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
            {
                // Closed.
            }

            await _received.Writer.CompleteAsync();
        }

        public override void Abort()
        {
            _inner.Abort();
            _closed.Cancel();
        }

        public override async ValueTask DisposeAsync()
        {
            Abort();
            await _pumps;
            await _inner.DisposeAsync();
            // _closed stays undisposed: the node may abort a connection again after disposing it (it has no timer to free).
        }
    }
}
