using Chord.Grains.Storage;
using Orleans.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>
/// The conformance cases through grains with <c>[PersistentState("state", "chord")]</c> in a TestCluster, in one clear
/// mode per subclass. A "second activation" is played by the provider called directly with the grain's id.
/// </summary>
public abstract class GrainConformanceTests(StorageClusterFixture fixture)
{
    private const string Cyrillic = "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440";

    private IGrainFactory Grains => fixture.Chord.Grains;

    private bool DeleteOnClear => fixture.Mode == ChordStorageMode.Delete;

    public static TheoryData<string> KeyKinds => new() { "string", "integer", "guid", "compound", "cyrillic" };

    private IStateGrain GrainOfKind(string kind) => kind switch
    {
        "string" => Grains.GetGrain<IStringStateGrain>($"s-{Guid.NewGuid():N}"),
        "integer" => Grains.GetGrain<IIntegerStateGrain>(Random.Shared.NextInt64()),
        "guid" => Grains.GetGrain<IGuidStateGrain>(Guid.NewGuid()),
        "compound" => Grains.GetGrain<ICompoundStateGrain>(Random.Shared.NextInt64(), $"ext-{Cyrillic}"),
        "cyrillic" => Grains.GetGrain<IStringStateGrain>($"{Cyrillic}-{Guid.NewGuid():N}"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown key kind"),
    };

    private IStringStateGrain NewGrain(string prefix = "g") => Grains.GetGrain<IStringStateGrain>($"{prefix}-{Guid.NewGuid():N}");

    /// <summary>Writes as another activation of the grain would: read, then write with the ETag read.</summary>
    private async Task<GrainState<TestState>> WriteAsOtherActivationAsync(IGrain grain, TestState value, int silo = 1)
    {
        var storage = fixture.Storage(silo);
        var state = new GrainState<TestState> { State = new TestState() };
        await storage.ReadStateAsync("state", grain.GetGrainId(), state);
        state.State = value;
        await storage.WriteStateAsync("state", grain.GetGrainId(), state);
        return state;
    }

    [Theory]
    [MemberData(nameof(KeyKinds))]
    public async Task A_grain_state_written_is_read_by_the_next_activation(string keyKind)
    {
        var grain = GrainOfKind(keyKind);
        var fresh = await grain.Get();
        Assert.False(fresh.RecordExists);
        Assert.Null(fresh.ETag);

        var written = await grain.Write(new TestState { A = Cyrillic, B = 7, C = -1 });
        Assert.True(written.RecordExists);
        Assert.NotNull(written.ETag);
        await grain.Deactivate();

        var read = await grain.Get();
        Assert.Equal(written, read);
    }

    [Fact]
    public async Task A_grain_whose_state_another_activation_created_since_it_read_nothing_gets_InconsistentStateException()
    {
        var grain = NewGrain("duplicate");
        Assert.Null((await grain.Get()).ETag); // activated, read nothing
        var other = await WriteAsOtherActivationAsync(grain, new TestState { A = "other" });

        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => grain.Write(new TestState { A = "mine" }));
        Assert.Equal(other.ETag, error.StoredEtag);
        Assert.Equal("other", (await grain.Reread()).State.A);
    }

    [Fact]
    public async Task A_grain_writing_or_clearing_after_another_activation_wrote_gets_InconsistentStateException_and_the_next_activation_sees_the_other_write()
    {
        var grain = NewGrain("stale");
        var mine = await grain.Write(new TestState { A = "initial" });
        var other = await WriteAsOtherActivationAsync(grain, new TestState { A = "other" }, silo: 2);

        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => grain.Write(new TestState { A = "stale" }));
        Assert.Equal(other.ETag, error.StoredEtag);
        Assert.Equal(mine.ETag, error.CurrentEtag);

        // Orleans deactivates the activation that got the exception; the next one reads what the other wrote.
        var reread = await grain.Get();
        Assert.Equal("other", reread.State.A);
        Assert.Equal(other.ETag, reread.ETag);

        var again = await WriteAsOtherActivationAsync(grain, new TestState { A = "other again" });
        var clearError = await Assert.ThrowsAsync<InconsistentStateException>(() => grain.Clear());
        Assert.Equal(again.ETag, clearError.StoredEtag);
        Assert.Equal(other.ETag, clearError.CurrentEtag);

        var after = await grain.Write(new TestState { A = "after" });
        Assert.DoesNotContain(after.ETag, new[] { mine.ETag, other.ETag, again.ETag });
        Assert.Equal(after, await grain.Reread());
    }

    [Fact]
    public async Task Grains_write_and_read_in_parallel_100_grains_10_writes_each()
    {
        var grains = Enumerable.Range(0, 100).Select(i => NewGrain($"parallel-{i}")).ToList();
        await Task.WhenAll(grains.Select(async (grain, i) =>
        {
            var etags = new HashSet<string?>();
            for (var k = 0; k < 10; k++)
            {
                var view = await grain.Write(new TestState { B = i, C = k });
                Assert.True(etags.Add(view.ETag));
                var reread = await grain.Reread();
                Assert.Equal(view, reread);
            }
        }));

        await Task.WhenAll(grains.Select(g => g.Deactivate()));
        var views = await Task.WhenAll(grains.Select(g => g.Get()));
        Assert.All(views.Select((v, i) => (v, i)), x => Assert.Equal(new TestState { B = x.i, C = 9 }, x.v.State));
    }

    [Fact]
    public async Task Clear_through_a_grain_then_write_and_read_again()
    {
        var grain = NewGrain("clear");
        var cleared0 = await grain.Clear(); // clear before any write
        Assert.False(cleared0.RecordExists);
        Assert.Null(cleared0.ETag);

        var written = await grain.Write(new TestState { A = "data", B = 1 });
        var cleared = await grain.Clear();
        Assert.False(cleared.RecordExists);
        Assert.Equal(new TestState(), cleared.State);
        Assert.NotEqual(written.ETag, cleared.ETag);
        Assert.Equal(DeleteOnClear, cleared.ETag is null);

        var clearedAgain = await grain.Clear();
        Assert.False(clearedAgain.RecordExists);

        await grain.Deactivate();
        var read = await grain.Get();
        Assert.False(read.RecordExists);
        Assert.Equal(new TestState(), read.State);
        Assert.Equal(clearedAgain.ETag, read.ETag);

        var rewritten = await grain.Write(new TestState { A = "again" });
        Assert.True(rewritten.RecordExists);
        Assert.DoesNotContain(rewritten.ETag, new[] { written.ETag, cleared.ETag, clearedAgain.ETag });
        await grain.Deactivate();
        Assert.Equal(rewritten, await grain.Get());
    }

    [Fact]
    public async Task Two_states_of_one_grain_are_independent()
    {
        var grain = Grains.GetGrain<ITwoStatesGrain>($"two-{Guid.NewGuid():N}");
        await grain.Write(new TestState { A = "first" }, new TestState { A = "second" });
        var (first, second) = await grain.Reread();
        Assert.Equal(("first", "second"), (first.A, second.A));

        await grain.ClearFirst();
        (first, second) = await grain.Reread();
        Assert.Equal(new TestState(), first);
        Assert.Equal("second", second.A);
    }

    [Fact]
    public async Task Generic_grains_with_different_type_arguments_are_stored_separately()
    {
        var key = $"generic-{Guid.NewGuid():N}";
        var ints = Grains.GetGrain<IGenericStateGrain<int>>(key);
        var strings = Grains.GetGrain<IGenericStateGrain<string>>(key);
        await ints.Write(42);
        await strings.Write("forty-two");
        Assert.Equal(42, await ints.Reread());
        Assert.Equal("forty-two", await strings.Reread());

        var storage = (ChordGrainStorage)fixture.Storage(0);
        var intKey = storage.RingKeyOf(ints.GetGrainId(), "value");
        var stringKey = storage.RingKeyOf(strings.GetGrainId(), "value");
        Assert.NotEqual(intKey, stringKey);
        foreach (var ringKey in new[] { intKey, stringKey })
        {
            Assert.False((await fixture.Chord.Nodes[0].Node.GetVersionedAsync(ringKey)).Value.IsNil);
        }
    }
}

[Collection(TombstoneStorageCluster.Collection)]
public sealed class TombstoneGrainConformanceTests(TombstoneStorageCluster fixture) : GrainConformanceTests(fixture);

[Collection(DeleteStorageCluster.Collection)]
public sealed class DeleteGrainConformanceTests(DeleteStorageCluster fixture) : GrainConformanceTests(fixture);
