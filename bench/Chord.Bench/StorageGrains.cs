namespace Chord.Bench;

/// <summary>The state the storage scenario persists: a payload and a counter that changes on every write.</summary>
[GenerateSerializer, Alias("chord.bench.BenchState")]
public sealed class BenchState
{
    [Id(0)]
    public byte[]? Payload { get; set; }

    [Id(1)]
    public long Writes { get; set; }
}

/// <summary>A grain that writes or re-reads its <c>[PersistentState]</c> on each call.</summary>
public interface IStorageBenchGrain : IGrainWithIntegerKey
{
    /// <summary>Sets the state to a payload of <paramref name="size"/> bytes (one byte changed each time) and calls WriteStateAsync.</summary>
    Task Write(int size);

    /// <summary>Calls ReadStateAsync and returns the payload's length.</summary>
    Task<int> Read();
}

/// <summary>The storage grain on Orleans' memory storage (provider "memory").</summary>
[Alias("chord.bench.IMemoryStateBenchGrain")]
public interface IMemoryStateBenchGrain : IStorageBenchGrain;

/// <summary>The storage grain on Orleans' Redis storage (provider "redis").</summary>
[Alias("chord.bench.IRedisStateBenchGrain")]
public interface IRedisStateBenchGrain : IStorageBenchGrain;

/// <summary>The storage grain on our ring (provider "chord").</summary>
[Alias("chord.bench.IChordStateBenchGrain")]
public interface IChordStateBenchGrain : IStorageBenchGrain;

/// <summary>What the three storage grains share; each subclass names its provider in <c>[PersistentState]</c>.</summary>
public abstract class StorageBenchGrain(IPersistentState<BenchState> state) : Grain, IStorageBenchGrain
{
    public async Task Write(int size)
    {
        var payload = state.State.Payload;
        if (payload is null || payload.Length != size)
        {
            payload = new byte[size];
            new Random(size).NextBytes(payload);
        }
        else
        {
            payload = (byte[])payload.Clone();
        }

        var writes = state.State.Writes + 1;
        payload[0] = (byte)writes;
        state.State.Payload = payload;
        state.State.Writes = writes;
        await state.WriteStateAsync();
    }

    public async Task<int> Read()
    {
        await state.ReadStateAsync();
        return state.State.Payload?.Length ?? 0;
    }
}

[GrainType("chord-bench-memory-state")]
public sealed class MemoryStateBenchGrain([PersistentState("bench", "memory")] IPersistentState<BenchState> state) : StorageBenchGrain(state), IMemoryStateBenchGrain;

[GrainType("chord-bench-redis-state")]
public sealed class RedisStateBenchGrain([PersistentState("bench", "redis")] IPersistentState<BenchState> state) : StorageBenchGrain(state), IRedisStateBenchGrain;

[GrainType("chord-bench-chord-state")]
public sealed class ChordStateBenchGrain([PersistentState("bench", "chord")] IPersistentState<BenchState> state) : StorageBenchGrain(state), IChordStateBenchGrain;
