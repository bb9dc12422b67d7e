using System.Buffers.Binary;
using System.Text;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// An independent, deliberately plain encoder of the canonical smallest msgpack form that Python's msgpack writes
/// (PROTOCOL.md §1): the oracle the property tests hold <see cref="MsgPack.Serialize"/> to.
/// </summary>
internal static class ReferenceMsgPack
{
    public static byte[] Encode(MsgValue value)
    {
        var output = new List<byte>();
        Write(output, value);
        return [.. output];
    }

    private static void Write(List<byte> output, MsgValue value)
    {
        switch (value.Kind)
        {
            case MsgKind.Nil:
                output.Add(0xc0);
                break;
            case MsgKind.Bool:
                output.Add(value.AsBool() ? (byte)0xc3 : (byte)0xc2);
                break;
            case MsgKind.Int:
                WriteInteger(output, value.AsInteger());
                break;
            case MsgKind.Float when value.IsFloat32:
                output.Add(0xca);
                Span<byte> single = stackalloc byte[4];
                BinaryPrimitives.WriteSingleBigEndian(single, (float)value.AsDouble());
                output.AddRange(single);
                break;
            case MsgKind.Float:
                output.Add(0xcb);
                Span<byte> dbl = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(dbl, value.AsDouble());
                output.AddRange(dbl);
                break;
            case MsgKind.Str:
                var utf8 = Encoding.UTF8.GetBytes(value.AsString());
                if (utf8.Length < 32)
                {
                    output.Add((byte)(0xa0 | utf8.Length));
                }
                else
                {
                    WriteLength(output, utf8.Length, 0xd9, 0xda, 0xdb);
                }

                output.AddRange(utf8);
                break;
            case MsgKind.Bin:
                var bytes = value.AsBytes().ToArray();
                WriteLength(output, bytes.Length, 0xc4, 0xc5, 0xc6);
                output.AddRange(bytes);
                break;
            case MsgKind.Ext:
                var data = value.AsBytes().ToArray();
                var fixext = data.Length switch { 1 => 0xd4, 2 => 0xd5, 4 => 0xd6, 8 => 0xd7, 16 => 0xd8, _ => 0 };
                if (fixext != 0)
                {
                    output.Add((byte)fixext);
                }
                else
                {
                    WriteLength(output, data.Length, 0xc7, 0xc8, 0xc9);
                }

                output.Add((byte)value.ExtTypeCode);
                output.AddRange(data);
                break;
            case MsgKind.Array:
                var items = value.AsArray();
                WriteContainer(output, items.Length, 0x90, 0xdc, 0xdd);
                foreach (var item in items)
                {
                    Write(output, item);
                }

                break;
            case MsgKind.Map:
                var entries = value.AsMap();
                WriteContainer(output, entries.Length, 0x80, 0xde, 0xdf);
                foreach (var (key, entry) in entries)
                {
                    Write(output, key);
                    Write(output, entry);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(value), value.Kind, "Unknown kind.");
        }
    }

    private static void WriteInteger(List<byte> output, Int128 value)
    {
        if (value >= 0)
        {
            if (value < 128)
            {
                output.Add((byte)value);
            }
            else if (value <= byte.MaxValue)
            {
                output.Add(0xcc);
                AppendBigEndian(output, (ulong)value, 1);
            }
            else if (value <= ushort.MaxValue)
            {
                output.Add(0xcd);
                AppendBigEndian(output, (ulong)value, 2);
            }
            else if (value <= uint.MaxValue)
            {
                output.Add(0xce);
                AppendBigEndian(output, (ulong)value, 4);
            }
            else
            {
                output.Add(0xcf);
                AppendBigEndian(output, (ulong)value, 8);
            }
        }
        else if (value >= -32)
        {
            output.Add((byte)(sbyte)value);
        }
        else if (value >= sbyte.MinValue)
        {
            output.Add(0xd0);
            AppendBigEndian(output, (ulong)(long)value, 1);
        }
        else if (value >= short.MinValue)
        {
            output.Add(0xd1);
            AppendBigEndian(output, (ulong)(long)value, 2);
        }
        else if (value >= int.MinValue)
        {
            output.Add(0xd2);
            AppendBigEndian(output, (ulong)(long)value, 4);
        }
        else
        {
            output.Add(0xd3);
            AppendBigEndian(output, (ulong)(long)value, 8);
        }
    }

    private static void WriteLength(List<byte> output, int length, byte code8, byte code16, byte code32)
    {
        if (length <= byte.MaxValue)
        {
            output.Add(code8);
            AppendBigEndian(output, (ulong)length, 1);
        }
        else if (length <= ushort.MaxValue)
        {
            output.Add(code16);
            AppendBigEndian(output, (ulong)length, 2);
        }
        else
        {
            output.Add(code32);
            AppendBigEndian(output, (ulong)length, 4);
        }
    }

    private static void WriteContainer(List<byte> output, int count, byte fixCode, byte code16, byte code32)
    {
        if (count < 16)
        {
            output.Add((byte)(fixCode | count));
        }
        else if (count <= ushort.MaxValue)
        {
            output.Add(code16);
            AppendBigEndian(output, (ulong)count, 2);
        }
        else
        {
            output.Add(code32);
            AppendBigEndian(output, (ulong)count, 4);
        }
    }

    private static void AppendBigEndian(List<byte> output, ulong value, int width)
    {
        for (var shift = (width - 1) * 8; shift >= 0; shift -= 8)
        {
            output.Add((byte)(value >> shift));
        }
    }
}
