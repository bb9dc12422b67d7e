namespace Chord.Bench;

/// <summary>An operation mix: the share of gets, the rest sets.</summary>
public sealed record Mix(string Name, int GetPercent)
{
    public static readonly Mix[] All = [new("100% get", 100), new("100% set", 0), new("90/10", 90)];

    /// <summary>True when this operation should be a get.</summary>
    public bool NextIsGet(Random random) => GetPercent == 100 || (GetPercent != 0 && random.Next(100) < GetPercent);
}
