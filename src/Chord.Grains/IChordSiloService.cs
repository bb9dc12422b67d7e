using Orleans.Concurrency;
using Orleans.Services;

namespace Chord.Grains;

/// <summary>What a silo's ring node tells other silos about itself.</summary>
/// <param name="NodeId">Its ring node id.</param>
/// <param name="Address">Where other nodes dial it (host:port).</param>
/// <param name="Silo">The silo's address.</param>
/// <param name="IsStoring">True once it has joined the ring.</param>
/// <param name="KeyCount">Live entries it stores, placement copies included.</param>
/// <param name="OwnedCount">Live entries at positions it owns (from its position up to the next storing member's): placement copies excluded.</param>
[GenerateSerializer, Immutable, Alias("chord.silo-node-info")]
public sealed record ChordSiloNodeInfo(
    [property: Id(0)] string NodeId,
    [property: Id(1)] string Address,
    [property: Id(2)] string Silo,
    [property: Id(3)] bool IsStoring,
    [property: Id(4)] int KeyCount,
    [property: Id(5)] int OwnedCount = 0);

/// <summary>
/// A grain service, so one runs in every silo and can be called on a chosen silo: this is how silos publish their
/// ring endpoints to each other. The endpoint is only known once the node has bound its port (port 0 by default),
/// after the silo's static metadata is fixed, so it cannot go in the silo metadata.
/// </summary>
[Alias("chord.IChordSiloService")]
public interface IChordSiloService : IGrainService
{
    /// <summary>This silo's ring node.</summary>
    [ReadOnly, AlwaysInterleave, Alias("node-info")]
    Task<ChordSiloNodeInfo> GetNodeInfo();

    /// <summary>The keys this silo's node stores, after <paramref name="after"/> in ordinal order, at most <paramref name="limit"/>.</summary>
    [ReadOnly, AlwaysInterleave, Alias("stored-keys")]
    Task<IReadOnlyList<string>> ListStoredKeys(string? after, int limit);
}

/// <summary>Calls <see cref="IChordSiloService"/> on a chosen silo.</summary>
public interface IChordSiloServiceClient
{
    /// <summary>The service of the silo at <paramref name="silo"/>.</summary>
    IChordSiloService On(SiloAddress silo);
}
