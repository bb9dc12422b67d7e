using System.Text;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime.Services;

namespace Chord.Grains;

/// <summary>Answers for this silo's ring node; see <see cref="IChordSiloService"/>.</summary>
[Reentrant]
internal sealed class ChordSiloService(GrainId id, Silo silo, ILoggerFactory loggerFactory, ChordSiloNode node)
    : GrainService(id, silo, loggerFactory), IChordSiloService
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    public Task<ChordSiloNodeInfo> GetNodeInfo() => Task.FromResult(node.DescribeSelf());

    public Task<IReadOnlyList<string>> ListStoredKeys(string? after, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var keys = new List<string>(Math.Min(limit, 1024));
        var from = after is null ? null : Encoding.UTF8.GetBytes(after);
        while (keys.Count < limit)
        {
            var wanted = limit - keys.Count;
            var page = node.Node.StoredKeys(from, wanted);
            foreach (var key in page)
            {
                // Keys that are not UTF-8 (written by a py2p node as bytes) cannot be named through the string API.
                try
                {
                    keys.Add(StrictUtf8.GetString(key));
                }
                catch (DecoderFallbackException)
                {
                }
            }

            if (page.Count < wanted)
            {
                break;
            }

            from = page[^1];
        }

        return Task.FromResult<IReadOnlyList<string>>(keys);
    }
}

/// <summary>Reaches <see cref="IChordSiloService"/> on a chosen silo.</summary>
internal sealed class ChordSiloServiceClient(IServiceProvider services)
    : GrainServiceClient<IChordSiloService>(services), IChordSiloServiceClient
{
    public IChordSiloService On(SiloAddress silo) => GetGrainService(silo);
}
