using System.Buffers;
using System.IO.Compression;
using ICSharpCode.SharpZipLib.BZip2;
using Snappier;

namespace Chord.Dht.Wire;

/// <summary>Compresses and decompresses frame bodies with the methods of <see cref="CompressionMethod"/>.</summary>
public static class Compression
{
    /// <summary>Every method this project implements, in our default order of preference (fastest first).</summary>
    public static IReadOnlyList<CompressionMethod> Supported { get; } =
        [CompressionMethod.Snappy, CompressionMethod.Zlib, CompressionMethod.Gzip, CompressionMethod.Bz2];

    /// <summary>True when <paramref name="flag"/> names a method we implement.</summary>
    public static bool IsSupported(long flag) => flag is (byte)CompressionMethod.Bz2 or (byte)CompressionMethod.Gzip
        or (byte)CompressionMethod.Zlib or (byte)CompressionMethod.Snappy;

    /// <summary>Compresses <paramref name="data"/>.</summary>
    public static byte[] Compress(CompressionMethod method, ReadOnlySpan<byte> data)
    {
        switch (method)
        {
            case CompressionMethod.Snappy:
                return Snappy.CompressToArray(data);
            case CompressionMethod.Zlib:
            case CompressionMethod.Gzip:
            case CompressionMethod.Bz2:
                using (var output = new MemoryStream(data.Length / 2 + 64))
                {
                    using (var stream = CompressStream(method, output))
                    {
                        stream.Write(data);
                    }

                    return output.ToArray();
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(method), method, $"Unknown compression method; supported: {string.Join(", ", Supported)}.");
        }
    }

    /// <summary>
    /// Decompresses <paramref name="data"/>, refusing output longer than <paramref name="maxLength"/>
    /// (a small frame must not expand into an unbounded buffer). Returns false when the bytes are not
    /// valid for the method or expand beyond the limit.
    /// </summary>
    public static bool TryDecompress(CompressionMethod method, ReadOnlySpan<byte> data, int maxLength, out byte[] result)
    {
        result = [];
        try
        {
            if (method == CompressionMethod.Snappy)
            {
                var length = Snappy.GetUncompressedLength(data);
                if (length < 0 || length > maxLength) // a length varint of 2^31 or more reads as negative
                {
                    return false;
                }

                result = new byte[length];
                return Snappy.Decompress(data, result) == length;
            }

            using var input = new MemoryStream(data.ToArray(), writable: false);
            using var stream = DecompressStream(method, input);
            using var output = new MemoryStream();
            var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
            try
            {
                int read;
                while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
                {
                    if (output.Length + read > maxLength)
                    {
                        return false;
                    }

                    output.Write(buffer, 0, read);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            result = output.ToArray();
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or InvalidOperationException or ArgumentException
            or IOException or BZip2Exception or ICSharpCode.SharpZipLib.SharpZipBaseException or IndexOutOfRangeException
            or NullReferenceException) // SharpZipLib 1.4.2's BZip2InputStream throws it on some corrupt blocks
        {
            return false;
        }
    }

    private static Stream CompressStream(CompressionMethod method, Stream output) => method switch
    {
        CompressionMethod.Zlib => new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true),
        CompressionMethod.Gzip => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true),
        _ => new BZip2OutputStream(output) { IsStreamOwner = false },
    };

    private static Stream DecompressStream(CompressionMethod method, Stream input) => method switch
    {
        CompressionMethod.Zlib => new ZLibStream(input, CompressionMode.Decompress),
        CompressionMethod.Gzip => new GZipStream(input, CompressionMode.Decompress),
        CompressionMethod.Bz2 => new BZip2InputStream(input),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Not a stream compression method."),
    };
}
