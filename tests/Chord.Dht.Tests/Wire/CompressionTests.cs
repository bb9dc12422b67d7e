using System.Buffers;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>Decompression of hostile input: it fails with false, never with an exception or an unbounded buffer.</summary>
public class CompressionTests
{
    public static TheoryData<CompressionMethod> Methods() => new(Compression.Supported);

    [Theory]
    [InlineData("ffffffff0f00")] // snappy length varint 2^32-1: an int of -1
    [InlineData("8080808008")] // snappy length varint 2^31: int.MinValue
    [InlineData("ffffffff7f")] // snappy length varint beyond 32 bits
    [InlineData("ffffff07")] // snappy length 2^24-1: just under the default maximum, with no data
    public void Snappy_length_headers_that_do_not_fit_are_rejected(string hex)
    {
        var data = WireVectors.Hex(hex);

        Assert.False(Compression.TryDecompress(CompressionMethod.Snappy, data, FrameCodec.DefaultMaxFrameLength, out _));
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(data), [CompressionMethod.Snappy]));
    }

    [Fact]
    public void Corrupt_bzip2_block_that_makes_sharpziplib_throw_null_reference_is_rejected()
    {
        // Found by Corrupted_frames_fail_with_a_format_error_or_decode_to_the_same_message, then shrunk.
        var data = WireVectors.Hex(
            "00000000314159265359000000000000007ffffffffff7fffffffffffffffffefffffffffffffffffffffffffffffffffff7ffc002bd25b7" +
            "2eebb6b9904c9bd49934f48611a68683d4f5189a79011b5000900d3d26693021e8013c89a066934fd44d00a7a9b53200f49a7a1a0009e9a1" +
            "a047a87a9b48db4a189e5369a34263d48f20688f269a10069304c90000a000000d098d001300000000004c260008c4d3008da00068340000" +
            "9000000013001100001026230d469865368869a6043d4c980348c27a9a3068d09a64f53d08c06a6c868860986931a6a668d19009b4098860" +
            "086469835323689806a698d07a84c836a602600c48d1369a21e9347ea98ca784c93d20f51ea64da9e8d4c8d93d286834da4d189a64d1ea31" +
            "34c1a9a341a346d419a869a69a69bd53269a1a1a30194c0862069a0c684c34134d3653d269b286fb353d4ca04100");

        Assert.False(Compression.TryDecompress(CompressionMethod.Bz2, data, FrameCodec.DefaultMaxFrameLength, out _));
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(new ReadOnlySequence<byte>(data), Compression.Supported));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Empty_and_garbage_input_is_rejected(CompressionMethod method)
    {
        if (Compression.TryDecompress(method, [], FrameCodec.DefaultMaxFrameLength, out var fromEmpty))
        {
            Assert.Empty(fromEmpty);
        }

        Assert.False(Compression.TryDecompress(method, "this is not compressed"u8, FrameCodec.DefaultMaxFrameLength, out _));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void A_small_bomb_is_refused_at_the_limit(CompressionMethod method)
    {
        var bomb = Compression.Compress(method, new byte[4 * 1024 * 1024]);
        Assert.True(bomb.Length < 1024 * 1024, "Four MiB of zeros should compress well.");

        Assert.False(Compression.TryDecompress(method, bomb, 1024 * 1024, out _));
        Assert.True(Compression.TryDecompress(method, bomb, 4 * 1024 * 1024, out var plain));
        Assert.Equal(4 * 1024 * 1024, plain.Length);
    }

    [Fact]
    public void Unknown_method_cannot_compress()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Compression.Compress((CompressionMethod)0x12, [1, 2, 3]));
    }
}
