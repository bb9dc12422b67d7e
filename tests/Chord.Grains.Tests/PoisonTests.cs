using Chord.Dht.Ring;
using Chord.Dht.Tests.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains.Tests;

/// <summary>
/// Issue 13: each poison input a py2p-speaking stranger can send (in the py2p opt-in) at a key's five positions, then
/// an honest write through the key grain, read back through the grain: the honest value wins.
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
