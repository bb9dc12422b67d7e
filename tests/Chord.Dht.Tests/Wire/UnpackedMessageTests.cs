using System.Buffers;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// A whisper made unpacked (the ring's requests and answers) is encoded only when it is written: into its frame through
/// a reused buffer when the digest is bare, packed on demand otherwise; the bytes are those of a message packed at once.
/// </summary>
public class UnpackedMessageTests
{
    private static MsgValue[] Payload(string text) => [(long)SubFlag.Whisper, text, 42L, MsgValue.Bin([1, 2, 3])];

    private static Message Unpacked(string text) => Message.CreateUnpacked(MainFlag.Whisper, "sender", 1_700_000_000, Payload(text));

    private static Message Packed(string text) => Message.Create(MainFlag.Whisper, "sender", 1_700_000_000, Payload(text));

    private static ReadOnlySequence<byte> Body(ArrayBufferWriter<byte> frame) => new(frame.WrittenMemory[FrameCodec.HeaderLength..]);

    [Fact]
    public void Written_with_a_bare_digest_it_is_never_packed_and_its_frame_is_that_of_the_message_packed_at_once()
    {
        var unpacked = Unpacked("lazy");
        var fromUnpacked = new ArrayBufferWriter<byte>();
        var fromPacked = new ArrayBufferWriter<byte>();

        FrameCodec.Write(fromUnpacked, unpacked, null, compressFrom: 0, rawUnlessSmaller: true, bareDigest: true);
        FrameCodec.Write(fromPacked, Packed("lazy"), null, compressFrom: 0, rawUnlessSmaller: true, bareDigest: true);

        Assert.False(unpacked.IsPacked);
        Assert.Equal(fromPacked.WrittenSpan.ToArray(), fromUnpacked.WrittenSpan.ToArray());
        var decoded = FrameCodec.DecodeBody(Body(fromUnpacked), [], acceptBareDigest: true);
        Assert.Equal(Payload("lazy"), decoded.Payload.ToArray());
        Assert.Equal("sender", decoded.Sender);
    }

    [Fact]
    public void Written_with_a_real_digest_it_is_packed_then_and_the_digest_checks()
    {
        var unpacked = Unpacked("digest");
        var frame = new ArrayBufferWriter<byte>();

        FrameCodec.Write(frame, unpacked, null, compressFrom: 0, rawUnlessSmaller: true, bareDigest: false);

        Assert.True(unpacked.IsPacked);
        Assert.Equal(Packed("digest").Packed.ToArray(), unpacked.Packed.ToArray());
        var decoded = FrameCodec.DecodeBody(Body(frame), []);
        Assert.Equal(Packed("digest").Id, decoded.Id);
        Assert.Equal(unpacked.Id, decoded.Id);
    }

    [Fact]
    public void Asked_for_its_packed_form_or_id_it_packs_itself_as_a_message_packed_at_once()
    {
        var unpacked = Unpacked("resend");

        Assert.Equal(Packed("resend").Id, unpacked.Id);
        Assert.True(unpacked.IsPacked);
        Assert.Equal(Packed("resend").Packed.ToArray(), unpacked.Packed.ToArray());
    }

    [Theory]
    [InlineData(CompressionMethod.Zlib)]
    [InlineData(CompressionMethod.Snappy)]
    public void A_frame_at_or_over_the_compression_threshold_is_compressed_and_one_below_is_not(CompressionMethod method)
    {
        var text = string.Concat(Enumerable.Repeat("compressible ", 200));
        var large = new ArrayBufferWriter<byte>();
        var small = new ArrayBufferWriter<byte>();

        FrameCodec.Write(large, Unpacked(text), method, compressFrom: 1024, rawUnlessSmaller: true, bareDigest: true);
        FrameCodec.Write(small, Unpacked("short"), method, compressFrom: 1024, rawUnlessSmaller: true, bareDigest: true);

        Assert.True(large.WrittenCount < text.Length, $"a {large.WrittenCount}-byte frame for {text.Length} characters of text");
        Assert.Equal(text, FrameCodec.DecodeBody(Body(large), [method], acceptBareDigest: true).Payload[1].AsString());
        Assert.Throws<MsgFormatException>(() => FrameCodec.DecodeBody(Body(large), [], acceptBareDigest: true));
        Assert.Equal("short", FrameCodec.DecodeBody(Body(small), [], acceptBareDigest: true).Payload[1].AsString());
    }

    [Fact]
    public void An_unpacked_message_needs_its_sub_flag()
    {
        var error = Assert.Throws<ArgumentException>(() => Message.CreateUnpacked(MainFlag.Whisper, "sender", 1, []));

        Assert.Contains("sub-flag", error.Message, StringComparison.Ordinal);
    }
}
