using System.Numerics;

namespace Chord.Dht.Wire;

/// <summary>
/// A point on the 2^384 ring: a node id or a key's hash under one method.
/// </summary>
/// <remarks>
/// The value is kept as given, so sha512 positions stay 512 bits wide as py2p keeps them (they are table keys
/// and go on the wire at full width). Only <see cref="DistanceTo"/> reduces modulo 2^384: the clockwise distance
/// from <c>a</c> to <c>b</c> is <c>(b - a) mod 2^384</c>, zero for a point and itself, and
/// <c>d(a,b) + d(b,a) = 2^384</c> for distinct points.
/// </remarks>
public readonly struct RingPosition : IEquatable<RingPosition>, IComparable<RingPosition>
{
    /// <summary>2^384: the number of points on the ring.</summary>
    public static readonly BigInteger Limit = BigInteger.One << 384;

    private static readonly BigInteger Mask = Limit - 1;

    /// <summary>Wraps a non-negative integer.</summary>
    public RingPosition(BigInteger value)
    {
        if (value.Sign < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "A ring position is a non-negative integer.");
        }

        Value = value;
    }

    /// <summary>The integer value, unreduced.</summary>
    public BigInteger Value { get; }

    /// <summary>The position on the ring proper, reduced modulo 2^384.</summary>
    /// <remarks>Every position a hash or a node id gives is reduced already; those are returned as they are, unallocated.</remarks>
    public RingPosition Reduced => Value < Limit ? this : new(Value & Mask);

    /// <summary>Reads a base58 position or node id.</summary>
    public static RingPosition FromBase58(ReadOnlySpan<char> text) => new(Base58.Decode(text));

    /// <summary>Reads a base58 position or node id from its ASCII bytes.</summary>
    public static RingPosition FromBase58(ReadOnlySpan<byte> ascii) => new(Base58.Decode(ascii));

    /// <summary>The base58 text, as on the wire.</summary>
    public string ToBase58() => Base58.Encode(Value);

    /// <summary>The clockwise distance from this point to <paramref name="target"/>, in [0, 2^384).</summary>
    public BigInteger DistanceTo(RingPosition target) => (target.Value - Value) & Mask;

    /// <summary>
    /// True when <paramref name="candidate"/> is nearer at or before <paramref name="target"/> than
    /// <paramref name="incumbent"/> is: <c>candidate.DistanceTo(target) &lt; incumbent.DistanceTo(target)</c>, decided
    /// by comparisons alone (no big-integer arithmetic, nothing allocated). All three must be reduced.
    /// </summary>
    /// <remarks>
    /// A point at or before the target (p ≤ t) is t − p away, at most t; a point after it wraps, t − p + 2^384 away,
    /// more than t. So every point at or before the target is nearer than every point after it, and within each
    /// group the greater point is the nearer.
    /// </remarks>
    public static bool IsNearer(RingPosition candidate, RingPosition incumbent, RingPosition target)
    {
        var candidateBefore = candidate.Value <= target.Value;
        var incumbentBefore = incumbent.Value <= target.Value;
        return candidateBefore != incumbentBefore ? candidateBefore : candidate.Value > incumbent.Value;
    }

    /// <summary>The clockwise distance from <paramref name="from"/> to <paramref name="to"/>.</summary>
    public static BigInteger Distance(RingPosition from, RingPosition to) => from.DistanceTo(to);

    /// <summary>This point moved clockwise by <paramref name="offset"/>, reduced onto the ring.</summary>
    public RingPosition Add(BigInteger offset) => new((Value + offset) & Mask);

    /// <inheritdoc />
    public bool Equals(RingPosition other) => Value.Equals(other.Value);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is RingPosition other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => Value.GetHashCode();

    /// <inheritdoc />
    public int CompareTo(RingPosition other) => Value.CompareTo(other.Value);

    /// <summary>Equality.</summary>
    public static bool operator ==(RingPosition left, RingPosition right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(RingPosition left, RingPosition right) => !left.Equals(right);

    /// <summary>Order by integer value.</summary>
    public static bool operator <(RingPosition left, RingPosition right) => left.CompareTo(right) < 0;

    /// <summary>Order by integer value.</summary>
    public static bool operator >(RingPosition left, RingPosition right) => left.CompareTo(right) > 0;

    /// <summary>Order by integer value.</summary>
    public static bool operator <=(RingPosition left, RingPosition right) => left.CompareTo(right) <= 0;

    /// <summary>Order by integer value.</summary>
    public static bool operator >=(RingPosition left, RingPosition right) => left.CompareTo(right) >= 0;

    /// <inheritdoc />
    public override string ToString() => ToBase58();
}
