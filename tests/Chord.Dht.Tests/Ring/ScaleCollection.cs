namespace Chord.Dht.Tests.Ring;

/// <summary>Tests that start hundreds of nodes run alone, not beside other test classes on a 2-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ScaleCollection
{
    public const string Name = "Scale (runs alone)";
}
