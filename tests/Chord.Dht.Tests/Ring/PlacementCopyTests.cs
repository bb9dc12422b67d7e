using Chord.Dht.Tests.Durability;
using Chord.Dht.Ring;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// Placement copies of register writes come from the proposer, one <c>copies</c> frame per node that keeps them
/// (docs/PROTOCOL-EXTENSIONS.md), and a receiver keeps only positions that are its key's own.
/// </summary>
[Collection(FaultScenarioCollection.Name)]
public sealed class PlacementCopyTests
{
    private const long Copies = 0x37;

    private static MsgValue[] CopiesFrame(byte[] key, MsgValue value, EntryVersion version, params (HashMethod Method, RingPosition Position)[] positions) =>
    [
        Copies, MsgValue.Bin(key), value, version.ToMsgValue(),
        .. positions.SelectMany(p => new[] { MsgValue.BinAscii(p.Method.WireName()), MsgValue.BinAscii(p.Position.ToBase58()) }),
    ];

    [Fact]
    public async Task A_writer_that_owns_no_position_of_the_key_still_leaves_copies_of_the_big_owners_positions_on_its_predecessor()
    {
        await using var cluster = await RingTestCluster.StartAsync(6);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(cluster);
        var positions = KeyHashes.All(RingNode.KeyBytes(key));
        var writer = cluster.Nodes.First(n => n != owner && n.Id != owner.Prev!.Id && KeyHashes.Methods.All(m => owner.Find(positions[(int)m])!.Id != n.Id));
        await writer.SetAsync(key, "first");
        await writer.SetAsync(key, "second"); // a one-round write of the sticky proposer

        var predecessor = cluster.Nodes.Single(n => n.Id == owner.Prev!.Id);
        var ownedByOwner = KeyHashes.Methods.Where(m => owner.Find(positions[(int)m])!.Id == owner.Id).ToList();
        Assert.True(ownedByOwner.Count >= 3);
        await Eventually.UntilAsync(
            () => ownedByOwner.All(m => predecessor.PeekLocalForTest(m, positions[(int)m])?.Value == MsgValue.Str("second")),
            TimeSpan.FromSeconds(30), "the predecessor to hold copies of the second write at each of the owner's positions");
        Assert.True(cluster.Nodes.Sum(n => n.GetStatistics().PlacementCopies) >= 2 * ownedByOwner.Count);
    }

    [Fact]
    public async Task A_writer_that_keeps_the_copies_itself_holds_them_when_its_write_returns()
    {
        // Copies to this node or to connected peers are applied or queued on the writer's path, not by a background
        // task that may run after the write returned.
        await using var cluster = await RingTestCluster.StartAsync(6);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(cluster);
        var positions = KeyHashes.All(RingNode.KeyBytes(key));
        var predecessor = cluster.Nodes.Single(n => n.Id == owner.Prev!.Id);
        var ownedByOwner = KeyHashes.Methods.Where(m => owner.Find(positions[(int)m])!.Id == owner.Id).ToList();
        Assert.True(ownedByOwner.Count >= 3);

        await predecessor.SetAsync(key, "kept by the writer");

        Assert.All(ownedByOwner, m => Assert.Equal(MsgValue.Str("kept by the writer"), predecessor.PeekLocalForTest(m, positions[(int)m])?.Value));
    }

    [Fact]
    public async Task A_client_node_that_writes_and_stops_at_once_still_leaves_the_copies_of_its_write()
    {
        await using var cluster = await RingTestCluster.StartAsync(6);
        var (key, owner) = RingTestKeys.WithThreePositionsOnOneNode(cluster);
        var client = cluster.Remove(await cluster.AddNodeAsync(join: false)); // connected, not storing: a one-shot `chord set`
        await Eventually.UntilAsync(() => client.Members.Count(m => m.IsStoring) == 6, "the client to learn the ring");
        await client.SetAsync(key, "from a client");
        await client.DisposeAsync();

        var positions = KeyHashes.All(RingNode.KeyBytes(key));
        var predecessor = cluster.Nodes.Single(n => n.Id == owner.Prev!.Id);
        var ownedByOwner = KeyHashes.Methods.Where(m => owner.Find(positions[(int)m])!.Id == owner.Id).ToList();
        await Eventually.UntilAsync(
            () => ownedByOwner.All(m => predecessor.PeekLocalForTest(m, positions[(int)m])?.Value == MsgValue.Str("from a client")),
            TimeSpan.FromSeconds(30), "the predecessor to hold copies of the client's write");
    }

    [Fact]
    public async Task A_copies_frame_is_kept_only_for_the_keys_own_positions_and_one_naming_another_position_is_refused_whole()
    {
        var logs = new LogCapture();
        await using var node = new RingNode(new RingOptions(), logs);
        await node.StartAsync();
        await node.JoinAsync();
        await using var raw = await RawPeer.ConnectAsync(node.Mesh.Address);
        await raw.AuthenticatedHandshakeAsync(node.Mesh);

        var key = RingNode.KeyBytes("copied");
        var positions = KeyHashes.All(key);
        var other = KeyHashes.All(RingNode.KeyBytes("another key"));
        var version = new EntryVersion(7, raw.Id);

        // One good position and one of another key's: nothing of the frame is kept.
        await raw.SendMessageAsync(MainFlag.Whisper, CopiesFrame(key, MsgValue.Str("bad"), version,
            (HashMethod.Sha256, positions[(int)HashMethod.Sha256]), (HashMethod.Sha384, other[(int)HashMethod.Sha384])));

        // Then a good frame on the same connection (handled after the first): both positions are kept, as copies.
        await raw.SendMessageAsync(MainFlag.Whisper, CopiesFrame(key, MsgValue.Str("good"), version,
            (HashMethod.Sha1, positions[(int)HashMethod.Sha1]), (HashMethod.Sha512, positions[(int)HashMethod.Sha512])));
        await Eventually.UntilAsync(
            () => node.PeekLocalForTest(HashMethod.Sha1, positions[(int)HashMethod.Sha1])?.Value == MsgValue.Str("good")
                && node.PeekLocalForTest(HashMethod.Sha512, positions[(int)HashMethod.Sha512])?.Value == MsgValue.Str("good"),
            "the good copies frame to be kept");
        Assert.Equal(version, node.PeekLocalForTest(HashMethod.Sha1, positions[(int)HashMethod.Sha1])!.Value.Version);
        Assert.Null(node.PeekLocalForTest(HashMethod.Sha256, positions[(int)HashMethod.Sha256]));
        Assert.Null(node.PeekLocalForTest(HashMethod.Sha384, other[(int)HashMethod.Sha384]));
        var refused = logs.AtLeast(LogLevel.Warning).Where(e => e.Text.StartsWith("Refused from", StringComparison.Ordinal)).ToList();
        Assert.Single(refused);
        Assert.Contains("not one of its key's", refused[0].Text, StringComparison.Ordinal);
        Assert.False(raw.IsClosed);
    }

    [Fact]
    public async Task A_node_that_does_not_serve_its_positions_yet_still_keeps_the_copies_sent_to_it()
    {
        // A node that has just (re)joined is the nearest predecessor of its successor: the copies of the successor's
        // positions belong here, for the day the successor crashes, whether or not the fence is answered yet.
        await using var cluster = await RingTestCluster.StartAsync(2, configure: o =>
        {
            o.RequestTimeout = TimeSpan.FromSeconds(2); // how long JoinAsync waits for the fence's answer
            o.AttemptTimeout = TimeSpan.FromMilliseconds(200);
        });
        foreach (var member in cluster.Nodes)
        {
            member.IgnoreFencesForTest = true;
        }

        // Joined only once it knows the members (a node that knows no other storing member serves at once).
        var node = await cluster.AddNodeAsync(join: false);
        await Eventually.UntilAsync(() => node.Members.Count(m => m.IsStoring) == 2, TimeSpan.FromSeconds(30), "the node to learn the ring");
        await node.JoinAsync();
        Assert.False(node.IsServing);
        await using var raw = await RawPeer.ConnectAsync(node.Mesh.Address);
        await raw.AuthenticatedHandshakeAsync(node.Mesh);
        var key = RingNode.KeyBytes("copied before the fence");
        var positions = KeyHashes.All(key);

        await raw.SendMessageAsync(MainFlag.Whisper, CopiesFrame(key, MsgValue.Str("kept"), new EntryVersion(7, raw.Id),
            (HashMethod.Sha224, positions[(int)HashMethod.Sha224])));

        await Eventually.UntilAsync(
            () => node.PeekLocalForTest(HashMethod.Sha224, positions[(int)HashMethod.Sha224])?.Value == MsgValue.Str("kept"),
            TimeSpan.FromSeconds(30), "the node that does not serve yet to keep the copy");
        Assert.False(node.IsServing);
    }
}
