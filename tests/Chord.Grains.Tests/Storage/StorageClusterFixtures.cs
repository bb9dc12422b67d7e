using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Chord.Grains.Tests.Storage;

/// <summary>A 3-silo cluster with the grain storage "chord" in one clear mode, shared by the tests of a class.</summary>
public abstract class StorageClusterFixture(ChordStorageMode mode) : IAsyncLifetime
{
    private ChordTestCluster? _cluster;

    public ChordStorageMode Mode => mode;

    public ChordTestCluster Chord => _cluster ?? throw new InvalidOperationException("The cluster is not started.");

    /// <summary>The provider "chord" of the silo at <paramref name="index"/>.</summary>
    public IGrainStorage Storage(int index = 0) => StorageOf(Chord.Cluster.Silos[index]);

    public static IGrainStorage StorageOf(SiloHandle silo) =>
        ((InProcessSiloHandle)silo).SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(ChordTestCluster.StorageName);

    public async Task InitializeAsync() => _cluster = await ChordTestCluster.StartAsync(3, mode);

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}

/// <summary>The cluster with DeleteStateOnClear = false, shared by every test class of its collection.</summary>
public sealed class TombstoneStorageCluster() : StorageClusterFixture(ChordStorageMode.Tombstone)
{
    public const string Collection = "grain storage, tombstone clear";
}

/// <summary>The cluster with DeleteStateOnClear = true, shared by every test class of its collection.</summary>
public sealed class DeleteStorageCluster() : StorageClusterFixture(ChordStorageMode.Delete)
{
    public const string Collection = "grain storage, delete clear";
}

[CollectionDefinition(TombstoneStorageCluster.Collection)]
public sealed class TombstoneStorageCollection : ICollectionFixture<TombstoneStorageCluster>;

[CollectionDefinition(DeleteStorageCluster.Collection)]
public sealed class DeleteStorageCollection : ICollectionFixture<DeleteStorageCluster>;
