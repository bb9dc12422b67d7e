using Chord.Dht.Ring;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The entries of our batch answers (acks, values) are checked when their frame arrives but read where they lie, not as
/// a value tree: a malformed one is refused as the tree's reader refuses it, and every entry reads as the tree's reader
/// reads it, well-formed or not.
/// </summary>
public class InPlaceEntriesTests
{
    private const string Sender = "2BCfULWozG8qgmVKUz883RtUESNdL9";

    private static readonly MsgValue Version = new EntryVersion(7, Sender).ToMsgValue();

    /// <summary>Entry shapes: well-formed, and each way one can be off that the readers tell apart.</summary>
    private static readonly MsgValue[] AckEntries =
    [
        MsgValue.Array(true, MsgValue.True, Version, Version, new EntryVersion(8, "w").ToMsgValue(), false),
        MsgValue.Array(false, "the owner holds or promised a newer version", Version, MsgValue.Nil, Version, true),
        MsgValue.Array(false, 17L, MsgValue.Nil, MsgValue.Nil, MsgValue.Nil, "not a bool"), // a reason that is not a str, an is_copy that is not a bool
        MsgValue.Array(true, MsgValue.Map(("a", 1L)), Version, Version, Version, false, "extra", MsgValue.Array(1L)), // items after the six
        MsgValue.Array(true, MsgValue.Nil, Version, Version, Version), // five items: malformed
        MsgValue.Array("yes", MsgValue.Nil, Version, Version, Version, false), // ok not a bool: malformed
        MsgValue.Nil,
        "not an array",
        MsgValue.Array(true, MsgValue.Nil, MsgValue.Array(-1L, MsgValue.Bin([1])), MsgValue.Array(EntryVersion.MaxCounter + 1, MsgValue.Bin([1])),
            MsgValue.Array(1L, MsgValue.Bin(new byte[EntryVersion.MaxWriterLength + 1])), false), // versions out of range
        MsgValue.Array(true, MsgValue.Nil, MsgValue.Array(1L), MsgValue.Array(1L, "str writer"), MsgValue.Array("1", MsgValue.Bin([65]), 3L), false), // wrong shapes
        MsgValue.Array(true, MsgValue.Nil, MsgValue.Array(MsgValue.From(ulong.MaxValue), MsgValue.Bin([65])), Version, Version, false), // a uint64 counter
    ];

    private static readonly MsgValue[] ValueEntries =
    [
        MsgValue.Array(MsgValue.Bin([1, 2, 3]), Version, Version, false),
        MsgValue.Array(MsgValue.Nil, MsgValue.Nil, MsgValue.Nil, true),
        MsgValue.Array(MsgValue.Map(("k", MsgValue.Array(1L, "two"))), Version, new EntryVersion(9, "x").ToMsgValue(), 5L, "extra"),
        MsgValue.Array("value", Version, Version), // three items: malformed
        MsgValue.Nil,
        MsgValue.Bin([9]),
        MsgValue.Array(MsgValue.Array(MsgValue.Array(MsgValue.Array())), MsgValue.Array(2L, MsgValue.Bin([66]), 3L), MsgValue.Array(), MsgValue.Nil),
    ];

    public static TheoryData<int> Kinds => [(int)RingSubFlag.Acks, (int)RingSubFlag.Values];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_entry_read_in_place_reads_as_the_value_tree_reader_reads_it(int kind)
    {
        Message.ReadInPlace(kind, 3); // as a ring node sets it
        var entries = kind == (int)RingSubFlag.Acks ? AckEntries : ValueEntries;
        var received = Receive(kind, MsgValue.Array(entries));

        Assert.NotNull(received.Payload[3].PreEncoded); // kept as its bytes
        Assert.Equal(MsgValue.Array(entries), received.Payload[3]); // and still reads as the array it is
        var tree = RingNode.DescribeEntriesForTest(MsgValue.Array(entries), entries.Length, (RingSubFlag)kind);
        var inPlace = RingNode.DescribeEntriesForTest(received.Payload[3], entries.Length, (RingSubFlag)kind);
        Assert.NotNull(tree);
        Assert.Equal(tree, inPlace);
        Assert.Contains(tree!, t => t == "none"); // the malformed shapes are there, read as no answer
        Assert.Contains(tree!, t => t != "none");

        // A count other than the batch's is a malformed answer either way.
        Assert.Null(RingNode.DescribeEntriesForTest(received.Payload[3], entries.Length + 1, (RingSubFlag)kind));
        Assert.Null(RingNode.DescribeEntriesForTest(MsgValue.Array(entries), entries.Length + 1, (RingSubFlag)kind));
    }

    [Fact]
    public void A_malformed_entries_packet_is_refused_when_its_frame_is_read_as_a_value_tree_would_be()
    {
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
        byte[][] packets =
        [
            [0x91, 0xA2, 0xC3, 0x28], // a str that is not UTF-8
            [0x92, 0x01], // an array that announces more items than follow
            [0x91, 0xC1], // a byte that starts no msgpack value
            [.. Enumerable.Repeat((byte)0x91, MsgPack.MaxDepth + 1), 0xC0], // nested deeper than allowed
            [0xDD, 0x80, 0x00, 0x00, 0x00], // an array 32 of 2^31 items (the reader's count turns negative)
            [0x91, 0xDF, 0xFF, 0xFF, 0xFF, 0xFF], // a map 32 of 2^32-1 entries inside
            [0x91, 0xDF, 0x40, 0x00, 0x00, 0x00], // a map 32 of 2^30 entries (twice that overflows an int)
        ];
        foreach (var packet in packets)
        {
            var inPlace = Assert.Throws<MsgFormatException>(() => Parse((int)RingSubFlag.Values, packet));
            var asTree = Assert.Throws<MsgFormatException>(() => Parse((int)RingSubFlag.Retrieves, packet)); // a flag read as a tree
            Assert.Equal(asTree.Message, inPlace.Message);
        }
    }

    [Fact]
    public void Any_bytes_are_refused_in_place_exactly_when_a_value_tree_would_refuse_them_and_read_the_same_otherwise()
    {
        // Random values, and the same with a byte changed or cut off: the check made in place and the tree's reader
        // agree on every one (same error, or the same array).
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
        var packets = Gen.Select(Tests.Wire.WireGen.Value, Gen.Int[0, 1000], Gen.Byte, Gen.Int[0, 3], (value, at, b, how) =>
        {
            var bytes = MsgPack.Serialize(MsgValue.Array(value, value));
            return how switch
            {
                0 => bytes,
                1 => bytes.Select((x, i) => i == at % bytes.Length ? b : x).ToArray(),
                2 => bytes[..(at % bytes.Length)],
                _ => [0x92, .. bytes, b],
            };
        });
        packets.Sample(packet =>
        {
            Message? inPlace = null, asTree = null;
            var inPlaceError = Record.Exception(() => inPlace = Parse((int)RingSubFlag.Values, packet));
            var treeError = Record.Exception(() => asTree = Parse((int)RingSubFlag.Retrieves, packet));
            Assert.Equal(treeError?.GetType(), inPlaceError?.GetType());
            Assert.Equal(treeError?.Message, inPlaceError?.Message);
            if (asTree is not null)
            {
                Assert.Equal(asTree.Payload[3], inPlace!.Payload[3]);
            }
        }, iter: 2_000);
    }

    [Fact]
    public void An_entries_packet_kept_for_long_holds_its_own_bytes_not_its_whole_frame()
    {
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
        var received = Receive((int)RingSubFlag.Values, MsgValue.Array(ValueEntries), MsgValue.Bin(new byte[256 * 1024]));
        var inFrame = received.Payload[3];
        var kept = inFrame.Detached();

        Assert.Equal(inFrame, kept);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(kept.PreEncoded!.Value, out var own));
        Assert.Equal(own.Array!.Length, own.Count); // an array of its own, exactly its bytes
        Assert.Equal(MsgPack.Serialize(MsgValue.Array(ValueEntries)).Length, own.Count);
    }

    [Fact]
    public void A_whisper_whose_sub_flag_is_cut_off_is_a_malformed_frame()
    {
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
        var bytes = Message.Create(MainFlag.Whisper, Sender, 1_700_000_000, 0L).Packed.ToArray();
        bytes[^1] = 0xCD; // p0 a uint 16 whose two bytes never come
        Assert.Equal("Truncated msgpack value.", Assert.Throws<MsgFormatException>(() => Message.Parse(bytes, null)).Message);
    }

    [Fact]
    public void Other_sub_flags_and_other_packets_are_read_as_value_trees()
    {
        Message.ReadInPlace((int)RingSubFlag.Values, 3);
        var entries = MsgValue.Array(ValueEntries);
        Assert.Null(Receive((int)RingSubFlag.Retrieves, entries).Payload[3].PreEncoded);
        var values = Receive((int)RingSubFlag.Values, entries, MsgValue.Array(1L));
        Assert.NotNull(values.Payload[3].PreEncoded);
        Assert.Null(values.Payload[4].PreEncoded);
        Assert.Null(Receive((int)RingSubFlag.Values, "not an array").Payload[3].PreEncoded);
    }

    private static Message Receive(int kind, params MsgValue[] packets) =>
        Message.Parse(Message.Create(MainFlag.Whisper, Sender, 1_700_000_000, [kind, "request", 0L, .. packets]).Packed.ToArray(), null);

    /// <summary>A whisper [kind, "request", 0, packet] whose last packet is given as raw bytes.</summary>
    private static Message Parse(int kind, byte[] packet)
    {
        var head = Message.Create(MainFlag.Whisper, Sender, 1_700_000_000, kind, "request", 0L, MsgValue.Nil).Packed.ToArray();
        head[0]++; // the message array's fixarray header counts the packet below instead of the nil at its end
        var bytes = head[..^1].Concat(packet).ToArray();
        return Message.Parse(bytes, null);
    }
}
