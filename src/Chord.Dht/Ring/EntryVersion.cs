using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// The version of a stored entry: a counter and the id of the node that wrote it. Versions order by counter, then
/// by writer id (ordinal), so two writers that pick the same counter are still ordered the same way everywhere.
/// Versions never come from a clock: a writer first asks a quorum for the highest version and writes counter + 1
/// (the ABD register), which keeps writes ordered even when nodes' clocks disagree.
/// </summary>
/// <param name="Counter">Increases with every write of the key.</param>
/// <param name="Writer">The node id of the writer (empty for the zero version).</param>
public readonly record struct EntryVersion(long Counter, string Writer) : IComparable<EntryVersion>
{
    /// <summary>The version below every written one.</summary>
    public static EntryVersion Zero { get; } = new(0, string.Empty);

    /// <summary>The version a writer uses after seeing <paramref name="highest"/>.</summary>
    public static EntryVersion After(EntryVersion highest, string writer) => new(highest.Counter + 1, writer);

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
    public MsgValue ToMsgValue() => MsgValue.Array(Counter, MsgValue.BinAscii(Writer));

    /// <summary>Reads the wire form; false when it is not one.</summary>
    public static bool TryRead(MsgValue value, out EntryVersion version)
    {
        version = Zero;
        if (value.Kind != MsgKind.Array || value.Count != 2)
        {
            return false;
        }

        var parts = value.AsArray();
        if (parts[0].Kind != MsgKind.Int || parts[0].AsInteger() < 0 || parts[0].AsInteger() > long.MaxValue || parts[1].Kind != MsgKind.Bin)
        {
            return false;
        }

        version = new EntryVersion(parts[0].AsInt64(), parts[1].AsAscii());
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Counter}@{(Writer.Length > 8 ? Writer[..8] : Writer)}";
}
