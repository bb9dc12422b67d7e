using System.Buffers.Binary;

namespace Chord.Dht.Wire;

/// <summary>A message id: the SHA-256 digest of the packed message, 32 bytes, held without allocation.</summary>
public readonly record struct MessageId(UInt128 High, UInt128 Low)
{
    /// <summary>Reads the 32 digest bytes.</summary>
    public static MessageId FromDigest(ReadOnlySpan<byte> digest)
    {
        if (digest.Length != 32)
        {
            throw new ArgumentException($"A message id is 32 bytes; got {digest.Length}.", nameof(digest));
        }

        return new MessageId(BinaryPrimitives.ReadUInt128BigEndian(digest), BinaryPrimitives.ReadUInt128BigEndian(digest[16..]));
    }

    /// <summary>Writes the 32 digest bytes.</summary>
    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt128BigEndian(destination, High);
        BinaryPrimitives.WriteUInt128BigEndian(destination[16..], Low);
    }

    /// <summary>The digest as 32 bytes.</summary>
    public byte[] ToArray()
    {
        var bytes = new byte[32];
        CopyTo(bytes);
        return bytes;
    }

    /// <summary>Lowercase hex, as the vectors write it.</summary>
    public override string ToString() => Convert.ToHexStringLower(ToArray());
}
