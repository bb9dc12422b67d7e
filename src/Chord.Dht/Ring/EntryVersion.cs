using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// A version of a stored entry, and the shape of a register ballot: a counter and the id of the node that made it.
/// Versions order by counter, then by writer id (ordinal), so two writers that pick the same counter are still
/// ordered the same way everywhere. Versions never come from a clock: a proposer picks a counter above every one a
/// quorum reported, which keeps writes ordered even when nodes' clocks disagree.
/// </summary>
/// <remarks>
/// <para>Counters from the wire are at most <see cref="MaxCounter"/> (2^53) and a writer id is at most
/// <see cref="MaxWriterLength"/> characters; anything else is refused where it is read. <see cref="After"/> is
/// checked: it never wraps, and throws at <see cref="MaxCounter"/>.</para>
/// <para>Headroom: a position takes a counter from the wire up to <see cref="HeadroomStart"/> (2^52, far beyond what
/// honest writers reach: a key written a million times a second takes 142 years) freely, and above it only within
/// <see cref="HeadroomStep"/> of the highest counter it already holds (RingNode checks this at the owner). So a peer
/// can park a key at 2^52 at most, where honest writes still follow it one step at a time; reaching the end of the
/// range from there takes 2^51 messages per position.</para>
/// </remarks>
/// <param name="Counter">Increases with every write of the key.</param>
/// <param name="Writer">The node id of the writer (empty for the zero version).</param>
public readonly record struct EntryVersion(long Counter, string Writer) : IComparable<EntryVersion>
{
    /// <summary>The version below every written one.</summary>
    public static EntryVersion Zero { get; } = new(0, string.Empty);

    /// <summary>The largest counter a version from the wire may carry, and the end of the range: no version follows it.</summary>
    public const long MaxCounter = 1L << 53;

    /// <summary><see cref="MaxCounter"/> as log and error messages write it.</summary>
    internal const string MaxWireCounterText = "2^53";

    /// <summary>
    /// The largest counter a position takes from the wire whatever it holds; above it, only a counter within
    /// <see cref="HeadroomStep"/> of the position's own highest one (the room honest writes need to follow a version
    /// parked at the top of what the wire introduces).
    /// </summary>
    public const long HeadroomStart = 1L << 52;

    /// <summary>How far above the highest counter a position holds a counter past <see cref="HeadroomStart"/> may go (an accept's ballot and the next ballot it asks to promise).</summary>
    public const long HeadroomStep = 2;

    /// <summary><see cref="HeadroomStart"/> as log messages write it.</summary>
    internal const string HeadroomStartText = "2^52";

    /// <summary>The longest writer id a version from the wire may carry (a node id is 64 to 90 base58 digits).</summary>
    public const int MaxWriterLength = 128;

    /// <summary>The version a writer uses after seeing <paramref name="highest"/>.</summary>
    /// <exception cref="ChordWriteException">The counter is already at <see cref="MaxCounter"/>: no later version exists.</exception>
    public static EntryVersion After(EntryVersion highest, string writer) =>
        highest.Counter < MaxCounter
            ? new(highest.Counter + 1, writer)
            : throw new ChordWriteException($"No version follows {highest}: counters stop at {MaxCounter} (2^53).", 0);

    /// <summary>
    /// A version <paramref name="skip"/> counters beyond <see cref="After"/>, for a proposer that must overtake a
    /// writer whose counter moves on while its own prepare travels; <see cref="After"/> itself once that would pass
    /// <see cref="HeadroomStart"/> (above it the owners accept steps of <see cref="HeadroomStep"/> only).
    /// </summary>
    /// <exception cref="ChordWriteException">The counter is already at <see cref="MaxCounter"/>: no later version exists.</exception>
    public static EntryVersion Beyond(EntryVersion highest, string writer, int skip) =>
        skip > 0 && highest.Counter < HeadroomStart - skip ? new(highest.Counter + 1 + skip, writer) : After(highest, writer);

    /// <summary>True when the counter and writer are in the range a version from the wire may take.</summary>
    public bool IsInRange => Counter is >= 0 and <= MaxCounter && Writer.Length <= MaxWriterLength;

    /// <inheritdoc />
    public int CompareTo(EntryVersion other)
    {
        var byCounter = Counter.CompareTo(other.Counter);
        return byCounter != 0 ? byCounter : string.CompareOrdinal(Writer, other.Writer);
    }

    /// <summary>Order.</summary>
    public static bool operator <(EntryVersion left, EntryVersion right) => left.CompareTo(right) < 0;

    /// <summary>Order.</summary>
    public static bool operator >(EntryVersion left, EntryVersion right) => left.CompareTo(right) > 0;

    /// <summary>Order.</summary>
    public static bool operator <=(EntryVersion left, EntryVersion right) => left.CompareTo(right) <= 0;

    /// <summary>Order.</summary>
    public static bool operator >=(EntryVersion left, EntryVersion right) => left.CompareTo(right) >= 0;

    /// <summary>The wire form: <c>[counter, writer(bin)]</c>.</summary>
    public MsgValue ToMsgValue() => MsgValue.Array(Counter, WireCache.WriterBin(Writer));

    /// <summary>Writes <paramref name="version"/>'s wire form (the bytes <see cref="ToMsgValue"/> packs to), or nil for none.</summary>
    internal static void Write(ref MessagePack.MessagePackWriter writer, EntryVersion? version)
    {
        if (version is not { } v)
        {
            writer.WriteNil();
            return;
        }

        writer.WriteArrayHeader(2);
        if (v.Counter < 0)
        {
            writer.Write(v.Counter);
        }
        else
        {
            writer.Write((ulong)v.Counter); // the uint family for non-negative integers, as MsgPack.Write packs them
        }

        MsgPack.Write(ref writer, WireCache.WriterBin(v.Writer));
    }

    /// <summary>
    /// Reads the next value of <paramref name="reader"/> (checked msgpack) as <see cref="TryRead(MsgValue, out EntryVersion)"/>
    /// would read it, without making values of it: the version, or null when it is nil or not a version's wire form.
    /// </summary>
    internal static EntryVersion? ReadOrNull(ref MessagePack.MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePack.MessagePackType.Array)
        {
            reader.Skip(); // nil, or anything else
            return null;
        }

        var count = reader.ReadArrayHeader();
        if (count != 2)
        {
            MsgPack.SkipItems(ref reader, count);
            return null;
        }

        long counter = -1;
        if (reader.NextMessagePackType == MessagePack.MessagePackType.Integer)
        {
            if (reader.NextCode == MessagePack.MessagePackCode.UInt64)
            {
                var big = reader.ReadUInt64();
                counter = big <= MaxCounter ? (long)big : -1;
            }
            else
            {
                counter = reader.ReadInt64();
            }
        }
        else
        {
            reader.Skip();
        }

        if (reader.NextMessagePackType != MessagePack.MessagePackType.Binary)
        {
            reader.Skip();
            return null;
        }

        var writer = reader.ReadBytes()!.Value;
        if (counter < 0 || counter > MaxCounter || writer.Length > MaxWriterLength)
        {
            return null;
        }

        return new EntryVersion(counter, writer.IsSingleSegment ? SenderIds.Get(writer.FirstSpan) : SenderIds.Get(System.Buffers.BuffersExtensions.ToArray(writer)));
    }

    /// <summary>Reads the wire form; false when it is not one.</summary>
    public static bool TryRead(MsgValue value, out EntryVersion version)
    {
        version = Zero;
        if (value.Kind != MsgKind.Array || value.Count != 2)
        {
            return false;
        }

        var parts = value.AsArray();
        if (parts[0].Kind != MsgKind.Int || parts[0].AsInteger() < 0 || parts[0].AsInteger() > MaxCounter
            || parts[1].Kind != MsgKind.Bin || parts[1].AsBytes().Length > MaxWriterLength)
        {
            return false;
        }

        version = new EntryVersion(parts[0].AsInt64(), SenderIds.Get(parts[1].AsBytes().Span)); // writer ids are node ids: the same few
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Counter}@{(Writer.Length > 8 ? Writer[..8] : Writer)}";
}
