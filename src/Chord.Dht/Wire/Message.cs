using System.Buffers;
using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.InteropServices;
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
    private MessageId _id;
    private volatile bool _hasId;
    private ReadOnlyMemory<byte> _packed;
    private volatile bool _hasPacked;

    private Message(MainFlag type, string sender, long time, ImmutableArray<MsgValue> payload, ReadOnlyMemory<byte>? packed, MessageId? id)
    {
        Type = type;
        Sender = sender;
        Time = time;
        Payload = payload;
        if (packed is { } bytes)
        {
            _packed = bytes;
            _hasPacked = true;
        }

        if (id is { } known)
        {
            _id = known;
            _hasId = true;
        }
    }

    /// <summary>How the message travels.</summary>
    public MainFlag Type { get; }

    /// <summary>The sender's node id (base58; a bin on the wire).</summary>
    public string Sender { get; }

    /// <summary>The sender's clock when it was made, in whole Unix seconds.</summary>
    public long Time { get; }

    /// <summary>The payload packets, <c>p0</c> first.</summary>
    public ImmutableArray<MsgValue> Payload { get; }

    /// <summary>
    /// The packed message S, whose SHA-256 is <see cref="Id"/>. A whisper made by <see cref="CreateUnpacked"/> is packed
    /// only when something asks for this (a digest, a resend); the write loop encodes it straight into its frame.
    /// </summary>
    public ReadOnlyMemory<byte> Packed
    {
        get
        {
            if (!_hasPacked)
            {
                // Two threads may both pack it: the encoding is deterministic, so they write the same bytes.
                var buffer = ScratchBuffer.Rent();
                try
                {
                    WritePacked(buffer);
                    _packed = buffer.WrittenSpan.ToArray();
                    _hasPacked = true;
                }
                finally
                {
                    ScratchBuffer.Return(buffer);
                }
            }

            return _packed;
        }
    }

    /// <summary>True when <see cref="Packed"/> is already made (always, except for a whisper made unpacked and not asked for it yet).</summary>
    internal bool IsPacked => _hasPacked;

    /// <summary>
    /// The message id, the SHA-256 of <see cref="Packed"/>: computed on first use. Only a broadcast (whose id is how
    /// a node knows it has seen it) and a frame to a peer that checks digests need it; a whisper between two of our
    /// nodes goes with a bare digest (docs/PROTOCOL-EXTENSIONS.md) and never hashes.
    /// </summary>
    public MessageId Id
    {
        get
        {
            if (!_hasId)
            {
                // Two threads may both compute it: they write the same 32 bytes, and the flag is set after them.
                Span<byte> digest = stackalloc byte[32];
                SHA256.HashData(Packed.Span, digest);
                _id = MessageId.FromDigest(digest);
                _hasId = true;
            }

            return _id;
        }
    }

    /// <summary>The sub-flag (<c>p0</c>) when it is a small integer; otherwise null.</summary>
    public int? SubFlagValue => Payload.Length > 0 && Payload[0].TryGetInt32(out var flag) ? flag : null;

    /// <summary>True when <c>p0</c> is <paramref name="flag"/>.</summary>
    public bool Is(SubFlag flag) => SubFlagValue == (int)flag;

    /// <summary>Builds a message and its packed form (its id is computed when first asked for).</summary>
    public static Message Create(MainFlag type, string sender, long time, params ReadOnlySpan<MsgValue> payload) =>
        payload.IsEmpty ? throw NoSubFlag(nameof(payload)) : Create(type, sender, time, ImmutableArray.Create(payload));

    private static ArgumentException NoSubFlag(string parameter) => new("A message needs at least its sub-flag packet.", parameter);

    /// <summary>
    /// A message over <paramref name="payload"/> itself, without a copy (the caller gives the array up: one built for
    /// this message and never changed after), that is not packed until it is written: the write loop of a connection
    /// that takes bare digests encodes it into its frame through a reused buffer, with no byte[] of its own (one per
    /// request and answer otherwise). Anything that asks for <see cref="Packed"/> or <see cref="Id"/> packs it then.
    /// </summary>
    internal static Message CreateUnpacked(MainFlag type, string sender, long time, MsgValue[] payload)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return payload.Length == 0 ? throw NoSubFlag(nameof(payload)) : new Message(type, sender, time, ImmutableCollectionsMarshal.AsImmutableArray(payload), packed: null, id: null);
    }

    private static Message Create(MainFlag type, string sender, long time, ImmutableArray<MsgValue> items)
    {
        ArgumentNullException.ThrowIfNull(sender);
        var message = new Message(type, sender, time, items, packed: null, id: null);
        _ = message.Packed; // packed now: a broadcast's id is how nodes know it, and a caller may share the message
        return message;
    }

    /// <summary>Writes the packed message (<c>[msg_type, sender, time, p0, ...]</c>) into <paramref name="buffer"/>.</summary>
    internal void WritePacked(IBufferWriter<byte> buffer)
    {
        var senderBytes = ArrayPool<byte>.Shared.Rent(Encoding.ASCII.GetMaxByteCount(Sender.Length));
        try
        {
            // The sender id (base58, ASCII) goes out as a bin without a byte[] of its own.
            var senderLength = Encoding.ASCII.GetBytes(Sender, senderBytes);
            var writer = new MessagePackWriter(buffer);
            writer.WriteArrayHeader(3 + Payload.Length);
            writer.Write((byte)Type);
            writer.Write(senderBytes.AsSpan(0, senderLength));
            if (Time < 0)
            {
                writer.Write(Time);
            }
            else
            {
                writer.Write((ulong)Time);
            }

            foreach (var item in Payload)
            {
                MsgPack.Write(ref writer, item);
            }

            writer.Flush();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(senderBytes);
        }
    }

    /// <summary>
    /// Parses a packed message whose digest has already been checked (or was bare, from a peer that sends them: then
    /// <paramref name="id"/> is null and computed on first use). Throws <see cref="MsgFormatException"/>
    /// when it is not <c>[msg_type(int), sender(bin), time(int), p0, ...]</c> or names an unknown main flag.
    /// </summary>
    internal static Message Parse(ReadOnlyMemory<byte> packed, MessageId? id)
    {
        // The header (type, sender, time) is read in place: no value objects for it, and the sender id, the same few
        // strings on every frame of a ring, comes from SenderIds. The packets become the payload without a copy.
        var reader = new MessagePackReader(packed);
        if (reader.NextMessagePackType != MessagePackType.Array)
        {
            throw new MsgFormatException("A message must be a msgpack array.");
        }

        int count;
        int type;
        string sender;
        long time;
        try
        {
            count = reader.ReadArrayHeader(); // checks the count against the bytes left
            if (count < 4)
            {
                throw new MsgFormatException($"A message has at least 4 packets (type, sender, time, sub-flag); this one has {count}.");
            }

            var flag = ReadInteger(ref reader);
            if (flag is not { } known || known is < 0 or > (int)MainFlag.Pong)
            {
                throw new MsgFormatException($"Unknown main flag {(flag is { } f ? f.ToString(CultureInfo.InvariantCulture) : "(not an integer)")}; known flags are 0 to 4.");
            }

            type = (int)known;
            if (reader.NextMessagePackType != MessagePackType.Binary)
            {
                throw new MsgFormatException($"The sender must be a bin; got a {reader.NextMessagePackType}.");
            }

            var senderBytes = reader.ReadBytes() ?? throw new MsgFormatException("Truncated msgpack bin.");
            sender = senderBytes.IsSingleSegment ? SenderIds.Get(senderBytes.FirstSpan) : SenderIds.Get(senderBytes.ToArray());
            time = ReadInteger(ref reader) ?? throw new MsgFormatException("The time must be an integer from -2^63 to 2^63-1.");
        }
        catch (Exception e) when (MsgPack.AsFormatError(e) is { } error)
        {
            throw error;
        }

        // The message owns its packed bytes and they never change: its bins are slices of them, not copies. A packet a
        // handler reads in place (ReadInPlace) is checked and kept as its bytes.
        var inPlace = type == (int)MainFlag.Whisper ? InPlacePacketOf(ref reader) : -1;
        var packets = inPlace > 0 && MemoryMarshal.TryGetArray(packed, out var segment)
            ? MsgPack.ReadMany(ref reader, count - 3, segment, inPlace)
            : MsgPack.ReadMany(ref reader, count - 3, shareInput: true);
        if (!reader.End)
        {
            throw new MsgFormatException("Bytes follow the message array.");
        }

        return new Message((MainFlag)type, sender, time, ImmutableCollectionsMarshal.AsImmutableArray(packets), packed, id);
    }

    // By whisper sub-flag (0-255): the index (from p0) of the packet handlers read in place, or 0 for none.
    private static readonly int[] InPlacePackets = new int[256];

    /// <summary>
    /// From now on, in a whisper whose sub-flag is <paramref name="subFlag"/>, the packet at <paramref name="packet"/>
    /// (counted from p0), when it is an array, is checked as it arrives but not made into values: it stays as its bytes
    /// (<see cref="MsgValue.PreEncoded"/>) for a handler that reads it where it lies (the entries of our batch answers:
    /// their value trees were most of what reading one allocated). It still reads as an array wherever else it is
    /// read. For our own sub-flags only, set once by the layer that owns them.
    /// </summary>
    internal static void ReadInPlace(int subFlag, int packet)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(subFlag);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(subFlag, 255);
        ArgumentOutOfRangeException.ThrowIfLessThan(packet, 1);
        Volatile.Write(ref InPlacePackets[subFlag], packet);
    }

    private static int InPlacePacketOf(ref MessagePackReader reader)
    {
        // Only p0's first byte, which nothing can make throw: a positive fixint is the flag itself (our sub-flags are
        // all below 0x80); anything else (another encoding, a truncated p0) is read as a tree, and refused there.
        if (reader.End)
        {
            return -1;
        }

        var code = reader.NextCode;
        return code <= MessagePackCode.MaxFixInt ? Volatile.Read(ref InPlacePackets[code]) : -1;
    }

    /// <summary>Reads an integer of up to 2^63-1; null (nothing read) when the next value is not one, or is larger.</summary>
    private static long? ReadInteger(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.Integer)
        {
            return null;
        }

        if (reader.NextCode != MessagePackCode.UInt64)
        {
            return reader.ReadInt64();
        }

        var value = reader.ReadUInt64();
        return value <= long.MaxValue ? (long)value : null;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Type} from {Sender[..Math.Min(8, Sender.Length)]}… [{string.Join(", ", Payload)}]";
}
