using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Wire;

namespace Chord.Bench;

/// <summary>
/// The physical floor: one loopback TCP connection (the mesh's own <see cref="TcpTransport"/>, pipes, no Nagle)
/// doing ping-pong with one frame of our format. Each side reads a whole frame (<see cref="FrameCodec.TryReadFrame"/>),
/// checks its digest and parses it (<see cref="FrameCodec.DecodeBody"/>), and writes one frame back with one flush,
/// as a ring node does for a request it owns. Nothing else: no routing, no five positions, no quorum.
/// </summary>
public static class FloorScenario
{
    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var table = ResultTable.Measured("Loopback floor: one TCP connection, ping-pong of one frame", ["value B", "frame B"]);
        double? floor = null;
        foreach (var size in options.Values ?? [64, 4096])
        {
            context.Log($"floor: {size} B value");
            var m = await MeasureAsync(options.Warmup, options.Duration, size, context);
            var p50 = m.Latency.PercentileMicros(0.5);
            floor ??= p50;
            table.Add([size.ToString(), RequestFrame(size).Length.ToString()], m, floor.Value);
        }

        context.SetFloor(floor!.Value);
        table.Notes.Add("The floor used by every `×floor` column is the p50 of the first row. One op is one round trip "
            + "(a frame each way), so `frames/op` is 2 by construction and not read from the meter.");

        // What authentication costs: it runs once per connection (frames after it carry no MAC), so it is measured
        // where it happens, on a connection's set-up, in both modes and in turn.
        var setup = ResultTable.Measured("Mesh connection set-up: dial, handshake (and authentication), one ping round trip", ["security", "round"]);
        var connects = options.Quick ? 100 : 400;
        for (var round = 1; round <= 2; round++)
        {
            foreach (var security in new[] { MeshSecurity.Off, MeshSecurity.Required })
            {
                context.Log($"floor: connection set-up, security {security}, round {round}");
                var m = await MeasureConnectsAsync(security, connects, context);
                setup.Add([security.ToString().ToLowerInvariant(), round.ToString()], m, floor.Value);
            }
        }

        setup.Notes.Add($"{connects} connections per row (after 20 unmeasured), one at a time between two mesh nodes on loopback "
            + "TCP; an op is `ConnectAsync` (returns once the peer is served: handshakes both ways, and with `required` each side's "
            + "challenge and HMAC-SHA256 proof) followed by one ping round trip; closing the connection and waiting for the other "
            + "side to see it close are outside the timed part but inside `CPU µs/op`, `alloc B/op` and `frames/op`. `off` is "
            + "the mode of py2p stand-ins (no challenge sent or answered); `required` is the default.");
        context.Publish("floor", [table, setup], BenchContext.CommonNotes);
    }

    /// <summary>Connects node A to node B <paramref name="count"/> times, one at a time, in <paramref name="security"/> mode.</summary>
    public static async Task<Measurement> MeasureConnectsAsync(MeshSecurity security, int count, BenchContext context)
    {
        MeshOptions Options() => new() { ListenHost = "127.0.0.1", Security = security, ClusterSecret = "bench-connection-setup-secret" };
        await using var a = new MeshNode(Options());
        await using var b = new MeshNode(Options());
        await a.StartAsync();
        await b.StartAsync();
        var latency = new LatencyHistogram();
        long errors = 0;
        string? firstError = null;
        var framesBefore = 0L;
        var bytesBefore = 0L;
        var cpuBefore = TimeSpan.Zero;
        var allocatedBefore = 0L;
        var elapsed = Stopwatch.StartNew();
        for (var i = -20; i < count; i++)
        {
            if (i == 0)
            {
                (framesBefore, bytesBefore) = (context.Frames.Frames, context.Frames.Bytes);
                cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
                elapsed.Restart();
            }

            var start = Stopwatch.GetTimestamp();
            try
            {
                var peer = await a.ConnectAsync(b.Address, b.Id);
                await peer.PingAsync();
                if (i >= 0)
                {
                    latency.Record(Stopwatch.GetTimestamp() - start);
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException or InvalidOperationException)
            {
                errors++;
                firstError ??= e.Message;
            }

            await a.DisconnectAsync(b.Id);
            var deadline = Stopwatch.StartNew();
            while (b.GetPeer(a.Id) is not null || a.GetPeer(b.Id) is not null)
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new TimeoutException("a closed connection was still open on one side after 10 s");
                }

                await Task.Delay(1);
            }
        }

        var (frames, bytes) = (context.Frames.Frames, context.Frames.Bytes);
        return new Measurement(count, errors, elapsed.Elapsed, latency, GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore,
            frames - framesBefore, bytes - bytesBefore, firstError, Process.GetCurrentProcess().TotalProcessorTime - cpuBefore);
    }

    /// <summary>A store-like request: <c>[11, bin "sha1", bin position, bin value]</c> from a fixed sender.</summary>
    public static byte[] RequestFrame(int valueBytes)
    {
        var value = new byte[valueBytes];
        new Random(valueBytes).NextBytes(value);
        var sender = Base58.Encode(new System.Numerics.BigInteger(SHA384.HashData("floor"u8), isUnsigned: true, isBigEndian: true));
        var position = KeyHashes.Position(HashMethod.Sha1, "floor-key"u8);
        var message = Message.Create(MainFlag.Whisper, sender, 1_700_000_000,
            MsgValue.From((long)SubFlag.Store), MsgValue.BinAscii(HashMethod.Sha1.WireName()), MsgValue.BinAscii(position.ToBase58()), MsgValue.Bin(value));
        return FrameCodec.Encode(message);
    }

    public static async Task<Measurement> MeasureAsync(TimeSpan warmup, TimeSpan duration, int valueBytes, BenchContext context)
    {
        var frame = RequestFrame(valueBytes);
        var transport = TcpTransport.Instance;
        await using var listener = await transport.ListenAsync("127.0.0.1", 0, CancellationToken.None);
        var accept = listener.AcceptAsync(CancellationToken.None).AsTask();
        await using var client = await transport.ConnectAsync(listener.BoundAddress, CancellationToken.None);
        await using var server = await accept ?? throw new InvalidOperationException("The floor's listener closed before accepting.");
        using var stop = new CancellationTokenSource();
        var echo = Task.Run(() => EchoAsync(server, frame, stop.Token));
        try
        {
            var m = await LoadRunner.RunAsync(1, warmup, duration, (_, _) => RoundTripAsync(client, frame), null);
            return m with { Frames = m.Ops * 2, Bytes = m.Ops * 2 * frame.Length };
        }
        finally
        {
            stop.Cancel();
            client.Abort();
            server.Abort();
            try
            {
                await echo;
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
            {
                // The echo side ends when its connection is aborted.
            }
        }
    }

    private static async Task RoundTripAsync(MeshTransportConnection connection, byte[] frame)
    {
        await connection.Output.WriteAsync(frame);
        await ReadOneAsync(connection.Input);
    }

    private static async Task EchoAsync(MeshTransportConnection connection, byte[] frame, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            if (!await ReadOneAsync(connection.Input))
            {
                return;
            }

            await connection.Output.WriteAsync(frame, stop);
        }
    }

    /// <summary>Reads, checks and parses one frame; false when the connection ended.</summary>
    private static async Task<bool> ReadOneAsync(PipeReader input)
    {
        while (true)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            if (FrameCodec.TryReadFrame(ref buffer, FrameCodec.DefaultMaxFrameLength, out var body, out _) == FrameReadStatus.Frame)
            {
                _ = FrameCodec.DecodeBody(body, []);
                input.AdvanceTo(buffer.Start);
                return true;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return false;
            }
        }
    }
}
