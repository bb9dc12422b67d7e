using System.Buffers;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// Bodies whose digest is right but whose content is not <c>[msg_type(int), sender(bin), time(int), p0, …]</c>:
/// each must be a <see cref="MsgFormatException"/> that is not about the digest.
/// </summary>
public class MalformedMessageTests
{
    private static readonly MsgValue Sender = MsgValue.BinAscii("6DvbVmahBicYtFuqpntZ42XpZ6nz4ZuxBhHexF1JBYM4ufkBnTbco2efU2katqbqBn");
    private static readonly MsgValue Time = MsgValue.From(1_600_000_000L);
    private static readonly MsgValue SubFlag = MsgValue.From(5L);

    public static TheoryData<string> MalformedPacked() => new(
        "c1", // never-used byte
        "94", // array of 4 with no items
        "9402c401", // truncated bin inside the array
        "9402c40136ce5f5e100005c0", // a valid message followed by a trailing nil
        "9402c40136ce5f5e1000a2c328", // p0 a str of invalid UTF-8
        "dd7fffffff02"); // array 32 announcing 2^31-1 items

    private static readonly Dictionary<string, MsgValue> WrongPacketCases = new()
    {
        { "sender is a str", MsgValue.Array(MsgValue.From(2L), MsgValue.Str("6DvbVmahBicYtFuqpntZ42XpZ6nz4ZuxBhHexF1JBYM4ufkBnTbco2efU2katqbqBn"), Time, SubFlag) },
        { "sender is an int", MsgValue.Array(MsgValue.From(2L), MsgValue.From(6L), Time, SubFlag) },
        { "sender is nil", MsgValue.Array(MsgValue.From(2L), MsgValue.Nil, Time, SubFlag) },
        { "time is a str", MsgValue.Array(MsgValue.From(2L), Sender, MsgValue.Str("1600000000"), SubFlag) },
        { "time is a bin", MsgValue.Array(MsgValue.From(2L), Sender, MsgValue.BinAscii("1600000000"), SubFlag) },
        { "time is a float", MsgValue.Array(MsgValue.From(2L), Sender, MsgValue.From(1.6e9), SubFlag) },
        { "time is beyond a long", MsgValue.Array(MsgValue.From(2L), Sender, MsgValue.From(ulong.MaxValue), SubFlag) },
        { "type is a str", MsgValue.Array(MsgValue.Str("2"), Sender, Time, SubFlag) },
        { "type is a float", MsgValue.Array(MsgValue.From(2.0), Sender, Time, SubFlag) },
        { "type is nil", MsgValue.Array(MsgValue.Nil, Sender, Time, SubFlag) },
        { "no packets", MsgValue.Array() },
        { "one packet", MsgValue.Array(MsgValue.From(2L)) },
        { "two packets", MsgValue.Array(MsgValue.From(2L), Sender) },
        { "three packets", MsgValue.Array(MsgValue.From(2L), Sender, Time) },
        { "a map, not an array", MsgValue.Map(("type", MsgValue.From(2L)), ("sender", Sender), ("time", Time), ("p0", SubFlag)) },
        { "an int, not an array", MsgValue.From(2L) },
        { "main flag 7", MsgValue.Array(MsgValue.From(7L), Sender, Time, SubFlag) },
        { "main flag 5", MsgValue.Array(MsgValue.From(5L), Sender, Time, SubFlag) },
        { "main flag -1", MsgValue.Array(MsgValue.From(-1L), Sender, Time, SubFlag) },
        { "main flag 256", MsgValue.Array(MsgValue.From(256L), Sender, Time, SubFlag) },
        { "main flag 2^32", MsgValue.Array(MsgValue.From(1L << 32), Sender, Time, SubFlag) },
    };

    public static TheoryData<string> WrongPackets() => new(WrongPacketCases.Keys);

    [Theory]
    [MemberData(nameof(MalformedPacked))]
    public void Malformed_msgpack_with_a_valid_digest_is_a_format_error(string packedHex)
    {
        AssertFormatErrorNotAboutTheDigest(TestFrames.BodyFor(WireVectors.Hex(packedHex)));
    }

    [Theory]
    [MemberData(nameof(WrongPackets))]
    public void Wrong_packets_with_a_valid_digest_are_a_format_error(string why)
    {
        AssertFormatErrorNotAboutTheDigest(TestFrames.BodyFor(WrongPacketCases[why]));
    }

    [Fact]
    public void The_well_formed_counterpart_of_the_wrong_packets_decodes()
    {
        var message = FrameCodec.DecodeBody(new ReadOnlySequence<byte>(TestFrames.BodyFor(MsgValue.Array(MsgValue.From(2L), Sender, Time, SubFlag))), []);

        Assert.Equal(MainFlag.Whisper, message.Type);
        Assert.Equal(Sender.AsAscii(), message.Sender);
        Assert.Equal(1_600_000_000L, message.Time);
        Assert.True(message.Is(Chord.Dht.Wire.SubFlag.Handshake));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    [InlineData(long.MaxValue)]
    public void Any_time_that_fits_a_long_decodes(long time)
    {
        var message = FrameCodec.DecodeBody(new ReadOnlySequence<byte>(TestFrames.BodyFor(MsgValue.Array(MsgValue.From(0L), Sender, MsgValue.From(time), SubFlag))), []);
        Assert.Equal(time, message.Time);
    }

    [Fact]
    public void Sub_flag_need_not_be_an_int()
    {
        var message = FrameCodec.DecodeBody(new ReadOnlySequence<byte>(TestFrames.BodyFor(MsgValue.Array(MsgValue.From(2L), Sender, Time, MsgValue.Str("x")))), []);

        Assert.Null(message.SubFlagValue);
        Assert.Equal(MsgValue.Str("x"), Assert.Single(message.Payload));
    }

    [Fact]
    public void Create_refuses_an_empty_payload()
    {
        Assert.Throws<ArgumentException>(() => Message.Create(MainFlag.Whisper, "x", 0));
    }

    private static void AssertFormatErrorNotAboutTheDigest(byte[] body)
    {
        foreach (var buffer in new[] { new ReadOnlySequence<byte>(body), Segments.OneBytePerSegment(body) })
        {
            var error = Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(buffer, Compression.Supported));
            Assert.DoesNotContain("digest", error.Message, StringComparison.Ordinal);
        }
    }
}
