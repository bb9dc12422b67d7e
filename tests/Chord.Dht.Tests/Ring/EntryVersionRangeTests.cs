using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

public sealed class EntryVersionRangeTests
{
    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(EntryVersion.MaxCounter + 1)]
    [InlineData(-1L)]
    public void A_counter_out_of_range_is_refused_on_the_wire(long counter)
    {
        Assert.False(EntryVersion.TryRead(MsgValue.Array(counter, MsgValue.BinAscii("writer")), out _));
    }

    [Fact]
    public void A_huge_writer_id_is_refused_on_the_wire()
    {
        Assert.False(EntryVersion.TryRead(MsgValue.Array(1L, MsgValue.BinAscii(new string('a', EntryVersion.MaxWriterLength + 1))), out _));
        Assert.True(EntryVersion.TryRead(MsgValue.Array(EntryVersion.MaxCounter, MsgValue.BinAscii("writer")), out var top));
        Assert.Equal(EntryVersion.MaxCounter, top.Counter);
    }

    [Fact]
    public void No_version_follows_the_largest_counter()
    {
        var error = Assert.Throws<ChordWriteException>(() => EntryVersion.After(new EntryVersion(EntryVersion.MaxCounter, "w"), "me"));
        Assert.Contains("2^53", error.Message);
        Assert.Equal(new EntryVersion(6, "me"), EntryVersion.After(new EntryVersion(5, "w"), "me"));
    }

    [Fact]
    public void Every_counter_a_position_takes_freely_from_the_wire_has_room_above_it()
    {
        Assert.True(EntryVersion.TryRead(new EntryVersion(EntryVersion.HeadroomStart, "w").ToMsgValue(), out var parked));
        var next = EntryVersion.After(parked, "me");
        Assert.Equal(EntryVersion.HeadroomStart + 1, next.Counter);
        Assert.True(EntryVersion.HeadroomStart + (1L << 51) < EntryVersion.MaxCounter, "2^51 steps of headroom at least");
    }

    [Fact]
    public void A_ballot_that_skips_ahead_stays_below_the_headroom_and_steps_by_one_above_it()
    {
        Assert.Equal(new EntryVersion(9, "me"), EntryVersion.Beyond(new EntryVersion(5, "w"), "me", skip: 3));
        Assert.Equal(new EntryVersion(6, "me"), EntryVersion.Beyond(new EntryVersion(5, "w"), "me", skip: 0));

        // Skipping would pass the headroom start, where owners take steps of HeadroomStep only: one step, as After.
        var near = new EntryVersion(EntryVersion.HeadroomStart - 2, "w");
        Assert.Equal(EntryVersion.After(near, "me"), EntryVersion.Beyond(near, "me", skip: 16));
        var above = new EntryVersion(EntryVersion.HeadroomStart + 10, "w");
        Assert.Equal(EntryVersion.After(above, "me"), EntryVersion.Beyond(above, "me", skip: 16));
        Assert.Throws<ChordWriteException>(() => EntryVersion.Beyond(new EntryVersion(EntryVersion.MaxCounter, "w"), "me", skip: 4));
    }
}
