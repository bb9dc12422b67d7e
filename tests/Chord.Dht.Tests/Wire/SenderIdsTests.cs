using System.Text;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

public sealed class SenderIdsTests
{
    [Fact]
    public void A_sender_id_heard_twice_is_the_same_string()
    {
        var id = Encoding.ASCII.GetBytes("6DvbVmahBicYtFuqpntZ42XpZ6nz4ZuxBhHexF1JBYM4ufkBnTbco2efU2katqbqBn" + Guid.NewGuid().ToString("N"));
        // Other tests decode frames with random senders meanwhile, and a full cache is emptied: one of a few tries
        // may straddle that; a cache that never reuses would fail them all.
        var reused = false;
        for (var attempt = 0; attempt < 5 && !reused; attempt++)
        {
            var first = SenderIds.Get(id);
            var second = SenderIds.Get(id.ToArray());
            Assert.Equal(Encoding.ASCII.GetString(id), first);
            reused = ReferenceEquals(first, second);
        }

        Assert.True(reused, "the second read of an id made a new string every time");
    }

    [Fact]
    public void Bytes_outside_ascii_read_as_question_marks_as_before()
    {
        Assert.Equal("a?b", SenderIds.Get([(byte)'a', 0xC3, (byte)'b']));
    }

    [Fact]
    public void Random_ids_from_a_stranger_never_grow_the_cache_past_its_capacity()
    {
        for (var i = 0; i < SenderIds.Capacity * 3; i++)
        {
            var id = Encoding.ASCII.GetBytes($"stranger-{Guid.NewGuid():N}");
            Assert.Equal(Encoding.ASCII.GetString(id), SenderIds.Get(id));
            // Other tests parse frames meanwhile: ids added by threads racing a clear may stand above the capacity by
            // one each, never by a whole second cache.
            Assert.True(SenderIds.Count < 2 * SenderIds.Capacity, $"{SenderIds.Count} ids kept");
        }

        // An id longer than the cache keeps is read, not kept.
        var longId = Encoding.ASCII.GetBytes(new string('x', SenderIds.MaxLength + 1));
        Assert.NotSame(SenderIds.Get(longId), SenderIds.Get(longId));
    }
}
