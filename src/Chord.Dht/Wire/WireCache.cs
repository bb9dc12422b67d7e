using System.Numerics;

namespace Chord.Dht.Wire;

/// <summary>
/// Wire values made once and shared (a <see cref="MsgValue"/> is immutable): the five method names, the bins of
/// writer ids (every version and ballot carries one: a node id of 64 to 90 base58 digits) and of key positions (a
/// request's position in base58 costs big-integer divisions to write and multiplications to read). A ring writes and
/// reads the same few ids and the positions of its hot keys over and over: each was made per frame before (the
/// storage bench's writes spent 8% of their allocation on them). Every cache is bounded, emptied when full, so a
/// stranger's random ids or positions cost what they cost without it and never more memory than the bound.
/// </summary>
internal static class WireCache
{
    /// <summary>Writer ids kept.</summary>
    public const int WriterCapacity = 1024;

    /// <summary>Positions kept, each way (about 3 MB at most).</summary>
    public const int PositionCapacity = 16_384;

    private static readonly MsgValue[] MethodNames = [.. Enum.GetValues<HashMethod>().Select(m => MsgValue.BinAscii(m.WireName()))];
    private static readonly BoundedSpanCache<MsgValue> WriterBins = new(WriterCapacity);
    private static readonly BoundedSpanCache<MsgValue> PositionBins = new(PositionCapacity);
    private static readonly BoundedSpanCache<BigInteger> PositionsRead = new(PositionCapacity);

    /// <summary>The bin of a method's wire name (<c>sha1</c> ... <c>sha512</c>).</summary>
    public static MsgValue MethodName(HashMethod method) => MethodNames[(int)method];

    /// <summary>The bin of a writer id's ASCII bytes.</summary>
    public static MsgValue WriterBin(string writer)
    {
        if (writer.Length > SenderIds.MaxLength)
        {
            return MsgValue.BinAscii(writer);
        }

        Span<byte> ascii = stackalloc byte[writer.Length];
        System.Text.Encoding.ASCII.GetBytes(writer, ascii);
        if (WriterBins.TryGet(ascii, out var known))
        {
            return known;
        }

        var made = MsgValue.Bin(ascii);
        WriterBins.Add(ascii, made);
        return made;
    }

    /// <summary>The bin of a position's base58 digits, as requests carry it.</summary>
    public static MsgValue PositionBin(BigInteger position)
    {
        Span<byte> bytes = stackalloc byte[80];
        if (!position.TryWriteBytes(bytes, out var written, isUnsigned: true))
        {
            return MsgValue.BinAscii(Base58.Encode(position)); // wider than any hash: not worth keeping
        }

        if (PositionBins.TryGet(bytes[..written], out var known))
        {
            return known;
        }

        var made = MsgValue.BinAscii(Base58.Encode(position));
        PositionBins.Add(bytes[..written], made);
        return made;
    }

    /// <summary>Reads base58 digits (at most <paramref name="maxDigits"/>); false when they are not base58.</summary>
    public static bool TryReadPosition(ReadOnlySpan<byte> ascii, int maxDigits, out BigInteger value)
    {
        value = default;
        if (ascii.Length > maxDigits)
        {
            return false; // before any (quadratic) big-integer work
        }

        if (PositionsRead.TryGet(ascii, out value))
        {
            return true;
        }

        if (!Base58.TryDecode(ascii, out value))
        {
            return false;
        }

        PositionsRead.Add(ascii, value);
        return true;
    }
}
