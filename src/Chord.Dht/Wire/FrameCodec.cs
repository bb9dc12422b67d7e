using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Chord.Dht.Wire;

/// <summary>
/// Frames (PROTOCOL.md §1): <c>length:uint32be || C(digest || S)</c>. Pure functions over bytes: no sockets, no clock.
/// </summary>
public static class FrameCodec
{
    /// <summary>Bytes in the length header.</summary>
    public const int HeaderLength = 4;

    /// <summary>Bytes in the SHA-256 digest that starts every body.</summary>
    public const int DigestLength = 32;

    /// <summary>The default maximum body length: 16 MiB.</summary>
    public const int DefaultMaxFrameLength = 16 * 1024 * 1024;

    /// <summary>
    /// Takes one frame off the front of <paramref name="buffer"/> when it is all there. Decides
    /// <see cref="FrameReadStatus.TooLong"/> from the 4-byte header alone, before any of the body is needed.
    /// </summary>
    /// <param name="buffer">The bytes received so far; on <see cref="FrameReadStatus.Frame"/> it is advanced past the frame.</param>
    /// <param name="maxFrameLength">The largest body accepted.</param>
    /// <param name="body">The body (compressed or not) on <see cref="FrameReadStatus.Frame"/>.</param>
    /// <param name="declaredLength">The length the header announced, once the header is there.</param>
    public static FrameReadStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameLength, out ReadOnlySequence<byte> body, out long declaredLength)
    {
        body = default;
        declaredLength = -1;
        if (buffer.Length < HeaderLength)
        {
            return FrameReadStatus.NeedMore;
        }

        Span<byte> header = stackalloc byte[HeaderLength];
        buffer.Slice(0, HeaderLength).CopyTo(header);
        declaredLength = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (declaredLength > maxFrameLength)
        {
            return FrameReadStatus.TooLong;
        }

        if (buffer.Length - HeaderLength < declaredLength)
        {
            return FrameReadStatus.NeedMore;
        }

        body = buffer.Slice(HeaderLength, declaredLength);
        buffer = buffer.Slice(body.End);
        return FrameReadStatus.Frame;
    }

    /// <summary>
    /// Decodes a body. The raw bytes are tried first (a digest match cannot happen by chance), then each method in
    /// <paramref name="methods"/>; the digest decides which reading is right, as PROTOCOL.md §4 says.
    /// Throws <see cref="MsgFormatException"/> when no reading matches its digest or the message is malformed.
    /// </summary>
    /// <param name="body">The frame's body, as <see cref="TryReadFrame"/> gave it.</param>
    /// <param name="methods">The decompressions to try when the raw bytes do not match their digest.</param>
    /// <param name="maxFrameLength">The largest decompressed body accepted.</param>
    /// <param name="acceptBareDigest">
    /// True on a connection whose peer said it sends bare digests (docs/PROTOCOL-EXTENSIONS.md): a digest of 32 zero
    /// bytes then matches any content, and the message's id is computed only if it is ever needed.
    /// </param>
    public static Message DecodeBody(ReadOnlySequence<byte> body, IReadOnlyList<CompressionMethod> methods, int maxFrameLength = DefaultMaxFrameLength, bool acceptBareDigest = false)
    {
        // The message keeps its packed bytes (a relayed broadcast is sent on as it came), so they are copied out of the
        // pipe's buffer once: a body in one segment after its digest checks, one in several (a frame across buffer
        // segments) or a decompressed one is that copy already, and the message takes a slice of it.
        byte[]? whole = body.IsSingleSegment ? null : body.ToArray();
        var bytes = whole ?? body.FirstSpan;
        if (TryDigest(bytes, acceptBareDigest, out var id))
        {
            return Message.Parse(whole is null ? bytes[DigestLength..].ToArray() : whole.AsMemory(DigestLength), id);
        }

        foreach (var method in methods)
        {
            if (Compression.TryDecompress(method, bytes, maxFrameLength, out var plain) && TryDigest(plain, acceptBareDigest, out id))
            {
                return Message.Parse(plain.AsMemory(DigestLength), id);
            }
        }

        throw new MsgFormatException(methods.Count == 0
            ? "The frame's digest does not match its content."
            : $"The frame's digest matches neither its raw bytes nor their decompression by {string.Join(", ", methods)}.");
    }

    /// <summary>Encodes a message as one frame, compressed with <paramref name="method"/> when given.</summary>
    public static byte[] Encode(Message message, CompressionMethod? method = null)
    {
        var buffer = new ArrayBufferWriter<byte>(HeaderLength + DigestLength + message.Packed.Length);
        Write(buffer, message, method);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes a message as one frame into <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, Message message, CompressionMethod? method = null) =>
        Write(output, message, method, rawUnlessSmaller: false);

    /// <summary>As <see cref="Write(IBufferWriter{byte}, Message, CompressionMethod?, bool, bool)"/>, with the message's digest.</summary>
    public static void Write(IBufferWriter<byte> output, Message message, CompressionMethod? method, bool rawUnlessSmaller) =>
        Write(output, message, method, rawUnlessSmaller, bareDigest: false);

    /// <summary>
    /// Writes a message as one frame into <paramref name="output"/>; with <paramref name="rawUnlessSmaller"/>, a body
    /// that <paramref name="method"/> does not shrink by at least an eighth goes raw (PROTOCOL.md §4: receivers fall
    /// back to the raw bytes), which spares the receiver a failed digest and a decompression. With
    /// <paramref name="bareDigest"/> (only to a peer that said it takes them: docs/PROTOCOL-EXTENSIONS.md) the digest
    /// is 32 zero bytes and the message is never hashed.
    /// </summary>
    public static void Write(IBufferWriter<byte> output, Message message, CompressionMethod? method, bool rawUnlessSmaller, bool bareDigest) =>
        Write(output, message, method, compressFrom: 0, rawUnlessSmaller, bareDigest);

    /// <summary>
    /// As <see cref="Write(IBufferWriter{byte}, Message, CompressionMethod?, bool, bool)"/>, compressing only a frame of
    /// at least <paramref name="compressFrom"/> bytes (digest and packed message). A message not packed yet (a whisper
    /// made by <see cref="Message.CreateUnpacked"/>) going with a bare digest is encoded through this thread's reused
    /// buffer: no byte[] of its own.
    /// </summary>
    internal static void Write(IBufferWriter<byte> output, Message message, CompressionMethod? method, int compressFrom, bool rawUnlessSmaller, bool bareDigest)
    {
        if (message.IsPacked || !bareDigest)
        {
            WritePacked(output, message, message.Packed.Span, method, compressFrom, rawUnlessSmaller, bareDigest);
            return;
        }

        var scratch = ScratchBuffer.Rent();
        try
        {
            message.WritePacked(scratch);
            WritePacked(output, message, scratch.WrittenSpan, method, compressFrom, rawUnlessSmaller, bareDigest);
        }
        finally
        {
            ScratchBuffer.Return(scratch);
        }
    }

    private static void WritePacked(IBufferWriter<byte> output, Message message, ReadOnlySpan<byte> packed, CompressionMethod? method, int compressFrom, bool rawUnlessSmaller, bool bareDigest)
    {
        var plainLength = DigestLength + packed.Length;
        if (method is null || plainLength < compressFrom)
        {
            WriteRaw(output, message, packed, bareDigest);
            return;
        }

        var plain = ArrayPool<byte>.Shared.Rent(plainLength);
        try
        {
            WriteDigest(message, plain.AsSpan(0, DigestLength), bareDigest);
            packed.CopyTo(plain.AsSpan(DigestLength));
            var compressed = Compression.Compress(method.Value, plain.AsSpan(0, plainLength));
            if (rawUnlessSmaller && compressed.Length > plainLength - plainLength / 8)
            {
                WriteRaw(output, message, packed, bareDigest);
                return;
            }

            var span = output.GetSpan(HeaderLength + compressed.Length);
            BinaryPrimitives.WriteUInt32BigEndian(span, (uint)compressed.Length);
            compressed.CopyTo(span[HeaderLength..]);
            output.Advance(HeaderLength + compressed.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
        }
    }

    private static void WriteRaw(IBufferWriter<byte> output, Message message, ReadOnlySpan<byte> packed, bool bareDigest)
    {
        var plainLength = DigestLength + packed.Length;
        var span = output.GetSpan(HeaderLength + plainLength);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)plainLength);
        WriteDigest(message, span.Slice(HeaderLength, DigestLength), bareDigest);
        packed.CopyTo(span[(HeaderLength + DigestLength)..]);
        output.Advance(HeaderLength + plainLength);
    }

    private static void WriteDigest(Message message, Span<byte> destination, bool bare)
    {
        if (bare)
        {
            destination.Clear();
        }
        else
        {
            message.Id.CopyTo(destination);
        }
    }

    /// <summary>
    /// True when the first <see cref="DigestLength"/> bytes are the SHA-256 of the rest (<paramref name="id"/> is it),
    /// or, with <paramref name="acceptBare"/>, all zero (<paramref name="id"/> is null: not computed).
    /// </summary>
    private static bool TryDigest(ReadOnlySpan<byte> bytes, bool acceptBare, out MessageId? id)
    {
        id = null;
        if (bytes.Length <= DigestLength)
        {
            return false;
        }

        if (acceptBare && !bytes[..DigestLength].ContainsAnyExcept((byte)0))
        {
            return true;
        }

        Span<byte> digest = stackalloc byte[DigestLength];
        SHA256.HashData(bytes[DigestLength..], digest);
        if (!digest.SequenceEqual(bytes[..DigestLength]))
        {
            return false;
        }

        id = MessageId.FromDigest(digest);
        return true;
    }
}
