using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// An accept whose first attempt was taken and whose answer was lost, asked again after the position moved on, is
/// refused the second time: that refusal says nothing about the first attempt. The whole-ring simulation's crash
/// profile found the history it made (seed 9041): a delete taken at one position, its answer lost, recovered there by
/// another proposer's compare-and-set, then applied a second time by its own proposer after later writes.
/// </summary>
public class ResentAcceptTests
{
    [Fact]
    public async Task A_plain_write_whose_accept_was_taken_unanswered_and_refused_when_resent_reports_that_it_may_have_been_applied()
    {
        await using var ring = await RingTestCluster.StartAsync(5, inMemory: true, configure: o =>
        {
            o.AttemptTimeout = TimeSpan.FromMilliseconds(300); // the resend comes within the round's position deadline (1 s)
            o.RequestTimeout = TimeSpan.FromSeconds(20);
        });
        // The held position's owner holds no other position of the key: holding its handling of b's requests holds
        // only that one (b's requests to a node arrive on one connection, in order).
        var method = HashMethod.Sha256;
        string OwnerAt(string k, HashMethod m) => ring.Nodes[0].Find(KeyHashes.Position(m, RingNode.KeyBytes(k)))!.Id;
        var key = Enumerable.Range(0, 1_000).Select(i => $"resent-accept-{i}")
            .First(k => KeyHashes.Methods.Count(m => OwnerAt(k, m) == OwnerAt(k, method)) == 1);
        var bytes = RingNode.KeyBytes(key);
        var position = KeyHashes.Position(method, bytes);
        var owner = ring.Nodes.Single(n => n.Id == OwnerAt(key, method));
        // b's id above a's: b's ballot then beats the promise a's accept leaves at the held position (3@a: a wrote
        // under 1@a asking for 2@a, its next write goes under 2@a asking for 3@a; b prepares 3@b, having seen 2@a), so
        // that the position moves on to b before a's accept is sent again. Ballots of one counter order by writer id.
        var (a, b) = ring.Nodes.Where(n => n != owner).OrderBy(n => n.Id, StringComparer.Ordinal).Take(2).ToArray() switch
        {
            [var first, var second] => (first, second),
            _ => throw new InvalidOperationException("five nodes have four besides the owner"),
        };

        await a.SetAsync(key, "v1"); // a's next write of the key is one round, under the ballot every position promised it

        // b writes while the owner's handling of b's requests at the position is held: every other position promises
        // b's ballot and takes its value; this one still holds a's promise.
        using var bHeld = new ManualResetEventSlim();
        using var releaseB = new ManualResetEventSlim();
        var armed = 1;
        owner.HoldApplyForTest = (m, p) =>
        {
            if (m == method && p == position && Interlocked.Exchange(ref armed, 0) == 1)
            {
                bHeld.Set();
                releaseB.Wait(TimeSpan.FromSeconds(60));
            }
        };
        var bWrite = Task.Run(() => b.SetAsync(key, "b1"));
        Assert.True(await Task.Run(() => bHeld.Wait(TimeSpan.FromSeconds(30))), "b's prepare never reached the held position");
        await bWrite;

        // a's one-round accept: refused at the four positions that promised b, taken at the held one, whose answer is
        // lost; then b's requests there go through (the position moves on to b's ballot) before a's resend arrives.
        var dropped = 0;
        owner.DropAckForTest = (m, p) =>
        {
            if (m != method || p != position || Interlocked.Exchange(ref dropped, 1) != 0)
            {
                return false;
            }

            releaseB.Set();
            return true;
        };
        var failure = await Assert.ThrowsAsync<ChordWriteException>(() => a.SetAsync(key, "a1"));

        Assert.Equal(1, Volatile.Read(ref dropped));
        Assert.Contains("may or may not", failure.Message, StringComparison.Ordinal);
    }
}
