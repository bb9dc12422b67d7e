using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>What one position answered to a lookup.</summary>
/// <param name="Method">The hash method of the position.</param>
/// <param name="Position">The position.</param>
/// <param name="Value">The value held there; nil when none.</param>
/// <param name="Hops">How many times the request was forwarded before it reached the owner (0: this node owns it).</param>
public sealed record RetrieveResult(HashMethod Method, RingPosition Position, MsgValue Value, int Hops);
