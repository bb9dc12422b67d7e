using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// Arrays a node builds only to send (a batch answer's entries) are encoded straight into msgpack: they must go out as
/// the same bytes the value tree would, and still read as that array.
/// </summary>
public class PreEncodedArrayTests
{
    private static readonly EntryVersion[] Versions =
        [new(0, ""), new(1, "2BCfULWozG8qgmVKUz883RtUESNdL9"), new(127, "w"), new(128, "w"), new(65_536, "writer"), new(EntryVersion.MaxCounter, new string('z', 64))];

    [Fact]
    public void A_pre_encoded_array_packs_to_its_bytes_reads_as_its_items_and_equals_the_same_tree()
    {
        var tree = MsgValue.Array(1L, "two", MsgValue.Bin([3, 4]), MsgValue.Array(MsgValue.Nil, true), MsgValue.Map(("k", 5L)));
        var bytes = MsgPack.Serialize(tree);
        var pre = MsgValue.PreEncodedArray(bytes);

        Assert.Equal(MsgKind.Array, pre.Kind);
        Assert.Equal(bytes, MsgPack.Serialize(pre));
        Assert.Equal(tree.Count, pre.Count);
        Assert.Equal<MsgValue>([.. tree.AsArray()], [.. pre.AsArray()]);
        Assert.Equal(tree, pre);
        Assert.Equal(tree.GetHashCode(), pre.GetHashCode());
        Assert.Equal(tree.ToString(), pre.ToString());

        // Inside a message, as a batch answer carries it: the frame is the tree's frame.
        var sender = "2BCfULWozG8qgmVKUz883RtUESNdL9";
        Assert.Equal(
            Message.Create(MainFlag.Whisper, sender, 1_700_000_000, 61L, "req", 0L, tree).Packed.ToArray(),
            Message.Create(MainFlag.Whisper, sender, 1_700_000_000, 61L, "req", 0L, pre).Packed.ToArray());
    }

    [Fact]
    public void A_version_is_written_as_the_bytes_of_its_value_form()
    {
        foreach (var version in Versions)
        {
            Assert.Equal(MsgPack.Serialize(version.ToMsgValue()), Pack((ref MessagePack.MessagePackWriter w) => EntryVersion.Write(ref w, version)));
        }

        Assert.Equal(MsgPack.Serialize(MsgValue.Nil), Pack((ref MessagePack.MessagePackWriter w) => EntryVersion.Write(ref w, null)));
    }

    [Fact]
    public void Batch_answer_entries_are_the_wire_forms_of_the_protocol_extensions()
    {
        // docs/PROTOCOL-EXTENSIONS.md: an acks entry is [ok, result|reason, version, accepted, promised, is_copy], a
        // values entry [value, version, accepted, is_copy]; a position without an answer is nil.
        static MsgValue Or(EntryVersion? v) => v?.ToMsgValue() ?? MsgValue.Nil;
        foreach (var (ok, isCopy) in new[] { (true, false), (false, true), (true, true) })
        {
            foreach (var version in Versions.Append(default).Select(v => v == default ? (EntryVersion?)null : v))
            {
                var (accepted, promised) = (Versions[^1], version is null ? (EntryVersion?)null : Versions[2]);
                var value = MsgValue.Bin([1, 2, 3]);
                var result = ok ? MsgValue.True : null;
                var (acks, values) = RingNode.EncodeEntriesForTest(ok, value, result, ok ? null : "the owner holds or promised a newer version", version, accepted, promised, isCopy);

                var ackEntry = MsgValue.Array(ok, ok ? result ?? MsgValue.Nil : "the owner holds or promised a newer version", Or(version), Or(accepted), Or(promised), isCopy);
                Assert.Equal(MsgPack.Serialize(MsgValue.Array(ackEntry, MsgValue.Nil)), MsgPack.Serialize(acks));
                var valueEntry = MsgValue.Array(value, Or(version), Or(accepted), isCopy);
                Assert.Equal(MsgPack.Serialize(MsgValue.Array(valueEntry, MsgValue.Nil)), MsgPack.Serialize(values));
            }
        }
    }

    private delegate void WriteAction(ref MessagePack.MessagePackWriter writer);

    private static byte[] Pack(WriteAction write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePack.MessagePackWriter(buffer);
        write(ref writer);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
