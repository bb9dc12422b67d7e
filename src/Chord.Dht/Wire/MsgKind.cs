namespace Chord.Dht.Wire;

/// <summary>The msgpack families a <see cref="MsgValue"/> can hold.</summary>
public enum MsgKind
{
    /// <summary>nil (Python <c>None</c>).</summary>
    Nil,
    /// <summary>true / false.</summary>
    Bool,
    /// <summary>Any integer from int64's minimum to uint64's maximum.</summary>
    Int,
    /// <summary>float32 or float64; the width is kept.</summary>
    Float,
    /// <summary>A UTF-8 text (fixstr, str 8/16/32; Python <c>str</c>).</summary>
    Str,
    /// <summary>Raw bytes (bin 8/16/32; Python <c>bytes</c>).</summary>
    Bin,
    /// <summary>An array (Python list or tuple).</summary>
    Array,
    /// <summary>A map (Python dict); entry order is kept but not significant for equality.</summary>
    Map,
    /// <summary>An extension type, kept as its type code and raw bytes.</summary>
    Ext,
}
