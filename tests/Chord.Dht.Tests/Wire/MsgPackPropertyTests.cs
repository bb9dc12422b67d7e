using System.Buffers;
using Chord.Dht.Wire;
using CsCheck;
using MessagePack;

namespace Chord.Dht.Tests.Wire;

/// <summary>Random value trees through <see cref="MsgPack"/>: round trips, canonical bytes, segmented input.</summary>
public class MsgPackPropertyTests
{
    [Fact]
    public void Random_values_round_trip_with_equality_and_identical_bytes()
    {
        WireGen.Value.Sample(value =>
        {
            var bytes = MsgPack.Serialize(value);

            var back = MsgPack.Deserialize(bytes);

            Assert.Equal(value.Kind, back.Kind);
            Assert.Equal(value, back);
            Assert.Equal(value.GetHashCode(), back.GetHashCode());
            Assert.Equal(WireVectors.ToHex(bytes), WireVectors.ToHex(MsgPack.Serialize(back)));
        }, iter: 3000);
    }

    [Fact]
    public void Random_values_encode_in_the_canonical_smallest_form()
    {
        WireGen.Value.Sample(value =>
        {
            Assert.Equal(WireVectors.ToHex(ReferenceMsgPack.Encode(value)), WireVectors.ToHex(MsgPack.Serialize(value)));
        }, iter: 3000);
    }

    [Fact]
    public void Random_integers_across_the_int64_and_uint64_range_encode_canonically_and_round_trip()
    {
        WireGen.Integer.Sample(value =>
        {
            var bytes = MsgPack.Serialize(value);
            Assert.Equal(WireVectors.ToHex(ReferenceMsgPack.Encode(value)), WireVectors.ToHex(bytes));
            Assert.Equal(value.AsInteger(), MsgPack.Deserialize(bytes).AsInteger());
        }, iter: 20_000);
    }

    [Fact]
    public void Random_values_decode_from_a_segmented_sequence()
    {
        Gen.Select(WireGen.Value, Gen.Int.Array[0, 8]).Sample((value, cuts) =>
        {
            var bytes = MsgPack.Serialize(value);
            var sequence = Segments.Create(Segments.SplitAt(bytes, cuts.Select(c => (int)((uint)c % (bytes.Length + 1)))));
            var reader = new MessagePackReader(sequence);

            var back = MsgPack.Read(ref reader);

            Assert.True(reader.End);
            Assert.Equal(value, back);
        }, iter: 2000);
    }

    [Fact]
    public void Random_truncations_are_format_errors()
    {
        Gen.Select(WireGen.Value, Gen.Int).Sample((value, cut) =>
        {
            var bytes = MsgPack.Serialize(value);
            var length = (int)((uint)cut % bytes.Length);

            Assert.Throws<MsgFormatException>(() => MsgPack.Deserialize(bytes.AsMemory(0, length)));
        }, iter: 2000);
    }

    [Fact]
    public void Random_bytes_decode_or_fail_only_with_a_format_error()
    {
        Gen.Byte.Array[0, 64].Sample(bytes =>
        {
            try
            {
                var value = MsgPack.Deserialize(bytes);
                Assert.Equal(value, MsgPack.Deserialize(MsgPack.Serialize(value)));
            }
            catch (MsgFormatException)
            {
                // the only failure a peer's bytes may cause
            }
        }, iter: 20_000);
    }

    [Fact]
    public void Writer_into_a_buffer_matches_serialize()
    {
        WireGen.Value.Sample(value =>
        {
            var buffer = new ArrayBufferWriter<byte>(1);
            var writer = new MessagePackWriter(buffer);
            MsgPack.Write(ref writer, value);
            writer.Flush();

            Assert.Equal(WireVectors.ToHex(MsgPack.Serialize(value)), WireVectors.ToHex(buffer.WrittenSpan));
        }, iter: 500);
    }
}
