using System.Buffers;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using MessagePack;

namespace Chord.Dht.Wire;

/// <summary>
/// One py2p message: <c>[msg_type, sender, time, p0, p1, ...]</c> with its id, the SHA-256 of its packed form.
/// </summary>
/// <remarks>
/// The packed bytes are kept so that a relayed broadcast carries exactly the content it arrived with, and so the
/// id never has to be recomputed.
/// </remarks>
public sealed class Message
{
    private Message(MainFlag type, string sender, long time, ImmutableArray<MsgValue> payload, byte[] packed, MessageId id)
    {
        Type = type;
        Sender = sender;
        Time = time;
        Payload = payload;
        Packed = packed;
        Id = id;
    }

    /// <summary>How the message travels.</summary>
    public MainFlag Type { get; }

    /// <summary>The sender's node id (base58; a bin on the wire).</summary>
    public string Sender { get; }

    /// <summary>The sender's clock when it was made, in whole Unix seconds.</summary>
    public long Time { get; }

    /// <summary>The payload packets, <c>p0</c> first.</summary>
    public ImmutableArray<MsgValue> Payload { get; }

    /// <summary>The packed message S, whose SHA-256 is <see cref="Id"/>.</summary>
    public ReadOnlyMemory<byte> Packed { get; }

    /// <summary>The message id.</summary>
    public MessageId Id { get; }

    /// <summary>The sub-flag (<c>p0</c>) when it is a small integer; otherwise null.</summary>
    public int? SubFlagValue => Payload.Length > 0 && Payload[0].TryGetInt32(out var flag) ? flag : null;

    /// <summary>True when <c>p0</c> is <paramref name="flag"/>.</summary>
    public bool Is(SubFlag flag) => SubFlagValue == (int)flag;

    /// <summary>Builds a message and computes its packed form and id.</summary>
    public static Message Create(MainFlag type, string sender, long time, params ReadOnlySpan<MsgValue> payload)
    {
        ArgumentNullException.ThrowIfNull(sender);
        if (payload.IsEmpty)
        {
            throw new ArgumentException("A message needs at least its sub-flag packet.", nameof(payload));
        }

        var items = ImmutableArray.Create(payload);
        var buffer = ScratchBuffer.Rent();
        var senderBytes = ArrayPool<byte>.Shared.Rent(Encoding.ASCII.GetMaxByteCount(sender.Length));
        byte[] packed;
        try
        {
            // The sender id (base58, ASCII) goes out as a bin without a byte[] of its own.
            var senderLength = Encoding.ASCII.GetBytes(sender, senderBytes);
            var writer = new MessagePackWriter(buffer);
            writer.WriteArrayHeader(3 + items.Length);
            writer.Write((byte)type);
            writer.Write(senderBytes.AsSpan(0, senderLength));
            if (time < 0)
            {
                writer.Write(time);
            }
            else
            {
                writer.Write((ulong)time);
            }

            foreach (var item in items)
            {
                MsgPack.Write(ref writer, item);
            }

            writer.Flush();
            packed = buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ScratchBuffer.Return(buffer);
            ArrayPool<byte>.Shared.Return(senderBytes);
        }

        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(packed, digest);
        return new Message(type, sender, time, items, packed, MessageId.FromDigest(digest));
    }

    /// <summary>
    /// Parses a packed message whose digest has already been checked. Throws <see cref="MsgFormatException"/>
    /// when it is not <c>[msg_type(int), sender(bin), time(int), p0, ...]</c> or names an unknown main flag.
    /// </summary>
    internal static Message Parse(byte[] packed, MessageId id)
    {
        var reader = new MessagePackReader(packed);
        if (reader.NextMessagePackType != MessagePackType.Array)
        {
            throw new MsgFormatException("A message must be a msgpack array.");
        }

        var value = MsgPack.Read(ref reader);
        if (!reader.End)
        {
            throw new MsgFormatException("Bytes follow the message array.");
        }

        var packets = value.AsArray();
        if (packets.Length < 4)
        {
            throw new MsgFormatException($"A message has at least 4 packets (type, sender, time, sub-flag); this one has {packets.Length}.");
        }

        if (!packets[0].TryGetInt32(out var type) || type is < 0 or > (int)MainFlag.Pong)
        {
            throw new MsgFormatException($"Unknown main flag {packets[0]}; known flags are 0 to 4.");
        }

        if (packets[1].Kind != MsgKind.Bin)
        {
            throw new MsgFormatException($"The sender must be a bin; got a {packets[1].Kind}.");
        }

        if (packets[2].Kind != MsgKind.Int || packets[2].AsInteger() > long.MaxValue)
        {
            throw new MsgFormatException($"The time must be an integer; got a {packets[2].Kind}.");
        }

        return new Message((MainFlag)type, packets[1].AsAscii(), packets[2].AsInt64(), packets[3..], packed, id);
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Type} from {Sender[..Math.Min(8, Sender.Length)]}… [{string.Join(", ", Payload)}]";
}
