using System.Numerics;
using System.Text;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>Keys, values, brute-force ring arithmetic and batched reads/writes shared by the ring tests.</summary>
internal static class RingTestData
{
    /// <summary>How many operations run at once in the bulk helpers.</summary>
    public const int Batch = 50;

    /// <summary><paramref name="count"/> distinct keys with a distinct str value each.</summary>
    public static Dictionary<string, MsgValue> Entries(string prefix, int count) =>
        Enumerable.Range(0, count).ToDictionary(i => $"{prefix}-{i}", i => MsgValue.Str($"{prefix}-value-{i}"));

    /// <summary>The key's five positions, in method order.</summary>
    public static RingPosition[] Positions(string key) => KeyHashes.All(Encoding.UTF8.GetBytes(key));

    /// <summary>
    /// The owner of <paramref name="position"/> by brute force: the id with the smallest clockwise distance from
    /// itself to the position (PROTOCOL.md §5), over every storing id.
    /// </summary>
    public static string OwnerOf(IEnumerable<string> storingIds, RingPosition position) =>
        storingIds.MinBy(id => RingPosition.FromBase58(id).DistanceTo(position))
        ?? throw new InvalidOperationException("no storing node");

    /// <summary>The storing id nearest at or after <paramref name="position"/>, by brute force.</summary>
    public static string FirstAtOrAfter(IEnumerable<string> storingIds, RingPosition position) =>
        storingIds.MinBy(id => position.DistanceTo(RingPosition.FromBase58(id)))
        ?? throw new InvalidOperationException("no storing node");

    /// <summary>How many of the key's five positions <paramref name="id"/> owns among <paramref name="storingIds"/>.</summary>
    public static int PositionsOwnedBy(IReadOnlyCollection<string> storingIds, string key, string id) =>
        Positions(key).Count(p => OwnerOf(storingIds, p) == id);

    /// <summary>A uniformly random point of the 2^384 ring.</summary>
    public static RingPosition RandomPosition(Random random)
    {
        var bytes = new byte[48];
        random.NextBytes(bytes);
        return new RingPosition(new BigInteger(bytes, isUnsigned: true));
    }

    /// <summary>True when the reduced <paramref name="p"/> lies in the clockwise range [start, end) (start == end: everywhere).</summary>
    public static bool InRange(RingPosition start, RingPosition end, RingPosition p)
    {
        BigInteger a = start.Reduced.Value, b = end.Reduced.Value, x = p.Reduced.Value;
        return a == b || (a < b ? a <= x && x < b : x >= a || x < b);
    }

    /// <summary>Writes every entry, each through a randomly chosen node, <see cref="Batch"/> at a time.</summary>
    public static async Task WriteAllAsync(IReadOnlyList<RingNode> via, IReadOnlyDictionary<string, MsgValue> entries, int seed)
    {
        var random = new Random(seed);
        var plan = entries.Select(e => (Node: via[random.Next(via.Count)], e.Key, e.Value)).ToList();
        foreach (var chunk in plan.Chunk(Batch))
        {
            await Task.WhenAll(chunk.Select(w => w.Node.SetAsync(w.Key, w.Value)));
        }
    }

    /// <summary>
    /// Reads every entry back through <paramref name="via"/>, <see cref="Batch"/> at a time, and returns a description of
    /// each read that did not return the written value (wrong value or exception); empty when all read back.
    /// </summary>
    public static async Task<List<string>> ReadMismatchesAsync(RingNode via, IReadOnlyDictionary<string, MsgValue> entries)
    {
        var failures = new List<string>();
        foreach (var chunk in entries.Chunk(Batch))
        {
            var results = await Task.WhenAll(chunk.Select(async e =>
            {
                try
                {
                    var value = await via.GetAsync(e.Key);
                    return value == e.Value ? null : $"{e.Key}: read {value}, expected {e.Value}";
                }
                catch (Exception ex) when (ex is ChordKeyNotFoundException or ChordNoMajorityException or ChordTimeoutException)
                {
                    return $"{e.Key}: {ex.GetType().Name}: {ex.Message}";
                }
            }));
            failures.AddRange(results.OfType<string>());
        }

        return failures;
    }

    /// <summary>Reads every entry through each of <paramref name="via"/> and fails the test listing what did not read back.</summary>
    public static async Task AssertAllReadBackAsync(IEnumerable<RingNode> via, IReadOnlyDictionary<string, MsgValue> entries, string when)
    {
        foreach (var node in via)
        {
            var failures = await ReadMismatchesAsync(node, entries);
            Assert.True(failures.Count == 0,
                $"{when}: {failures.Count} of {entries.Count} keys did not read back through node {Short(node.Id)} "
                + $"({(node.IsLeeching ? "leeching" : "storing")}): {string.Join("; ", failures.Take(5))}");
        }
    }

    /// <summary>The first characters of an id, for messages.</summary>
    public static string Short(string id) => id[..Math.Min(10, id.Length)];
}
