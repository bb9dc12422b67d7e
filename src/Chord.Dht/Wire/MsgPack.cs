using System.Buffers;
using System.Runtime.InteropServices;
using MessagePack;

namespace Chord.Dht.Wire;

/// <summary>
/// Reads and writes <see cref="MsgValue"/>s with MessagePack-CSharp's reader and writer, in the canonical
/// smallest encoding that Python's msgpack produces (what py2p hashes, so the digest depends on it).
/// </summary>
public static class MsgPack
{
    /// <summary>How deeply arrays and maps may nest before input is rejected (protects the stack).</summary>
    public const int MaxDepth = 64;

    /// <summary>Encodes one value to a new array.</summary>
    public static byte[] Serialize(MsgValue value)
    {
        var buffer = ScratchBuffer.Rent();
        try
        {
            var writer = new MessagePackWriter(buffer);
            Write(ref writer, value);
            writer.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ScratchBuffer.Return(buffer);
        }
    }

    /// <summary>Decodes exactly one value; trailing bytes are an error.</summary>
    public static MsgValue Deserialize(ReadOnlyMemory<byte> bytes)
    {
        var reader = new MessagePackReader(bytes);
        var value = Read(ref reader);
        if (!reader.End)
        {
            throw new MsgFormatException($"{reader.Sequence.Length - reader.Consumed} bytes follow the msgpack value.");
        }

        return value;
    }

    /// <summary>Writes one value.</summary>
    public static void Write(ref MessagePackWriter writer, MsgValue value)
    {
        switch (value.Kind)
        {
            case MsgKind.Nil:
                writer.WriteNil();
                break;
            case MsgKind.Bool:
                writer.Write(value.AsBool());
                break;
            case MsgKind.Int:
                var integer = value.AsInteger();
                if (integer < 0)
                {
                    writer.Write((long)integer);
                }
                else
                {
                    writer.Write((ulong)integer); // non-negative integers use the uint family, as Python's msgpack does
                }

                break;
            case MsgKind.Float:
                if (value.IsFloat32)
                {
                    writer.Write((float)value.AsDouble());
                }
                else
                {
                    writer.Write(value.AsDouble());
                }

                break;
            case MsgKind.Str:
                writer.Write(value.AsString());
                break;
            case MsgKind.Bin:
                writer.Write(value.AsBytes().Span);
                break;
            case MsgKind.Ext:
                var data = value.AsBytes().Span;
                writer.WriteExtensionFormatHeader(new ExtensionHeader(value.ExtTypeCode, (uint)data.Length));
                writer.WriteRaw(data);
                break;
            case MsgKind.Array when value.PreEncoded is { } encoded:
                writer.WriteRaw(encoded.Span);
                break;
            case MsgKind.Array:
                var items = value.AsArray();
                writer.WriteArrayHeader(items.Length);
                foreach (var item in items)
                {
                    Write(ref writer, item);
                }

                break;
            case MsgKind.Map:
                var entries = value.AsMap();
                writer.WriteMapHeader(entries.Length);
                foreach (var (key, entry) in entries)
                {
                    Write(ref writer, key);
                    Write(ref writer, entry);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(value), value.Kind, "Unknown msgpack kind.");
        }
    }

    /// <summary>Reads one value; malformed or truncated input throws <see cref="MsgFormatException"/>.</summary>
    public static MsgValue Read(ref MessagePackReader reader)
    {
        try
        {
            return ReadCore(ref reader, 0, shareInput: false);
        }
        catch (Exception e) when (AsFormatError(e) is { } error)
        {
            throw error;
        }
    }

    /// <summary>
    /// Reads <paramref name="count"/> values in a row into an array the caller then owns (the packets of a message
    /// after its header); malformed or truncated input throws <see cref="MsgFormatException"/>. With
    /// <paramref name="shareInput"/>, a bin is a slice of the input's own array, not a copy: only for input that never
    /// changes and that the values may keep alive (a received message's bytes, which the message keeps anyway).
    /// </summary>
    internal static MsgValue[] ReadMany(ref MessagePackReader reader, int count, bool shareInput = false)
    {
        var items = new MsgValue[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                items[i] = ReadCore(ref reader, 1, shareInput);
            }
        }
        catch (Exception e) when (AsFormatError(e) is { } error)
        {
            throw error;
        }

        return items;
    }

    /// <summary>
    /// Reads one value of bytes that never change (a received message's, or an encoding made once), its bins slices of
    /// them; malformed input throws <see cref="MsgFormatException"/>.
    /// </summary>
    internal static MsgValue ReadShared(ReadOnlyMemory<byte> bytes)
    {
        var reader = new MessagePackReader(bytes);
        return ReadShared(ref reader);
    }

    /// <summary>Reads the next value of such bytes (see <see cref="ReadShared(ReadOnlyMemory{byte})"/>) from <paramref name="reader"/>.</summary>
    internal static MsgValue ReadShared(ref MessagePackReader reader)
    {
        try
        {
            return ReadCore(ref reader, 0, shareInput: true);
        }
        catch (Exception e) when (AsFormatError(e) is { } error)
        {
            throw error;
        }
    }

    /// <summary>Skips the next <paramref name="count"/> values (of checked msgpack: the rest of an array being read in place).</summary>
    internal static void SkipItems(ref MessagePackReader reader, int count)
    {
        for (var i = 0; i < count; i++)
        {
            reader.Skip();
        }
    }

    /// <summary>
    /// As <see cref="ReadMany(ref MessagePackReader, int, bool)"/>, but the packet at <paramref name="inPlace"/> (when it is an array) is not made into
    /// values: it is checked exactly as it would be read (nesting depth, lengths, strict UTF-8, known codes) and kept as
    /// its bytes in <paramref name="input"/> (<see cref="MsgValue.PreEncodedArray(byte[], int, int)"/>), for a handler
    /// that reads it where it lies. A malformed one throws here, as it would have been read.
    /// </summary>
    internal static MsgValue[] ReadMany(ref MessagePackReader reader, int count, ArraySegment<byte> input, int inPlace)
    {
        var items = new MsgValue[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                if (i == inPlace && !reader.End && reader.NextMessagePackType == MessagePackType.Array)
                {
                    var start = (int)reader.Consumed;
                    Check(ref reader, 1);
                    items[i] = MsgValue.PreEncodedArray(input.Array!, input.Offset + start, (int)reader.Consumed - start);
                }
                else
                {
                    items[i] = ReadCore(ref reader, 1, shareInput: true);
                }
            }
        }
        catch (Exception e) when (AsFormatError(e) is { } error)
        {
            throw error;
        }

        return items;
    }

    /// <summary>
    /// An array or map count as the reader gave it: MessagePack-CSharp reads an array 32 / map 32 count of 2^31 or more
    /// as a negative int (and its check against the bytes left then passes), which no input this small can hold.
    /// </summary>
    private static int CountOf(int count) =>
        count >= 0 ? count : throw new MsgFormatException("A msgpack array or map announces more items than the input holds.");

    /// <summary>The checks before any value (<see cref="ReadCore"/>'s and <see cref="Check"/>'s alike): its nesting depth, and that it is there.</summary>
    private static byte NextCodeAt(ref MessagePackReader reader, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new MsgFormatException($"msgpack nests deeper than {MaxDepth} levels.");
        }

        if (reader.End)
        {
            throw new MsgFormatException("Truncated msgpack value.");
        }

        return reader.NextCode;
    }

    /// <summary>Goes over one value as <see cref="ReadCore"/> reads it, with the same checks, making nothing.</summary>
    private static void Check(ref MessagePackReader reader, int depth)
    {
        var code = NextCodeAt(ref reader, depth);
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                return;
            case MessagePackType.Boolean:
                reader.ReadBoolean();
                return;
            case MessagePackType.Integer:
                _ = code == MessagePackCode.UInt64 ? reader.ReadUInt64() : (ulong)reader.ReadInt64();
                return;
            case MessagePackType.Float:
                _ = code == MessagePackCode.Float32 ? reader.ReadSingle() : reader.ReadDouble();
                return;
            case MessagePackType.String:
                var text = reader.ReadStringSequence() ?? throw new MsgFormatException("Truncated msgpack str.");
                if (!(text.IsSingleSegment ? System.Text.Unicode.Utf8.IsValid(text.FirstSpan) : System.Text.Unicode.Utf8.IsValid(text.ToArray())))
                {
                    throw new MsgFormatException("A msgpack str holds bytes that are not valid UTF-8."); // as MsgValue.StrFromUtf8 says it
                }

                return;
            case MessagePackType.Binary:
                _ = reader.ReadBytes() ?? throw new MsgFormatException("Truncated msgpack bin.");
                return;
            case MessagePackType.Array:
                var count = CountOf(reader.ReadArrayHeader()); // checks the count against the bytes left
                for (var i = 0; i < count; i++)
                {
                    Check(ref reader, depth + 1);
                }

                return;
            case MessagePackType.Map:
                var entryCount = CountOf(reader.ReadMapHeader());
                for (var i = 0L; i < 2L * entryCount; i++)
                {
                    Check(ref reader, depth + 1);
                }

                return;
            case MessagePackType.Extension:
                var header = reader.ReadExtensionFormatHeader();
                reader.ReadRaw(header.Length);
                return;
            default:
                throw new MsgFormatException($"Byte 0x{code:x2} does not start any msgpack value.");
        }
    }

    /// <summary>What the reader's own exceptions mean for our input, as a <see cref="MsgFormatException"/>; null for any other exception.</summary>
    internal static MsgFormatException? AsFormatError(Exception e) => e switch
    {
        MessagePackSerializationException => new MsgFormatException("Malformed msgpack: " + e.Message, e),
        EndOfStreamException => new MsgFormatException("Truncated msgpack value.", e),

        // MessagePack-CSharp reads a str 32 / bin 32 length of 2^31 or more as a negative int and fails in Slice.
        ArgumentOutOfRangeException => new MsgFormatException("A msgpack str or bin announces more bytes than the input holds.", e),
        _ => null,
    };

    /// <summary>Longest str of a map read through <see cref="MapStrs"/>.</summary>
    private const int MapStrCacheLength = 64;

    /// <summary>
    /// The strs of maps (keys, and values such as a storage record's grain id and incarnation), which repeat from
    /// frame to frame: one value object each instead of a string and a value per frame. Bounded, so a stranger's
    /// random strs cost it nothing but misses.
    /// </summary>
    private static readonly BoundedSpanCache<MsgValue> MapStrs = new(4096);

    private static MsgValue ReadMapStr(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MapStrCacheLength)
        {
            return MsgValue.StrFromUtf8(utf8);
        }

        if (!MapStrs.TryGet(utf8, out var value))
        {
            value = MsgValue.StrFromUtf8(utf8); // checks the bytes: only valid UTF-8 is ever cached
            MapStrs.Add(utf8, value);
        }

        return value;
    }

    private static MsgValue ReadCore(ref MessagePackReader reader, int depth, bool shareInput, bool inMap = false)
    {
        var code = NextCodeAt(ref reader, depth);
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                return MsgValue.Nil;
            case MessagePackType.Boolean:
                return MsgValue.From(reader.ReadBoolean());
            case MessagePackType.Integer:
                return code == MessagePackCode.UInt64 ? MsgValue.From(reader.ReadUInt64()) : MsgValue.From(reader.ReadInt64());
            case MessagePackType.Float:
                return code == MessagePackCode.Float32 ? MsgValue.From(reader.ReadSingle()) : MsgValue.From(reader.ReadDouble());
            case MessagePackType.String:
                var text = reader.ReadStringSequence() ?? throw new MsgFormatException("Truncated msgpack str.");
                return !text.IsSingleSegment ? MsgValue.StrFromUtf8(text.ToArray())
                    : inMap ? ReadMapStr(text.FirstSpan)
                    : MsgValue.StrFromUtf8(text.FirstSpan);
            case MessagePackType.Binary:
                var bytes = reader.ReadBytes() ?? throw new MsgFormatException("Truncated msgpack bin.");
                if (shareInput && SequenceMarshal.TryGetReadOnlyMemory(bytes, out var memory) && MemoryMarshal.TryGetArray(memory, out var segment))
                {
                    return MsgValue.BinSlice(segment.Array!, segment.Offset, segment.Count);
                }

                return MsgValue.BinNoCopy(bytes.ToArray());
            case MessagePackType.Array:
                var count = CountOf(reader.ReadArrayHeader()); // checks the count against the bytes left
                var items = new MsgValue[count];
                for (var i = 0; i < count; i++)
                {
                    items[i] = ReadCore(ref reader, depth + 1, shareInput);
                }

                return MsgValue.ArrayOwning(items);
            case MessagePackType.Map:
                var entryCount = CountOf(reader.ReadMapHeader());
                var entries = new KeyValuePair<MsgValue, MsgValue>[entryCount];
                for (var i = 0; i < entryCount; i++)
                {
                    var key = ReadCore(ref reader, depth + 1, shareInput, inMap: true);
                    entries[i] = new(key, ReadCore(ref reader, depth + 1, shareInput, inMap: true));
                }

                return MsgValue.MapOwning(entries);
            case MessagePackType.Extension:
                var header = reader.ReadExtensionFormatHeader();
                var data = reader.ReadRaw(header.Length);
                return MsgValue.Ext(header.TypeCode, data.ToArray());
            default:
                throw new MsgFormatException($"Byte 0x{code:x2} does not start any msgpack value.");
        }
    }
}
