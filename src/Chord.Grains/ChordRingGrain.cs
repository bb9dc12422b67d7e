using Chord.Dht.Wire;
using Chord.Interfaces;
using Orleans.Concurrency;

namespace Chord.Grains;

/// <summary>
/// The ring as the local silo's node sees it, with what each silo's node says about itself. A stateless worker:
/// every silo answers from its own node, with no hop to another silo for the directory.
/// </summary>
[StatelessWorker]
internal sealed class ChordRingGrain(ChordSiloNode silo, IChordSiloServiceClient services, IClusterMembershipService membership) : Grain, IChordRingGrain
{
    private const int MaxPage = 10_000;

    public async Task<ChordRingStatus> GetStatus()
    {
        var node = silo.Node;
        var infos = await AskActiveSilosAsync(s => s.GetNodeInfo());
        var byNode = infos.ToDictionary(i => i.NodeId, StringComparer.Ordinal);
        var members = node.Members.Append(node.Self).ToList();
        var storing = members.Where(m => m.IsStoring).OrderBy(m => m.Position).ToList();
        var shares = new Dictionary<string, double>(StringComparer.Ordinal);
        for (var i = 0; i < storing.Count; i++)
        {
            // A position's owner is the storing member nearest at or before it: each owns the arc up to its successor.
            var successor = storing[(i + 1) % storing.Count];
            var arc = storing.Count == 1 ? RingPosition.Limit : storing[i].Position.DistanceTo(successor.Position);
            shares[storing[i].Id] = (double)(arc * 1_000_000 / RingPosition.Limit) / 1_000_000;
        }

        var report = storing.Concat(members.Where(m => !m.IsStoring).OrderBy(m => m.Id, StringComparer.Ordinal))
            .Select(m => new ChordRingMember(
                m.Id,
                m.Address.ToString(),
                byNode.TryGetValue(m.Id, out var info) ? info.Silo : null,
                m.IsStoring,
                byNode.TryGetValue(m.Id, out info) ? info.KeyCount : null,
                shares.GetValueOrDefault(m.Id),
                byNode.TryGetValue(m.Id, out info) ? info.OwnedCount : null,
                node.IsSuspect(m.Id)))
            .ToList();
        return new ChordRingStatus(node.Id, report);
    }

    public async Task<ChordKeyPage> ListKeys(string? after, int limit)
    {
        if (limit is < 1 or > MaxPage)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, $"limit is {limit}; allowed: 1 to {MaxPage}.");
        }

        // Every key has positions on several silos: ask each for its first keys after 'after', merge, de-duplicate.
        var pages = await AskActiveSilosAsync(s => s.ListStoredKeys(after, limit + 1));
        var keys = new SortedSet<string>(pages.SelectMany(p => p), StringComparer.Ordinal);
        var page = keys.Take(limit).ToList();
        return new ChordKeyPage(page, keys.Count > limit ? page[^1] : null);
    }

    /// <summary>Asks every active silo's node (this one included); silos that fail to answer are left out.</summary>
    private async Task<List<T>> AskActiveSilosAsync<T>(Func<IChordSiloService, Task<T>> ask)
    {
        var silos = membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToList();
        var timeout = silo.Node.Options.RequestTimeout;
        var tasks = silos.Select(s => ask(services.On(s)).WaitAsync(timeout)).ToList();
        try
        {
            await Task.WhenAll(tasks);
        }
        catch (Exception)
        {
            // Some silo did not answer (stopping, or unreachable): report the others.
        }

        return [.. tasks.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result)];
    }
}
