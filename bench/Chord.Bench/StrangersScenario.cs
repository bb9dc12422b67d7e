using System.Diagnostics;
using System.Net.Sockets;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Bench;

/// <summary>
/// Strangers before authentication (issue 13): N connections to one node of a three-node ring (authentication
/// required, as by default) that never authenticate, in three ways: a frame header claiming 16 MiB followed by as much
/// of its body as the socket takes (<c>huge</c>), well-formed frames under the pre-authentication frame limit sent
/// without pause (<c>flood</c>), and frames up to just under the byte budget, then half a frame, then silence
/// (<c>hold</c>: what a stranger can make the node keep until its handshake time-out). Reports the process's RSS and
/// managed heap before, at the peak and after every connection was closed, what the node counted, and whether it still
/// serves (gets through it right after).
/// </summary>
public static class StrangersScenario
{
    private static readonly string[] Attacks = ["huge", "flood", "hold"];

    public static async Task RunAsync(BenchContext context)
    {
        var options = context.Options;
        var counts = options.Strangers ?? (options.Quick ? [32, 256] : [32, 256, 1000]);
        var handshakeTimeout = TimeSpan.FromSeconds(2);
        var table = new ResultTable(
            "Strangers: N unauthenticated connections to one ring node",
            ["attack", "connections", "RSS before MB", "RSS peak MB", "RSS after MB", "heap before MB", "heap peak MB", "heap held MB", "heap after MB",
                "node's pre-auth peak B", "limit closes", "s to close all", "gets after"]);
        context.Log("strangers: starting 3 nodes");
        await using var ring = await BenchRing.StartAsync(3, configure: o =>
        {
            // Every attacker dials from 127.0.0.1: the per-address limit (64 by default) would refuse all but the
            // first 64 and hide the per-connection cost this measures.
            o.Mesh.MaxConnectionsPerAddress = counts.Max() + 64;
            o.Mesh.MaxConnections = counts.Max() + 64;
            o.Mesh.HandshakeTimeout = handshakeTimeout;
        });
        var target = ring.Nodes[0];
        var keys = Enumerable.Range(0, 100).Select(i => System.Text.Encoding.UTF8.GetBytes($"strangers-{i}")).ToArray();
        await RingScenario.PrefillAsync(keys, (key, i) => ring.Nodes[i % 3].SetAsync(key, MsgValue.Str("v")));
        var budget = Math.Min(target.Mesh.Options.MaxPreAuthBytes, target.Mesh.Options.MaxFrameLength);
        var frameLimit = target.Mesh.Options.MaxPreAuthFrameLength;
        foreach (var attack in Attacks)
        {
            foreach (var n in counts)
            {
                context.Log($"strangers: {attack}, {n} connections");
                table.Add(await RunOneAsync(target, attack, n, budget, frameLimit, handshakeTimeout, keys));
            }
        }

        table.Notes.Add($"The target node's limits are its defaults (pre-authentication byte budget {budget:#,0} B, frame limit "
            + $"{frameLimit:#,0} B before authentication) but for the connection limits, raised to the largest N + 64 (every "
            + $"attacker dials from 127.0.0.1, and the per-address limit of 64 would refuse the rest), and a handshake time-out "
            + $"of {handshakeTimeout.TotalSeconds:0} s (10 s by default) so that `hold` ends sooner.");
        table.Notes.Add("RSS and heap are this process's (the bench: three ring nodes and the attackers, whose sockets cost "
            + "kernel memory, not RSS); `before` after a full collection, `peak` sampled every 5 ms while the attack ran (the heap's "
            + "peak counts garbage not yet collected: the GC's gen0 budget, tens of MB here), `held` after a full collection "
            + "once every attacker had sent its share (for `hold`, all N connections still open: what they make the node "
            + "keep), `after` "
            + "1 s after the node closed the last connection, then a full collection. `node's pre-auth peak B` is "
            + "`MeshStatistics.PreAuthPeakBytes`, the most bytes one stranger got the node to hold, never above the budget. "
            + "`limit closes` are the connections the node closed for a pre-authentication limit (`huge`: the frame header, `flood`: "
            + "the byte budget); `hold` stays within both and is closed at the handshake time-out. Every connection was "
            + "closed by the node (the attackers close theirs only after the node's count of open connections is back where it "
            + "was). `gets after` are 100 gets through the attacked node once its connections closed.");
        context.Publish("strangers", [table], []);
    }

    private static async Task<string[]> RunOneAsync(RingNode target, string attack, int n, int budget, int frameLimit, TimeSpan handshakeTimeout, byte[][] keys)
    {
        var before = Sample(collect: true);
        var statsBefore = target.Mesh.GetStatistics();
        var openBefore = statsBefore.OpenConnections;
        using var stop = new CancellationTokenSource();
        long peakRss = before.Rss, peakHeap = before.Heap;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var s = Sample(collect: false);
                peakRss = Math.Max(peakRss, s.Rss);
                peakHeap = Math.Max(peakHeap, s.Heap);
                await Task.Delay(5);
            }
        });

        var clock = Stopwatch.StartNew();
        var address = target.Mesh.Address;
        var sockets = new List<Socket>(n);
        long held;
        try
        {
            for (var i = 0; i < n; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(address.Host, address.Port);
                sockets.Add(socket);
            }

            var body = new byte[64 * 1024];
            var frame = WhisperFrame(frameLimit - 256);
            await Task.WhenAll(sockets.Select(s => AttackAsync(s, attack, body, frame, budget)));
            held = Sample(collect: true).Heap; // what survives a full collection while the strangers are still connected (hold) or just closed

            // Every connection ends by the node's doing: closed on its header, over its budget, or at its handshake time-out.
            var deadline = Stopwatch.StartNew();
            while (target.Mesh.GetStatistics().OpenConnections > openBefore)
            {
                if (deadline.Elapsed > handshakeTimeout + TimeSpan.FromSeconds(30))
                {
                    throw new TimeoutException($"{attack}: {target.Mesh.GetStatistics().OpenConnections - openBefore} of {n} stranger connections still open after {deadline.Elapsed.TotalSeconds:0} s");
                }

                await Task.Delay(10);
            }
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        var closeSeconds = clock.Elapsed.TotalSeconds;
        await Task.Delay(1000);
        stop.Cancel();
        await sampler;
        var after = Sample(collect: true);
        var stats = target.Mesh.GetStatistics();
        var served = 0;
        foreach (var key in keys)
        {
            try
            {
                if ((await target.GetAsync(key)) is not null)
                {
                    served++;
                }
            }
            catch (TimeoutException)
            {
                // counted as not served
            }
        }

        return
        [
            attack, n.ToString(), Mb(before.Rss), Mb(peakRss), Mb(after.Rss), Mb(before.Heap), Mb(peakHeap), Mb(held), Mb(after.Heap),
            stats.PreAuthPeakBytes.ToString("#,0"), $"{stats.PreAuthLimitCloses - statsBefore.PreAuthLimitCloses} of {n}",
            closeSeconds.ToString("0.0"), $"{served}/{keys.Length}",
        ];
    }

    /// <summary>Sends until the node closes the connection (or, for <c>hold</c>, sends its share and waits).</summary>
    private static async Task AttackAsync(Socket socket, string attack, byte[] body, byte[] frame, int budget)
    {
        try
        {
            switch (attack)
            {
                case "huge":
                    await socket.SendAsync(FrameHeader(16 * 1024 * 1024));
                    for (var sent = 0; sent < 15 * 1024 * 1024; sent += body.Length)
                    {
                        await socket.SendAsync(body);
                    }

                    break;
                case "flood":
                    for (var i = 0; i < 10_000; i++)
                    {
                        await socket.SendAsync(frame);
                    }

                    break;
                default:
                    var sent2 = 0;
                    for (; sent2 + frame.Length < budget - 512; sent2 += frame.Length)
                    {
                        await socket.SendAsync(frame);
                    }

                    // Half a frame, then nothing: held until the node's handshake time-out.
                    await socket.SendAsync(frame.AsMemory(0, Math.Min(frame.Length / 2, budget - sent2 - 1)));
                    break;
            }
        }
        catch (SocketException)
        {
            // The node closed the connection under the attacker: what it should do.
        }
    }

    private static byte[] FrameHeader(int length) => [(byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length];

    private static byte[] WhisperFrame(int bytes)
    {
        var message = Message.Create(MainFlag.Whisper, "stranger", 1_700_000_000, MsgValue.From((long)SubFlag.Whisper), MsgValue.Str(new string('x', bytes)));
        return FrameCodec.Encode(message);
    }

    private static (long Rss, long Heap) Sample(bool collect)
    {
        if (collect)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
        }

        using var process = Process.GetCurrentProcess();
        return (process.WorkingSet64, GC.GetTotalMemory(false));
    }

    private static string Mb(long bytes) => (bytes / 1024.0 / 1024.0).ToString("0.0");
}
