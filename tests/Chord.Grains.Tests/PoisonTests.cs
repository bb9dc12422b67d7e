using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Tests.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains.Tests;

/// <summary>
/// Issue 13: each poison input a py2p-speaking stranger can send (in the py2p opt-in) at a key's five positions, then
/// an honest write through the key grain, read back through the grain: the honest value wins. The stranger has not
/// authenticated, so its trailing packets are dropped and every one of these is py2p's plain store; the versions,
/// ballots and register messages themselves are sent by a peer with the cluster secret in <see cref="AuthenticatedPoisonTests"/>.
/// </summary>
public sealed class PoisonTests
{
    public static TheoryData<string> Poisons() => ["2^63-1", "negative", "huge writer", "versioned tombstone", "unversioned store"];

    private static MsgValue Version(string poison) => poison switch
    {
        "2^63-1" => MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz")),
        "negative" => MsgValue.Array(-5L, MsgValue.BinAscii("zzzz")),
        "huge writer" => MsgValue.Array(7L, MsgValue.BinAscii(new string('z', 10_000))),
        "versioned tombstone" => new EntryVersion(EntryVersion.MaxCounter, "zzzz").ToMsgValue(),
        _ => MsgValue.Nil,
    };

    [Theory]
    [MemberData(nameof(Poisons))]
    public async Task After_a_poison_input_an_honest_write_through_the_key_grain_wins(string poison)
    {
        await using var chord = await ChordTestCluster.StartAsync(3, allowUnauthenticatedPeers: true);
        await using var hostile = await LegacyPy2pPeer.StartAsync(storing: false);
        foreach (var node in chord.Nodes)
        {
            await hostile.ConnectAsync(node.Node);
        }

        await Eventually.UntilAsync(() => chord.Nodes.All(n => n.Node.Members.Any(m => m.Id == hostile.Id)), "every silo's node to know the py2p peer");
        var key = $"poison-{poison.Replace(' ', '-')}";
        var grain = chord.Grains.GetGrain<IChordKeyGrain>(key);
        await grain.Set("before");

        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        var value = poison == "versioned tombstone" ? MsgValue.Nil : MsgValue.Str("poison");
        foreach (var method in KeyHashes.Methods)
        {
            var owner = chord.Nodes[0].Node.Find(positions[(int)method])!.Id;
            MsgValue[] store = poison == "unversioned store"
                ? [(long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(positions[(int)method].ToBase58()), value]
                : [(long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(positions[(int)method].ToBase58()), value,
                    "forged.1", 1, Version(poison), MsgValue.Bin(keyBytes)];
            await hostile.Mesh.GetPeer(owner)!.WhisperAsync(store);
        }

        await Eventually.UntilAsync(() => KeyHashes.Methods.All(m => chord.Nodes.Any(n => n.Node.PeekLocalForTest(m, positions[(int)m]) is { } held
            && !held.Value.Equals(MsgValue.Str("before")))), "the poison to reach every position");

        await grain.Set("honest");
        Assert.Equal("honest", (await grain.Get())?.AsString());
        foreach (var node in chord.Nodes)
        {
            Assert.Equal("honest", (await node.Node.GetAsync(key)).AsString());
        }
    }
}

/// <summary>
/// Issue 13 from a peer that holds the cluster secret (a node of ours gone wrong, or a stolen secret), against a
/// TestingHost cluster: its trailing packets are read, so its versions, ballots and register messages reach the
/// register. Each poison input at the key's five positions, then an honest write through the key grain, read back
/// through the grain and through every silo's node: the honest value wins.
/// </summary>
public sealed class AuthenticatedPoisonTests(SharedChordCluster fixture) : IClassFixture<SharedChordCluster>
{
    private static readonly EntryVersion Top = new(EntryVersion.HeadroomStart, "zzzz"); // the largest counter a position takes from the wire

    public static TheoryData<string> Poisons() =>
    [
        "store at counter 2^63-1",
        "store at a negative counter",
        "store with a 10 KB writer id",
        "tombstone at counter 2^63-1",
        "tombstone beyond the headroom",
        "tombstone at 2^52",
        "unversioned store",
        "prepare at 2^63-1 and accept at -1",
        "prepare and accept at 2^52",
    ];

    /// <summary>
    /// The messages of one poison for one position, each with the answer its owner must give: true (applied), false
    /// (refused, with a reason), or null for a message without a request id (py2p's form, never answered).
    /// </summary>
    private static List<(MsgValue[] Payload, bool? Applied)> Messages(string poison, HashMethod method, RingPosition position, byte[] key)
    {
        var m = MsgValue.BinAscii(method.WireName());
        var pos = MsgValue.BinAscii(position.ToBase58());
        var k = MsgValue.Bin(key);
        var id = $"{poison.Replace(' ', '-')}-{method}";
        MsgValue[] Store(MsgValue value, MsgValue version) => [(long)SubFlag.Store, m, pos, value, id, 0L, version, k];
        return poison switch
        {
            "store at counter 2^63-1" => [(Store("poison", MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz"))), false)],
            "store at a negative counter" => [(Store("poison", MsgValue.Array(-5L, MsgValue.BinAscii("zzzz"))), false)],
            "store with a 10 KB writer id" => [(Store("poison", MsgValue.Array(7L, MsgValue.BinAscii(new string('z', 10_000)))), false)],
            "tombstone at counter 2^63-1" => [(Store(MsgValue.Nil, MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz"))), false)],
            "tombstone beyond the headroom" => [(Store(MsgValue.Nil, new EntryVersion(EntryVersion.MaxCounter, "zzzz").ToMsgValue()), false)],
            "tombstone at 2^52" => [(Store(MsgValue.Nil, Top.ToMsgValue()), true)],
            "unversioned store" => [([(long)SubFlag.Store, m, pos, "poison"], null)],
            "prepare at 2^63-1 and accept at -1" =>
            [
                ([(long)RingSubFlag.Prepare, m, pos, id + "-prepare", 0L, MsgValue.Array(long.MaxValue, MsgValue.BinAscii("zzzz")), k], false),
                ([(long)RingSubFlag.Accept, m, pos, "poison", id + "-accept", 0L, MsgValue.Array(-1L, MsgValue.BinAscii("zzzz")), Top.ToMsgValue(), k, MsgValue.Nil], false),
            ],
            "prepare and accept at 2^52" =>
            [
                ([(long)RingSubFlag.Prepare, m, pos, id + "-prepare", 0L, Top.ToMsgValue(), k], true),
                ([(long)RingSubFlag.Accept, m, pos, "poison", id + "-accept", 0L, Top.ToMsgValue(), Top.ToMsgValue(), k,
                    new EntryVersion(EntryVersion.HeadroomStart + EntryVersion.HeadroomStep, "zzzz").ToMsgValue()], true),
            ],
            _ => throw new ArgumentOutOfRangeException(nameof(poison), poison, null),
        };
    }

    [Theory]
    [MemberData(nameof(Poisons))]
    public async Task After_a_poison_input_from_a_peer_with_the_cluster_secret_an_honest_write_through_the_key_grain_wins(string poison)
    {
        var chord = fixture.Cluster;
        var key = $"authenticated-poison-{poison.Replace(' ', '-')}";
        var grain = chord.Grains.GetGrain<IChordKeyGrain>(key);
        await grain.Set("before");
        var keyBytes = RingNode.KeyBytes(key);
        var positions = KeyHashes.All(keyBytes);
        await Eventually.UntilAsync(() => KeyHashes.Methods.All(m => chord.Nodes.Any(n => n.Node.PeekLocalForTest(m, positions[(int)m])?.Value == MsgValue.Str("before"))),
            "every position to hold the first write");

        // One peer that knows the cluster secret on each silo's ring node.
        var raws = new Dictionary<string, RawPeer>(StringComparer.Ordinal);
        try
        {
            foreach (var node in chord.Nodes)
            {
                var raw = await RawPeer.ConnectAsync(node.Node.Mesh.Address);
                raws[node.Node.Id] = raw;
                await raw.AuthenticatedHandshakeAsync(node.Node.Mesh);
            }

            // The poison, straight to the owner of every position, one message at a time: each owner applies or
            // refuses it as the range and headroom rules say, and answers every one that carried a request id.
            foreach (var method in KeyHashes.Methods)
            {
                var owner = raws[chord.Nodes[0].Node.Find(positions[(int)method])!.Id];
                foreach (var (payload, applied) in Messages(poison, method, positions[(int)method], keyBytes))
                {
                    await owner.SendMessageAsync(MainFlag.Whisper, payload);
                    if (applied is { } expected)
                    {
                        var id = payload[(int)payload[0].AsInt64() is (int)RingSubFlag.Prepare ? 3 : 4].AsString();
                        var ack = await owner.WaitForAsync(m => m.SubFlagValue == (int)RingSubFlag.Ack && m.Payload[1].AsString() == id, $"the owner's answer to {id}");
                        Assert.True(expected == ack.Message.Payload[3].AsBool(), $"{id}: {ack.Message.Payload[4]}");
                    }
                }
            }

            // A ping after the poison on every connection: its pong comes after every message before it was handled.
            foreach (var raw in raws.Values)
            {
                await raw.SendMessageAsync(MainFlag.Ping, (long)SubFlag.Ping, "after-the-poison");
                await raw.WaitForAsync(m => m.Type == MainFlag.Pong && m.Payload.Length > 1 && m.Payload[1] == MsgValue.Str("after-the-poison"), "the pong after the poison");
            }
        }
        finally
        {
            foreach (var raw in raws.Values)
            {
                await raw.DisposeAsync();
            }
        }

        if (poison == "prepare and accept at 2^52")
        {
            // The poison is the register's value now (accepted at every position under a promise near the top): a
            // read decides on it.
            Assert.Equal("poison", (await grain.Get())?.AsString());
        }

        // The honest write, then reads through the grain and through every silo's node.
        await grain.Set("honest");
        Assert.Equal("honest", (await grain.Get())?.AsString());
        var versioned = await grain.GetVersioned();
        Assert.Equal("honest", versioned.Value?.AsString());
        Assert.Contains(chord.Nodes, n => n.Node.Id == versioned.Version.Writer); // an ETag of ours, not the poison's
        foreach (var node in chord.Nodes)
        {
            Assert.Equal("honest", (await node.Node.GetAsync(key)).AsString());
        }
    }
}
