namespace Chord.Grains.Tests.Storage;

/// <summary>The state the conformance tests store: a string (Cyrillic too), an int and a long.</summary>
[GenerateSerializer, Alias("chord-tests.test-state")]
public sealed record TestState
{
    [Id(0)]
    public string? A { get; set; }

    [Id(1)]
    public int B { get; set; }

    [Id(2)]
    public long C { get; set; }
}

/// <summary>What a grain's persistent state looks like from inside the grain.</summary>
[GenerateSerializer, Immutable, Alias("chord-tests.state-view")]
public sealed record StateView([property: Id(0)] TestState State, [property: Id(1)] string? ETag, [property: Id(2)] bool RecordExists);

/// <summary>A grain with one state "state" in the storage "chord", whatever its key kind.</summary>
public interface IStateGrain : IGrain
{
    /// <summary>The state as the activation holds it (read at activation).</summary>
    Task<StateView> Get();

    /// <summary>Sets the state and writes it.</summary>
    Task<StateView> Write(TestState value);

    /// <summary>Reads the state again from storage.</summary>
    Task<StateView> Reread();

    /// <summary>Clears the state in storage.</summary>
    Task<StateView> Clear();

    /// <summary>Ends this activation, so the next call reads the state afresh.</summary>
    Task Deactivate();
}

[Alias("chord-tests.IStringStateGrain")]
public interface IStringStateGrain : IStateGrain, IGrainWithStringKey;

[Alias("chord-tests.IIntegerStateGrain")]
public interface IIntegerStateGrain : IStateGrain, IGrainWithIntegerKey;

[Alias("chord-tests.IGuidStateGrain")]
public interface IGuidStateGrain : IStateGrain, IGrainWithGuidKey;

[Alias("chord-tests.ICompoundStateGrain")]
public interface ICompoundStateGrain : IStateGrain, IGrainWithIntegerCompoundKey;

/// <summary>Two states of one grain, to show they are separate records.</summary>
[Alias("chord-tests.ITwoStatesGrain")]
public interface ITwoStatesGrain : IGrainWithStringKey
{
    Task Write(TestState firstValue, TestState secondValue);

    Task<(TestState First, TestState Second)> Reread();

    Task ClearFirst();
}

/// <summary>A generic grain: each type argument is a different grain type, so a different record.</summary>
[Alias("chord-tests.IGenericStateGrain`1")]
public interface IGenericStateGrain<T> : IGrainWithStringKey
{
    Task Write(T value);

    Task<T?> Reread();
}

public abstract class StateGrainBase(IPersistentState<TestState> state) : Grain, IStateGrain
{
    public Task<StateView> Get() => Task.FromResult(View());

    public async Task<StateView> Write(TestState value)
    {
        state.State = value;
        await state.WriteStateAsync();
        return View();
    }

    public async Task<StateView> Reread()
    {
        await state.ReadStateAsync();
        return View();
    }

    public async Task<StateView> Clear()
    {
        await state.ClearStateAsync();
        return View();
    }

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private StateView View() => new(state.State with { }, state.Etag, state.RecordExists);
}

public sealed class StringStateGrain([PersistentState("state", ChordTestCluster.StorageName)] IPersistentState<TestState> state) : StateGrainBase(state), IStringStateGrain;

public sealed class IntegerStateGrain([PersistentState("state", ChordTestCluster.StorageName)] IPersistentState<TestState> state) : StateGrainBase(state), IIntegerStateGrain;

public sealed class GuidStateGrain([PersistentState("state", ChordTestCluster.StorageName)] IPersistentState<TestState> state) : StateGrainBase(state), IGuidStateGrain;

public sealed class CompoundStateGrain([PersistentState("state", ChordTestCluster.StorageName)] IPersistentState<TestState> state) : StateGrainBase(state), ICompoundStateGrain;

public sealed class TwoStatesGrain(
    [PersistentState("first", ChordTestCluster.StorageName)] IPersistentState<TestState> first,
    [PersistentState("second", ChordTestCluster.StorageName)] IPersistentState<TestState> second) : Grain, ITwoStatesGrain
{
    public async Task Write(TestState firstValue, TestState secondValue)
    {
        first.State = firstValue;
        second.State = secondValue;
        await first.WriteStateAsync();
        await second.WriteStateAsync();
    }

    public async Task<(TestState First, TestState Second)> Reread()
    {
        await first.ReadStateAsync();
        await second.ReadStateAsync();
        return (first.State, second.State);
    }

    public Task ClearFirst() => first.ClearStateAsync();
}

/// <summary>The state of the generic grain.</summary>
[GenerateSerializer, Alias("chord-tests.generic-state`1")]
public sealed class GenericState<T>
{
    [Id(0)]
    public T? Value { get; set; }
}

public sealed class GenericStateGrain<T>([PersistentState("value", ChordTestCluster.StorageName)] IPersistentState<GenericState<T>> state) : Grain, IGenericStateGrain<T>
{
    public async Task Write(T value)
    {
        state.State.Value = value;
        await state.WriteStateAsync();
    }

    public async Task<T?> Reread()
    {
        await state.ReadStateAsync();
        return state.State.Value;
    }
}
