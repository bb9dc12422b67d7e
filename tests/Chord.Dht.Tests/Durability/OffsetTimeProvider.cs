namespace Chord.Dht.Tests.Durability;

/// <summary>The system clock moved by a fixed offset: a node whose clock is wrong by that much.</summary>
public sealed class OffsetTimeProvider(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}
