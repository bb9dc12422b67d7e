using System.Buffers.Binary;
using System.Text;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;
using Xunit.Abstractions;

namespace Chord.Dht.Tests.Mesh;

/// <summary>
/// A node M takes 1,000 random and bit-flipped frames from raw sockets while two honest nodes, connected only
/// through M, keep broadcasting through it.
/// </summary>
public class MeshFuzzTests(ITestOutputHelper output)
{
    private const int FuzzFrameCount = 1000;
    private const int HonestBroadcasts = 200;
    private const int Attackers = 4;
    private const int MaxFrameLength = 64 * 1024;
    private const int Seed = 20250707;

    private enum Kind
    {
        /// <summary>Random body bytes: no valid digest. Must close.</summary>
        RandomBody,
        /// <summary>A valid frame with one bit of its body flipped. Must close.</summary>
        BitFlippedBody,
        /// <summary>A valid frame whose header has a high bit flipped, announcing more than the maximum. Must close.</summary>
        BitFlippedHeader,
        /// <summary>Random bytes under a correct digest: almost surely malformed msgpack.</summary>
        ValidDigestRandomBytes,
        /// <summary>A random msgpack value shaped like a message, under a correct digest: some valid, most not.</summary>
        RandomMessageShape,
        /// <summary>A well-formed message with random flags and arguments: handled or ignored.</summary>
        WellFormed,
    }

    [Fact]
    public async Task A_node_under_a_thousand_bad_frames_keeps_relaying_honest_broadcasts_exactly_once()
    {
        await using var m = new MeshNode(new MeshOptions { Security = MeshSecurity.AllowUnauthenticated, MaxFrameLength = MaxFrameLength });
        await using var a = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        var inboxM = new Inbox(m);
        var inboxA = new Inbox(a);
        var inboxB = new Inbox(b);
        await m.StartAsync();
        await a.StartAsync();
        await b.StartAsync();
        await a.ConnectAsync(m.Address);
        await b.ConnectAsync(m.Address);
        await Eventually.UntilAsync(() => m.GetPeer(a.Id) is not null && m.GetPeer(b.Id) is not null, "m has a and b in its routing table");
        var linkA = m.GetPeer(a.Id)!;
        var linkB = m.GetPeer(b.Id)!;
        Assert.Null(a.GetPeer(b.Id));
        Assert.Null(b.GetPeer(a.Id));
        var before = m.GetStatistics();

        var frames = MakeFrames(new Random(Seed));
        var outcomes = new bool?[FuzzFrameCount]; // true: the connection survived the frame; false: it was closed
        using var paceA = new SemaphoreSlim(0);
        using var paceB = new SemaphoreSlim(0);

        var attackers = Enumerable.Range(0, Attackers).Select(k => Task.Run(async () =>
        {
            RawPeer? raw = null;
            try
            {
                for (var i = k; i < FuzzFrameCount; i += Attackers)
                {
                    if (raw is null || raw.IsClosed)
                    {
                        if (raw is not null)
                        {
                            await raw.DisposeAsync();
                        }

                        raw = await RawPeer.ConnectAsync(m.Address);
                        await raw.HandshakeAsync(m, Compression.Supported); // so m also runs its decompressors on the junk
                    }

                    Assert.True(await raw.TrySendAsync(frames[i].Bytes), $"frame {i}: the connection, alive a moment ago, refused the frame");

                    // A ping after it: a pong means the frame was handled and the connection lives; a close means it did not.
                    var nonce = $"fuzz-ping-{i}";
                    _ = await raw.TrySendAsync(FrameCodec.Encode(raw.Create(MainFlag.Ping, (long)SubFlag.Ping, nonce))); // fails when m already closed it
                    var pong = await raw.WhenReceivedAsync(f => f.Type == MainFlag.Pong && Inbox.TextOf(f) == nonce).WaitAsync(Eventually.Deadline);
                    outcomes[i] = pong is not null;
                    paceA.Release();
                    paceB.Release();
                }
            }
            finally
            {
                if (raw is not null)
                {
                    await raw.DisposeAsync();
                }
            }
        })).ToList();

        // The honest nodes broadcast as the attack progresses: one broadcast per five bad frames.
        var perBroadcast = FuzzFrameCount / HonestBroadcasts;
        var honest = new[] { (Node: a, Pace: paceA), (Node: b, Pace: paceB) }.Select(h => Task.Run(async () =>
        {
            for (var i = 0; i < HonestBroadcasts; i++)
            {
                for (var k = 0; k < perBroadcast; k++)
                {
                    await h.Pace.WaitAsync();
                }

                await h.Node.BroadcastAsync($"honest-{i}", (long)i);
            }
        })).ToList();

        try
        {
            await Task.WhenAll(attackers).WaitAsync(TimeSpan.FromMinutes(2));
        }
        finally
        {
            // Should an attacker fail, the honest senders must not wait for its pace forever.
            paceA.Release(FuzzFrameCount);
            paceB.Release(FuzzFrameCount);
            await Task.WhenAll(honest).WaitAsync(TimeSpan.FromMinutes(1));
        }

        // Every frame that cannot be valid closed its connection; the rest were handled either way.
        var survivedButMustClose = Enumerable.Range(0, FuzzFrameCount)
            .Where(i => frames[i].Kind is Kind.RandomBody or Kind.BitFlippedBody or Kind.BitFlippedHeader && outcomes[i] != false)
            .Select(i => $"{i} ({frames[i].Kind}): {Convert.ToHexString(frames[i].Bytes.AsSpan(0, Math.Min(64, frames[i].Bytes.Length)))}")
            .ToList();
        Assert.True(survivedButMustClose.Count == 0, "these frames did not close their connection:\n" + string.Join('\n', survivedButMustClose));
        Assert.All(outcomes, o => Assert.NotNull(o));
        var closed = outcomes.Count(o => o == false);
        var after = m.GetStatistics();
        foreach (var group in Enumerable.Range(0, FuzzFrameCount).GroupBy(i => frames[i].Kind).OrderBy(g => g.Key))
        {
            output.WriteLine($"{group.Key}: {group.Count()} frames, {group.Count(i => outcomes[i] == false)} closed the connection");
        }

        output.WriteLine($"m: {after.BadFrames - before.BadFrames} bad frames, {after.FramesIn - before.FramesIn} frames in, {after.Exceptions - before.Exceptions} exceptions");
        Assert.InRange(closed, FuzzFrameCount / 2, FuzzFrameCount - 1); // most frames close, well-formed ones do not
        Assert.True(after.BadFrames - before.BadFrames >= frames.Count(f => f.Kind is Kind.RandomBody or Kind.BitFlippedBody or Kind.BitFlippedHeader), "every must-close frame counted as a bad frame");
        Assert.True(after.Exceptions == before.Exceptions, $"m caught {after.Exceptions - before.Exceptions} unexpected exceptions: bad input must be refused, not crash a loop");

        // Every honest broadcast arrived; flush: a and b whisper m, then m whispers them, so anything m relayed
        // before (a duplicate) has been handled when the flush arrives.
        await Eventually.UntilAsync(
            () => Enumerable.Range(0, HonestBroadcasts).All(i => inboxB.Count(a.Id, $"honest-{i}") >= 1 && inboxA.Count(b.Id, $"honest-{i}") >= 1),
            "a and b received all of each other's broadcasts through m");
        await a.WhisperAsync(m.Id, "flush");
        await b.WhisperAsync(m.Id, "flush");
        await Eventually.UntilAsync(() => inboxM.Count(a.Id, "flush") == 1 && inboxM.Count(b.Id, "flush") == 1, "m handled the flush of a and b");
        await m.WhisperAsync(a.Id, "flush");
        await m.WhisperAsync(b.Id, "flush");
        await Eventually.UntilAsync(() => inboxA.Count(m.Id, "flush") == 1 && inboxB.Count(m.Id, "flush") == 1, "a and b handled m's flush");
        for (var i = 0; i < HonestBroadcasts; i++)
        {
            Assert.Equal(1, inboxB.Count(a.Id, $"honest-{i}"));
            Assert.Equal(1, inboxA.Count(b.Id, $"honest-{i}"));
            Assert.Equal(0, inboxA.Count(a.Id, $"honest-{i}"));
            Assert.Equal(0, inboxB.Count(b.Id, $"honest-{i}"));
            Assert.Equal(1, inboxM.Count(a.Id, $"honest-{i}"));
            Assert.Equal(1, inboxM.Count(b.Id, $"honest-{i}"));
        }

        // a and b never dialled each other, and m served them on the same connections throughout.
        Assert.Null(a.GetPeer(b.Id));
        Assert.Null(b.GetPeer(a.Id));
        Assert.Same(linkA, m.GetPeer(a.Id));
        Assert.Same(linkB, m.GetPeer(b.Id));

        // m still takes new honest connections.
        await using var c = new MeshNode(new MeshOptions { MaxOutgoing = 0 });
        var inboxC = new Inbox(c);
        await c.StartAsync();
        await c.ConnectAsync(m.Address);
        // m's side of the connection served too (one clean-clone CI run under load timed out below, cause not seen).
        await Eventually.UntilAsync(() => m.GetPeer(c.Id) is not null && c.GetPeer(m.Id) is not null, "m and the newcomer to serve their connection");
        await c.BroadcastAsync("from-c");
        await Eventually.UntilAsync(() => inboxA.Count(c.Id, "from-c") == 1 && inboxB.Count(c.Id, "from-c") == 1, Eventually.Deadline,
            "a newcomer's broadcast to reach a and b through m", () => $"(a {inboxA.Count(c.Id, "from-c")}, b {inboxB.Count(c.Id, "from-c")}, m {inboxM.Count(c.Id, "from-c")}; m serves c: {m.GetPeer(c.Id) is not null}, a: {m.GetPeer(a.Id) is not null}, b: {m.GetPeer(b.Id) is not null})");
    }

    private static List<(Kind Kind, byte[] Bytes)> MakeFrames(Random random)
    {
        var kinds = Enum.GetValues<Kind>();
        var frames = new List<(Kind, byte[])>(FuzzFrameCount);
        for (var i = 0; i < FuzzFrameCount; i++)
        {
            var kind = kinds[random.Next(kinds.Length)];
            frames.Add((kind, MakeFrame(random, kind)));
        }

        return frames;
    }

    private static byte[] MakeFrame(Random random, Kind kind)
    {
        switch (kind)
        {
            case Kind.RandomBody:
                return MeshFrames.Frame(RandomBytes(random, random.Next(0, 400)));
            case Kind.BitFlippedBody:
            {
                var frame = FrameCodec.Encode(WellFormed(random));
                var bit = random.Next(FrameCodec.HeaderLength * 8, frame.Length * 8);
                frame[bit / 8] ^= (byte)(1 << (bit % 8));
                return frame;
            }

            case Kind.BitFlippedHeader:
            {
                var frame = FrameCodec.Encode(WellFormed(random));
                var length = BinaryPrimitives.ReadUInt32BigEndian(frame);
                length ^= 1u << random.Next(17, 32); // at least 128 KiB more: over MaxFrameLength
                BinaryPrimitives.WriteUInt32BigEndian(frame, length);
                return frame;
            }

            case Kind.ValidDigestRandomBytes:
                return MeshFrames.WithValidDigest(RandomBytes(random, random.Next(1, 300)));
            case Kind.RandomMessageShape:
            {
                var packets = new List<MsgValue>
                {
                    random.Next(4) == 0 ? RandomValue(random, 0) : MsgValue.From((long)random.Next(-2, 12)),
                    random.Next(3) == 0 ? RandomValue(random, 0) : MsgValue.BinAscii("fuzz-" + random.Next(1000)),
                    random.Next(4) == 0 ? RandomValue(random, 0) : MsgValue.From(DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
                };
                var count = random.Next(0, 6);
                for (var p = 0; p < count; p++)
                {
                    packets.Add(RandomValue(random, 0));
                }

                return MeshFrames.WithValidDigest(MsgValue.Array(packets));
            }

            case Kind.WellFormed:
                return FrameCodec.Encode(WellFormed(random));
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown kind");
        }
    }

    /// <summary>A valid message with random main flag, sub-flag and arguments (never a peers list: m would dial it).</summary>
    private static Message WellFormed(Random random)
    {
        var subFlag = random.Next(5) == 0 ? random.Next(-5, 300) : random.Next(0, 0x12);
        if (subFlag == (int)SubFlag.Peers)
        {
            subFlag = 0x30;
        }

        var payload = new List<MsgValue> { MsgValue.From((long)subFlag) };
        var count = random.Next(0, 5);
        for (var p = 0; p < count; p++)
        {
            payload.Add(RandomValue(random, 0));
        }

        var type = (MainFlag)random.Next(0, 5);
        var sender = NodeIdentity.NodeId("127.0.0.1", 1, RawPeer.ChordProtocolId, "fuzz-" + random.Next(1000));
        return Message.Create(type, sender, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), [.. payload]);
    }

    private static MsgValue RandomValue(Random random, int depth)
    {
        switch (random.Next(depth > 2 ? 8 : 10))
        {
            case 0: return MsgValue.Nil;
            case 1: return MsgValue.From(random.Next(2) == 0);
            case 2: return MsgValue.From(random.NextInt64(long.MinValue, long.MaxValue) >> random.Next(0, 63));
            case 3: return MsgValue.From(random.NextDouble() * 1e6);
            case 4: return MsgValue.Str(RandomText(random));
            case 5: return MsgValue.Bin(RandomBytes(random, random.Next(0, 40)));
            case 6: return MsgValue.From((long)random.Next(0, 0x21));
            case 7: return MsgValue.BinAscii(Base58Like(random));
            case 8:
            {
                var items = new MsgValue[random.Next(0, 4)];
                for (var i = 0; i < items.Length; i++)
                {
                    items[i] = RandomValue(random, depth + 1);
                }

                return MsgValue.Array(items);
            }

            default:
            {
                var entries = new (string, MsgValue)[random.Next(0, 3)];
                for (var i = 0; i < entries.Length; i++)
                {
                    entries[i] = (RandomText(random) + i, RandomValue(random, depth + 1));
                }

                return MsgValue.Map(entries);
            }
        }
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static string RandomText(Random random)
    {
        var builder = new StringBuilder();
        var length = random.Next(0, 12);
        for (var i = 0; i < length; i++)
        {
            builder.Append(random.Next(4) == 0 ? (char)random.Next(0x80, 0x2000) : (char)random.Next(0x20, 0x7f));
        }

        return builder.Append(random.Next(3) == 0 ? "*" : string.Empty).ToString();
    }

    private static string Base58Like(Random random)
    {
        const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        return new string(Enumerable.Range(0, random.Next(1, 20)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray());
    }
}
