using Chord.Dht.Ring;
using Chord.Dht.Tests.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Durability;

/// <summary>Finds keys whose positions fall on the ring in a wanted way.</summary>
public static class RingTestKeys
{
    public static string WithOwnersSpread(RingTestCluster cluster, int minimumOwners) =>
        Search(cluster, owners => owners.Distinct().Count() >= minimumOwners).Key;

    public static (string Key, RingNode Owner) WithThreePositionsOnOneNode(RingTestCluster cluster)
    {
        var (key, owners) = Search(cluster, owners => owners.GroupBy(o => o).Any(g => g.Count() >= 3));
        var id = owners.GroupBy(o => o).First(g => g.Count() >= 3).Key;
        return (key, cluster.Nodes.Single(n => n.Id == id));
    }

    private static (string Key, List<string> Owners) Search(RingTestCluster cluster, Func<List<string>, bool> wanted)
    {
        var viewer = cluster.Nodes[0];
        for (var i = 0; i < 100_000; i++)
        {
            var key = $"probe-{i}";
            var owners = KeyHashes.All(RingNode.KeyBytes(key)).Select(p => viewer.Find(p)!.Id).ToList();
            if (wanted(owners))
            {
                return (key, owners);
            }
        }

        throw new InvalidOperationException("No key with the wanted placement among 100,000 probes.");
    }
}
