using System.Buffers;
using System.Runtime.InteropServices;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// The bins of a received message are slices of the message's own bytes (no copy per bin), and behave exactly as
/// copies would; what a node keeps for long (<see cref="MsgValue.Detached"/>) holds copies of small ones, not the frame.
/// </summary>
public class MsgValueSliceTests
{
    private const string Sender = "2BCfULWozG8qgmVKUz883RtUESNdL9";

    /// <summary>Encodes <paramref name="payload"/> as one frame and decodes it as a node's read loop does.</summary>
    internal static Message RoundTrip(params MsgValue[] payload)
    {
        var frame = FrameCodec.Encode(Message.Create(MainFlag.Whisper, Sender, 1_700_000_000, payload));
        return FrameCodec.DecodeBody(new ReadOnlySequence<byte>(frame, FrameCodec.HeaderLength, frame.Length - FrameCodec.HeaderLength), []);
    }

    private static bool IsWholeArray(ReadOnlyMemory<byte> bytes) =>
        MemoryMarshal.TryGetArray(bytes, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length;

    [Fact]
    public void A_received_bin_is_a_slice_of_the_message_bytes_and_equal_to_a_copy()
    {
        var position = Enumerable.Range(1, 48).Select(i => (byte)i).ToArray();
        var received = RoundTrip(17L, MsgValue.Bin(position), MsgValue.Array(MsgValue.BinAscii("abc"), MsgValue.Map(("k", MsgValue.Bin([9, 8, 7])))));

        var bin = received.Payload[1];
        Assert.True(MemoryMarshal.TryGetArray(bin.AsBytes(), out var segment));
        Assert.True(MemoryMarshal.TryGetArray(received.Packed, out var packed));
        Assert.Same(packed.Array, segment.Array); // no copy: the bin points into the message's bytes
        Assert.Equal(48, segment.Count);

        var copy = MsgValue.Bin(position);
        Assert.Equal(copy, bin);
        Assert.Equal(bin, copy);
        Assert.Equal(copy.GetHashCode(), bin.GetHashCode());
        Assert.Equal(copy.ToString(), bin.ToString());
        Assert.Equal(position, bin.AsBytes().ToArray());
        Assert.Equal("abc", received.Payload[2].AsArray()[0].AsAscii());
        Assert.Equal(MsgValue.Map(("k", MsgValue.Bin([9, 8, 7]))), received.Payload[2].AsArray()[1]);

        // Sent on again, the slices encode exactly as the copies did.
        var again = Message.Create(MainFlag.Whisper, Sender, 1_700_000_000, [.. received.Payload]);
        Assert.Equal(received.Packed.ToArray(), again.Packed.ToArray());
    }

    [Fact]
    public void Detached_copies_every_small_sliced_bin_of_a_large_frame_out_and_leaves_a_value_without_slices_as_it_is()
    {
        var filler = MsgValue.Bin(new byte[MsgValue.KeptFrameLength]); // the frame is larger than one worth keeping
        var received = RoundTrip(MsgValue.Array(MsgValue.Bin([1, 2, 3]), MsgValue.Map(new KeyValuePair<MsgValue, MsgValue>[] { new(MsgValue.Bin([4]), MsgValue.Array(MsgValue.Bin([5, 6]), 7L)) })), filler);
        var value = received.Payload[0];
        Assert.False(IsWholeArray(value.AsArray()[0].AsBytes()));

        var detached = value.Detached();
        Assert.Equal(value, detached);
        Assert.True(IsWholeArray(detached.AsArray()[0].AsBytes()));
        var (key, inner) = detached.AsArray()[1].AsMap()[0];
        Assert.True(IsWholeArray(key.AsBytes()));
        Assert.True(IsWholeArray(inner.AsArray()[0].AsBytes()));

        Assert.Same(detached, detached.Detached());
        var made = MsgValue.Array(MsgValue.Bin([1]), MsgValue.Str("x"));
        Assert.Same(made, made.Detached());
    }

    [Fact]
    public void Detached_keeps_the_slices_of_a_small_frame_as_they_are()
    {
        var received = RoundTrip(MsgValue.Map(("state", MsgValue.Bin([1, 2, 3])), ("name", "x"))).Payload[0];
        Assert.False(IsWholeArray(received.AsMap()[0].Value.AsBytes()));

        Assert.Same(received, received.Detached()); // a copy would allocate about what the small frame holds
    }

    [Fact]
    public void Detached_keeps_a_bin_that_is_most_of_its_frame_as_it_is()
    {
        var large = RoundTrip(MsgValue.Bin(Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray())).Payload[0];
        Assert.False(IsWholeArray(large.AsBytes())); // a slice of the frame, whose header and digest it does not cover

        var detached = large.Detached();

        Assert.Same(large, detached); // a copy would free at most the frame's header bytes and cost 4 KiB
        Assert.Equal(4096, detached.AsBytes().Length);
    }

    [Fact]
    public void Any_value_received_in_a_message_equals_what_was_sent_and_so_does_its_detached_copy()
    {
        WireGen.Value.Sample(value =>
        {
            var received = RoundTrip(3L, value).Payload[1];
            var detached = received.Detached();
            return received.Equals(value) && value.Equals(received) && received.GetHashCode() == value.GetHashCode()
                && detached.Equals(value) && detached.GetHashCode() == value.GetHashCode()
                && MsgPack.Serialize(received).AsSpan().SequenceEqual(MsgPack.Serialize(value));
        });
    }
}
