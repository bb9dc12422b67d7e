namespace Chord.Dht.Tests.Ring;

/// <summary>
/// Tests that crash, freeze or cut off ring nodes and then wait, with wall-clock deadlines, for the ring's own
/// detection and repair (suspicion, dial checks, crash repair, placement copies) run alone, not beside the rest of the
/// suite: on a 2-core machine those deadlines measured the other tests' load, and clean-clone CI runs failed them
/// (keys lost when a repair had not finished before the next crashes, a thawed or suspected owner not answering within
/// a read's deadline) while they pass alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultScenarioCollection
{
    public const string Name = "Fault scenarios (run alone)";
}
