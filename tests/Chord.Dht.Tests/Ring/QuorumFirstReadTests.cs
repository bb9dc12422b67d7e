using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// Reads of register keys ask a read quorum of positions first (<see cref="RingOptions.ReadHedgeAfter"/>) and the
/// other two only when those do not decide the read, or not in time.
/// </summary>
[Collection(FaultScenarioCollection.Name)]
public sealed class QuorumFirstReadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_read_whose_first_three_positions_agree_asks_no_other_position()
    {
        // A hedge far beyond any answer time here, so that only the answers decide whether the read widens.
        var (ring, storing, client, key) = await StartWithWrittenKeyAsync("agreed", "v", firstAsked: 3);
        await using var _ = ring;

        var answeredBefore = storing.Sum(n => n.GetStatistics().RetrievesAnswered);
        var widenedBefore = client.GetStatistics().ReadsWidened;
        Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key));

        Assert.Equal(widenedBefore, client.GetStatistics().ReadsWidened);
        Assert.Equal(3, storing.Sum(n => n.GetStatistics().RetrievesAnswered) - answeredBefore);
    }

    [Fact]
    public async Task A_read_whose_first_positions_disagree_asks_the_other_two_and_returns_the_committed_value()
    {
        var (ring, storing, client, key) = await StartWithWrittenKeyAsync("lagging", "v", firstAsked: 3);
        await using var _ = ring;

        // The owner of one of the three positions the client asks first loses its entry.
        var method = client.FirstAskedForTest(key)[0];
        var position = KeyHashes.Position(method, RingNode.KeyBytes(key));
        OwnerOf(storing, position).RemoveLocalForTest(method, position);

        // The hedge is minutes away: only the three answers can widen the read within the test's patience.
        var widenedBefore = client.GetStatistics().ReadsWidened;
        using var patience = new CancellationTokenSource(Patience);
        Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key, patience.Token));
        Assert.Equal(widenedBefore + 1, client.GetStatistics().ReadsWidened);
    }

    [Fact]
    public async Task A_read_whose_first_position_owner_is_frozen_asks_the_others_after_the_hedge_time()
    {
        var (ring, storing, client) = await StartFreezableWithPatientClientAsync();
        await using var _ = ring;

        // A key one of whose first-asked positions is on a node that holds no other of its positions, so that the
        // other four decide without it.
        var ids = storing.Select(n => n.Id).ToList();
        var (key, method) = Enumerable.Range(0, 10_000).Select(i => $"hedged-{i}")
            .Select(k => (Key: k, Method: client.FirstAskedForTest(k).Cast<HashMethod?>().FirstOrDefault(m =>
                RingTestData.PositionsOwnedBy(ids, k, RingTestData.OwnerOf(ids, RingTestData.Positions(k)[(int)m!.Value])) == 1)))
            .First(c => c.Method is not null);
        await ring.Nodes[0].SetAsync(key, "v");
        await WaitUntilEveryPositionHoldsAsync(storing, key, "v");

        var frozen = OwnerOf(storing, KeyHashes.Position(method!.Value, RingNode.KeyBytes(key)));
        var widenedBefore = client.GetStatistics().ReadsWidened;
        ring.FreezableOf(frozen).Freeze();
        try
        {
            using var patience = new CancellationTokenSource(Patience);
            Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key, patience.Token));
            Assert.Equal(widenedBefore + 1, client.GetStatistics().ReadsWidened);
        }
        finally
        {
            ring.FreezableOf(frozen).Thaw();
        }
    }

    [Fact]
    public async Task A_read_of_a_key_on_two_nodes_one_of_them_frozen_settles_within_the_position_deadline()
    {
        var (ring, storing, client) = await StartFreezableWithPatientClientAsync();
        await using var _ = ring;

        // A key whose sha1 owner holds only that position and whose other four positions are all on one other node:
        // with the sha1 owner frozen, the four answers come from one node, short of the two a read decides on.
        var ids = storing.Select(n => n.Id).ToList();
        var key = Enumerable.Range(0, 200_000).Select(i => $"two-nodes-{i}").First(k =>
        {
            var owners = RingTestData.Positions(k).Select(p => RingTestData.OwnerOf(ids, p)).ToList();
            return owners.Skip(1).Distinct().Count() == 1 && owners[1] != owners[0];
        });
        await ring.Nodes[0].SetAsync(key, "v");
        await WaitUntilEveryPositionHoldsAsync(storing, key, "v");

        var frozen = OwnerOf(storing, KeyHashes.Position(HashMethod.Sha1, RingNode.KeyBytes(key)));
        ring.FreezableOf(frozen).Freeze();
        try
        {
            using var patience = new CancellationTokenSource(Patience);
            Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key, patience.Token));
        }
        finally
        {
            ring.FreezableOf(frozen).Thaw();
        }
    }

    [Fact]
    public async Task An_entry_repair_restored_decides_no_read_until_a_proposer_accepts_it_and_the_read_confirms_it()
    {
        var (ring, storing, client, key) = await StartWithWrittenKeyAsync("restored", "v", firstAsked: 3);
        await using var _ = ring;

        // The owner of one of the three positions the client asks first loses its entry; anti-entropy brings it back
        // as a versioned store: a restored entry, a hint.
        var method = client.FirstAskedForTest(key)[0];
        var position = KeyHashes.Position(method, RingNode.KeyBytes(key));
        var owner = OwnerOf(storing, position);
        owner.RemoveLocalForTest(method, position);
        await Eventually.UntilAsync(async () =>
        {
            foreach (var node in storing)
            {
                await node.RunAntiEntropyAsync();
            }

            return owner.PeekLocalForTest(method, position)?.Value == MsgValue.Str("v");
        }, Patience, "anti-entropy to restore the position");
        Assert.EndsWith("(restored)", owner.DescribeLocalForTest(method, position), StringComparison.Ordinal);

        // The restored answer among the first three does not count, so the read asks all five, returns the value four
        // positions hold, and commits it again in the background.
        var widenedBefore = client.GetStatistics().ReadsWidened;
        using var patience = new CancellationTokenSource(Patience);
        Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key, patience.Token));
        Assert.Equal(widenedBefore + 1, client.GetStatistics().ReadsWidened);
        await Eventually.UntilAsync(() => !owner.DescribeLocalForTest(method, position).EndsWith("(restored)", StringComparison.Ordinal),
            Patience, "the read's background commit to make the restored entry acceptor state");

        // Confirmed: the next read decides on its first three.
        Assert.Equal(MsgValue.Str("v"), await client.GetAsync(key, patience.Token));
        Assert.Equal(widenedBefore + 1, client.GetStatistics().ReadsWidened);
    }

    [Fact]
    public void The_hedge_time_must_be_zero_or_shorter_than_the_request_timeout()
    {
        new RingOptions { ReadHedgeAfter = TimeSpan.Zero }.Validate();
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => new RingOptions { ReadHedgeAfter = TimeSpan.FromMilliseconds(-1) }.Validate());
        Assert.Contains("ReadHedgeAfter", negative.Message, StringComparison.Ordinal);
        var tooLong = Assert.Throws<ArgumentOutOfRangeException>(() => new RingOptions { ReadHedgeAfter = TimeSpan.FromSeconds(10) }.Validate());
        Assert.Contains("shorter than RequestTimeout", tooLong.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Five freezable in-memory storing nodes and a client that owns nothing and neither retries nor suspects within a
    /// test's patience (only the hedge, or the read's own capped wait, moves its read on).
    /// </summary>
    private static async Task<(RingTestCluster Ring, List<RingNode> Storing, RingNode Client)> StartFreezableWithPatientClientAsync()
    {
        var ring = await RingTestCluster.StartAsync(5, inMemory: true, freezable: true, configure: o => o.RequestTimeout = TimeSpan.FromSeconds(30));
        try
        {
            var storing = ring.Nodes.ToList();
            var client = await ring.AddNodeAsync(join: false, configure: o =>
            {
                o.RequestTimeout = TimeSpan.FromMinutes(5);
                o.AttemptTimeout = TimeSpan.FromMinutes(2);
                o.SuspectAfter = TimeSpan.FromMinutes(2);
            });
            await ring.WaitUntilConvergedAsync();
            return (ring, storing, client);
        }
        catch
        {
            await ring.DisposeAsync(); // the caller never gets it to dispose
            throw;
        }
    }

    /// <summary>
    /// Five storing nodes and a client that owns nothing, all with <see cref="NoHedge"/>, and a key (<paramref name="prefix"/>
    /// and a number) whose read from the client asks <paramref name="firstAsked"/> positions first (the layout decides:
    /// a node's positions are asked together), written and held as acceptor state at every position.
    /// </summary>
    private static async Task<(RingTestCluster Ring, List<RingNode> Storing, RingNode Client, string Key)> StartWithWrittenKeyAsync(string prefix, string value, int firstAsked)
    {
        var ring = await RingTestCluster.StartAsync(5, configure: NoHedge);
        try
        {
            var storing = ring.Nodes.ToList();
            var client = await ring.AddNodeAsync(join: false, configure: NoHedge);
            await ring.WaitUntilConvergedAsync();
            var key = Enumerable.Range(0, 10_000).Select(i => $"{prefix}-{i}").First(k => client.FirstAskedForTest(k).Length == firstAsked);
            await ring.Nodes[0].SetAsync(key, value);
            await WaitUntilEveryPositionHoldsAsync(storing, key, value);
            return (ring, storing, client, key);
        }
        catch
        {
            await ring.DisposeAsync(); // the caller never gets it to dispose
            throw;
        }
    }

    /// <summary>
    /// A hedge minutes away and no anti-entropy sweep during the test (its reads would count as answered retrieves):
    /// only the answers decide whether a read widens.
    /// </summary>
    private static void NoHedge(RingOptions o)
    {
        o.RequestTimeout = TimeSpan.FromMinutes(5);
        o.ReadHedgeAfter = TimeSpan.FromMinutes(4);
        o.AntiEntropyInterval = TimeSpan.FromHours(1);
    }

    private static RingNode OwnerOf(IReadOnlyList<RingNode> storing, RingPosition position)
    {
        var id = RingTestData.OwnerOf(storing.Select(n => n.Id), position);
        return storing.Single(n => n.Id == id);
    }

    /// <summary>Waits until the owner of every position holds the value as its own acceptor state (accepts after the quorum arrive late).</summary>
    private static Task WaitUntilEveryPositionHoldsAsync(IReadOnlyList<RingNode> storing, string key, string value) =>
        Eventually.UntilAsync(() => KeyHashes.Methods.All(m =>
        {
            var position = KeyHashes.Position(m, RingNode.KeyBytes(key));
            var owner = OwnerOf(storing, position);
            return owner.PeekLocalForTest(m, position)?.Value == MsgValue.Str(value) && !owner.DescribeLocalForTest(m, position).EndsWith("(copy)", StringComparison.Ordinal);
        }), Patience, $"every position of {key} to hold {value}");
}
