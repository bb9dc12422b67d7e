using System.Numerics;
using Chord.Dht.Wire;
using CsCheck;

namespace Chord.Dht.Tests.Wire;

/// <summary>RingPosition's comparison-only nearness agrees with the distance arithmetic it replaces on the routing path.</summary>
public class RingPositionPropertyTests
{
    // Random 384-bit points, and points at the edges (0, 2^384 − 1, and near each other) where the wrap-around bites.
    private static readonly Gen<RingPosition> Point = Gen.OneOf(
        Gen.Byte.Array[48].Select(b => new RingPosition(new BigInteger(b, isUnsigned: true))),
        Gen.Int[0, 3].Select(i => new RingPosition(i)),
        Gen.Int[1, 4].Select(i => new RingPosition(RingPosition.Limit - i)));

    [Fact]
    public void IsNearer_is_a_smaller_distance_to_the_target()
    {
        Gen.Select(Point, Point, Point).Sample((candidate, incumbent, target) =>
            Assert.Equal(candidate.DistanceTo(target) < incumbent.DistanceTo(target), RingPosition.IsNearer(candidate, incumbent, target)),
            iter: 5000);
    }

    [Fact]
    public void IsNearer_at_the_edges()
    {
        var max = new RingPosition(RingPosition.Limit - 1);
        var zero = new RingPosition(0);
        var one = new RingPosition(1);
        Assert.True(RingPosition.IsNearer(zero, max, zero)); // the target itself is nearest
        Assert.True(RingPosition.IsNearer(max, one, zero)); // max wraps to 1 before 0; 1 is 2^384 − 1 away
        Assert.False(RingPosition.IsNearer(one, one, zero)); // equal distances: not nearer
        Assert.True(RingPosition.IsNearer(one, zero, max));
    }

    [Fact]
    public void Reduced_keeps_a_reduced_position_and_wraps_a_larger_one()
    {
        var inside = new RingPosition(RingPosition.Limit - 1);
        Assert.Equal(inside, inside.Reduced);
        Assert.Equal(new RingPosition(5), new RingPosition(RingPosition.Limit + 5).Reduced);
        Assert.Equal(new RingPosition(0), new RingPosition(RingPosition.Limit).Reduced);
    }
}
