using Chord.Grains.Providers;
using Chord.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Chord.Grains.Tests.Storage;

/// <summary>
/// The cases of Orleans' own grain-storage tests (GrainStorageTestRunner / CommonStorageTests), called on the provider
/// directly (the named IGrainStorage of a silo, with a GrainId and an IGrainState), in one clear mode per subclass.
/// </summary>
public abstract class ProviderConformanceTests(StorageClusterFixture fixture)
{
    private const string StateName = "TestGrain";
    private const string Cyrillic = "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440";

    private bool DeleteOnClear => fixture.Mode == ChordStorageMode.Delete;

    private IGrainStorage Storage => fixture.Storage(0);

    private static GrainId NewId(string prefix = "g") => GrainId.Create("my-grain-type", $"{prefix}-{Guid.NewGuid():N}");

    private static GrainState<TestState> NewState(string? etag = null, TestState? state = null) => new() { State = state ?? new TestState(), ETag = etag };

    private async Task<GrainState<TestState>> ReadAsync(GrainId id, string name = StateName, IGrainStorage? storage = null)
    {
        var read = NewState();
        await (storage ?? Storage).ReadStateAsync(name, id, read);
        return read;
    }

    /// <summary>Orleans' Store_WriteRead: write, read into a fresh state, same ETag and state, record exists.</summary>
    private async Task WriteReadAsync(GrainId id, GrainState<TestState> state, IGrainStorage? storage = null)
    {
        await (storage ?? Storage).WriteStateAsync(StateName, id, state);
        var read = await ReadAsync(id, storage: storage);
        Assert.Equal(state.ETag, read.ETag);
        Assert.Equal(state.State, read.State);
        Assert.True(read.RecordExists);
    }

    public static TheoryData<string> KeyKinds => new() { "string", "integer", "guid", "compound", "cyrillic" };

    private static GrainId IdOfKind(string kind) => kind switch
    {
        "string" => GrainId.Create("my-grain-type", $"StringKey-{Guid.NewGuid()}"),
        "integer" => GrainId.Create(GrainType.Create("my-grain-type"), GrainIdKeyExtensions.CreateIntegerKey(Random.Shared.NextInt64())),
        "guid" => GrainId.Create(GrainType.Create("my-grain-type"), GrainIdKeyExtensions.CreateGuidKey(Guid.NewGuid())),
        "compound" => GrainId.Create(GrainType.Create("my-grain-type"), GrainIdKeyExtensions.CreateIntegerKey(Random.Shared.NextInt64(), $"ext/{Cyrillic}")),
        "cyrillic" => GrainId.Create("my-grain-type", $"{Cyrillic}-{Guid.NewGuid():N}"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown key kind"),
    };

    [Theory]
    [MemberData(nameof(KeyKinds))]
    public async Task Write_then_read_round_trips_state_and_ETag(string keyKind)
    {
        var id = IdOfKind(keyKind);
        var state = NewState(state: new TestState { A = Cyrillic, B = 123, C = long.MaxValue });
        await WriteReadAsync(id, state);
        Assert.NotNull(state.ETag);

        // Every silo's provider sees the same record.
        foreach (var silo in fixture.Chord.Cluster.Silos)
        {
            var read = await ReadAsync(id, storage: StorageClusterFixture.StorageOf(silo));
            Assert.Equal(state.State, read.State);
            Assert.Equal(state.ETag, read.ETag);
        }
    }

    [Fact]
    public async Task A_duplicate_first_write_with_a_null_ETag_throws_InconsistentStateException_and_changes_nothing()
    {
        var id = NewId();
        var first = NewState(state: new TestState { A = "first" });
        await WriteReadAsync(id, first);

        var duplicate = NewState(state: new TestState { A = "second activation" });
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.WriteStateAsync(StateName, id, duplicate));
        Assert.Equal(first.ETag, error.StoredEtag);
        Assert.Equal(string.Empty, error.CurrentEtag);
        Assert.Contains("null", error.Message, StringComparison.Ordinal);
        Assert.Null(duplicate.ETag);

        var read = await ReadAsync(id);
        Assert.Equal(first.State, read.State);
        Assert.Equal(first.ETag, read.ETag);
    }

    [Fact]
    public async Task A_stale_write_throws_InconsistentStateException_with_both_ETags_and_keeps_the_latest_state()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "initial", B = 1, C = 2 });
        await Storage.WriteStateAsync(StateName, id, state);
        var staleETag = state.ETag;
        state.State = new TestState { A = "latest", B = 3, C = 4 };
        await Storage.WriteStateAsync(StateName, id, state);

        var stale = new GrainState<TestState> { State = new TestState { A = "stale", B = 5, C = 6 }, ETag = staleETag, RecordExists = true };
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => fixture.Storage(1).WriteStateAsync(StateName, id, stale));
        Assert.Equal(state.ETag, error.StoredEtag);
        Assert.Equal(staleETag, error.CurrentEtag);
        Assert.Equal(staleETag, stale.ETag);

        var read = await ReadAsync(id);
        Assert.True(read.RecordExists);
        Assert.Equal(state.State, read.State);
        Assert.Equal(state.ETag, read.ETag);
    }

    [Fact]
    public async Task A_made_up_ETag_is_refused_like_a_stale_one()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "x" });
        await Storage.WriteStateAsync(StateName, id, state);
        var forged = NewState("1@nobody/0000000000000000", new TestState { A = "forged" });
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.WriteStateAsync(StateName, id, forged));
        var absent = NewState("not an etag", new TestState { A = "forged" });
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.WriteStateAsync(StateName, NewId(), absent));
        Assert.Equal("x", (await ReadAsync(id)).State!.A);
    }

    [Fact]
    public async Task Write_read_write_read_in_parallel_100_keys_10_writes_each()
    {
        var states = Enumerable.Range(0, 100).Select(i => (Id: NewId($"parallel-{i}"), State: NewState(state: new TestState { B = i }))).ToList();
        foreach (var (id, state) in states)
        {
            Assert.Null(state.ETag);
            await WriteReadAsync(id, state);
            Assert.NotNull(state.ETag);
        }

        var silos = fixture.Chord.Cluster.Silos.Select(StorageClusterFixture.StorageOf).ToList();
        await Parallel.ForEachAsync(states, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount * 3 }, async (item, _) =>
        {
            var storage = silos[item.State.State!.B % silos.Count];
            for (var k = 0; k < 10; k++)
            {
                var before = item.State.ETag;
                item.State.State = item.State.State! with { C = k };
                await WriteReadAsync(item.Id, item.State, storage);
                Assert.NotEqual(before, item.State.ETag);
            }
        });

        foreach (var (id, state) in states)
        {
            var read = await ReadAsync(id);
            Assert.Equal(9, read.State!.C);
            Assert.Equal(state.ETag, read.ETag);
        }
    }

    [Fact]
    public async Task Reading_a_state_never_written_gives_a_new_state_a_null_ETag_and_no_record()
    {
        var state = new GrainState<TestState> { State = new TestState { A = "stale", B = 1, C = 2 }, ETag = "old", RecordExists = true };
        await Storage.ReadStateAsync(StateName, NewId(), state);
        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);
        Assert.Equal(new TestState(), state.State);
    }

    [Fact]
    public async Task Write_clear_write_then_read()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "First", B = 1 });
        await Storage.WriteStateAsync(StateName, id, state);
        var firstETag = state.ETag;
        Assert.True(state.RecordExists);

        await Storage.ClearStateAsync(StateName, id, state);
        var clearedETag = state.ETag;
        Assert.NotEqual(firstETag, clearedETag);
        Assert.False(state.RecordExists);
        Assert.Equal(new TestState(), state.State);
        if (DeleteOnClear)
        {
            Assert.Null(clearedETag);
        }
        else
        {
            Assert.NotNull(clearedETag);
        }

        state.State = new TestState { A = "Second", B = 2 };
        await Storage.WriteStateAsync(StateName, id, state);
        Assert.NotEqual(clearedETag, state.ETag);
        Assert.NotEqual(firstETag, state.ETag);
        Assert.True(state.RecordExists);

        var read = await ReadAsync(id);
        Assert.Equal(("Second", 2), (read.State!.A, read.State.B));
        Assert.Equal(state.ETag, read.ETag);
        Assert.True(read.RecordExists);
    }

    [Fact]
    public async Task Write_clear_read_gives_no_record_and_the_cleared_ETag_and_a_write_with_it_succeeds()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "Original", B = 42, C = 100 });
        await Storage.WriteStateAsync(StateName, id, state);
        await Storage.ClearStateAsync(StateName, id, state);

        var read = await ReadAsync(id);
        Assert.False(read.RecordExists);
        Assert.Equal(new TestState(), read.State);
        Assert.Equal(state.ETag, read.ETag);

        // A new activation writes with what it read.
        var fresh = NewState(read.ETag);
        await Storage.WriteStateAsync(StateName, id, fresh);
        Assert.True(fresh.RecordExists);
        var back = await ReadAsync(id);
        Assert.True(back.RecordExists);
        Assert.Equal(new TestState(), back.State);
        Assert.Equal(fresh.ETag, back.ETag);
    }

    [Fact]
    public async Task Clear_before_any_write_succeeds_and_resets_the_state()
    {
        var id = NewId();
        var state = new GrainState<TestState> { State = new TestState { A = "stale", B = 1, C = 2 }, RecordExists = true };
        await Storage.ClearStateAsync(StateName, id, state);
        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);
        Assert.Equal(new TestState(), state.State);

        var read = await ReadAsync(id);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
    }

    [Fact]
    public async Task Clearing_twice_succeeds()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "TestData" });
        await Storage.WriteStateAsync(StateName, id, state);
        var written = state.ETag;

        await Storage.ClearStateAsync(StateName, id, state);
        var firstClear = state.ETag;
        Assert.False(state.RecordExists);
        await Storage.ClearStateAsync(StateName, id, state);
        Assert.False(state.RecordExists);
        Assert.NotNull(state.State);
        if (DeleteOnClear)
        {
            Assert.Null(firstClear);
            Assert.Null(state.ETag);
        }
        else
        {
            // Each clear writes a cleared record: a new ETag each time.
            Assert.Equal(3, new[] { written, firstClear, state.ETag }.Distinct().Count());
        }

        Assert.False((await ReadAsync(id)).RecordExists);
    }

    [Fact]
    public async Task A_stale_clear_throws_InconsistentStateException_and_keeps_the_latest_state()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "initial", B = 1, C = 2 });
        await Storage.WriteStateAsync(StateName, id, state);
        var staleETag = state.ETag;
        state.State = new TestState { A = "latest", B = 3, C = 4 };
        await Storage.WriteStateAsync(StateName, id, state);

        var stale = new GrainState<TestState> { State = new TestState(), ETag = staleETag, RecordExists = true };
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.ClearStateAsync(StateName, id, stale));
        Assert.Equal(state.ETag, error.StoredEtag);
        Assert.Equal(staleETag, error.CurrentEtag);

        var nullClear = NewState();
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.ClearStateAsync(StateName, id, nullClear));

        var read = await ReadAsync(id);
        Assert.True(read.RecordExists);
        Assert.Equal(state.State, read.State);
        Assert.Equal(state.ETag, read.ETag);
    }

    [Fact]
    public async Task The_ETag_changes_on_every_write_even_of_the_same_value_and_on_clear()
    {
        var id = NewId();
        var state = NewState(state: new TestState { A = "SameValue", B = 123 });
        var etags = new List<string?>();
        for (var i = 0; i < 5; i++)
        {
            await Storage.WriteStateAsync(StateName, id, state);
            Assert.NotNull(state.ETag);
            etags.Add(state.ETag);
        }

        await Storage.ClearStateAsync(StateName, id, state);
        etags.Add(state.ETag);
        await Storage.WriteStateAsync(StateName, id, state);
        etags.Add(state.ETag);
        Assert.Equal(etags.Count, etags.Distinct().Count());
    }

    [Fact]
    public async Task After_a_clear_no_ETag_from_before_it_is_accepted_again()
    {
        // A write after the clear must not be confused with the record before it: even after a delete, whose
        // tombstone the ring collects (the version then starts again), the ETags of the old record stay refused.
        var id = NewId();
        var state = NewState(state: new TestState { A = "v1" });
        await Storage.WriteStateAsync(StateName, id, state);
        var before = state.ETag;
        await Storage.ClearStateAsync(StateName, id, state);
        await Storage.WriteStateAsync(StateName, id, state);
        Assert.NotEqual(before, state.ETag);

        var stale = NewState(before, new TestState { A = "stale" });
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.WriteStateAsync(StateName, id, stale));
    }

    [Fact]
    public async Task State_names_are_independent_records()
    {
        var id = GrainId.Create("test-grain", Guid.NewGuid().ToString("N"));
        var first = NewState(state: new TestState { A = "first", B = 1, C = 2 });
        var second = NewState(state: new TestState { A = "second", B = 3, C = 4 });
        await Storage.WriteStateAsync("first-state", id, first);
        await Storage.WriteStateAsync("second-state", id, second);

        Assert.Equal(first.State, (await ReadAsync(id, "first-state")).State);
        Assert.Equal(second.State, (await ReadAsync(id, "second-state")).State);

        await Storage.ClearStateAsync("first-state", id, first);
        Assert.False((await ReadAsync(id, "first-state")).RecordExists);
        var secondRead = await ReadAsync(id, "second-state");
        Assert.Equal(second.State, secondRead.State);
        Assert.Equal(second.ETag, secondRead.ETag);
    }

    [Fact]
    public async Task Two_writers_with_the_same_ETag_on_different_silos_exactly_one_wins_each_round()
    {
        var id = NewId("race");
        var seed = NewState(state: new TestState { A = "seed" });
        await Storage.WriteStateAsync(StateName, id, seed);
        var etag = seed.ETag;
        for (var round = 0; round < 10; round++)
        {
            var a = NewState(etag, new TestState { A = $"a{round}" });
            var b = NewState(etag, new TestState { A = $"b{round}" });
            var outcomes = await Task.WhenAll(
                Attempt(() => fixture.Storage(1).WriteStateAsync(StateName, id, a)),
                Attempt(() => fixture.Storage(2).WriteStateAsync(StateName, id, b)));
            Assert.Single(outcomes, ok => ok);
            var winner = outcomes[0] ? a : b;
            var loser = outcomes[0] ? b : a;
            Assert.Equal(etag, loser.ETag);
            var read = await ReadAsync(id);
            Assert.Equal(winner.State, read.State);
            Assert.Equal(winner.ETag, read.ETag);
            etag = winner.ETag;
        }

        static async Task<bool> Attempt(Func<Task> write)
        {
            try
            {
                await write();
                return true;
            }
            catch (InconsistentStateException)
            {
                return false;
            }
        }
    }

    [Fact]
    public async Task Operations_are_counted_by_outcome_in_the_storage_meter()
    {
        var counts = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Chord.Grains.Storage" && instrument.Name == "chord.storage.operations")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? operation = null, outcome = null;
            foreach (var tag in tags)
            {
                operation = tag.Key == "operation" ? tag.Value as string : operation;
                outcome = tag.Key == "outcome" ? tag.Value as string : outcome;
            }

            counts.AddOrUpdate($"{operation}/{outcome}", value, (_, n) => n + value);
        });
        listener.Start();

        var id = NewId("metrics");
        var state = NewState(state: new TestState { A = "m" });
        await Storage.WriteStateAsync(StateName, id, state);
        await ReadAsync(id);
        await Assert.ThrowsAsync<InconsistentStateException>(() => Storage.ClearStateAsync(StateName, id, NewState()));

        // Other tests may run at the same time: at least ours are counted.
        Assert.True(counts.GetValueOrDefault("write/ok") >= 1);
        Assert.True(counts.GetValueOrDefault("read/ok") >= 1);
        Assert.True(counts.GetValueOrDefault("clear/conflict") >= 1);
    }

    [Fact]
    public async Task The_state_is_stored_under_the_documented_ring_key()
    {
        var id = GrainId.Create("my-grain-type", $"key/with/slashes-{Guid.NewGuid():N}");
        var state = NewState(state: new TestState { A = "where" });
        await Storage.WriteStateAsync("name/with%slash", id, state);

        var serviceId = Services(0).GetRequiredService<Microsoft.Extensions.Options.IOptions<ClusterOptions>>().Value.ServiceId;
        var key = $"orleans/{serviceId.Replace("/", "%2F", StringComparison.Ordinal)}/name%2Fwith%25slash/{id}";
        Assert.Equal(key, ChordGrainStorageOptions.DefaultStorageKey(serviceId, id, "name/with%slash"));
        var stored = await fixture.Chord.Nodes[2].Node.GetVersionedAsync(key);
        Assert.True(stored.Value.TryGetValue("state", out var bytes));
        Assert.True(stored.Value.TryGetValue("grain", out var grain));
        Assert.Equal(id.ToString(), grain.AsString());
        Assert.False(bytes.IsNil);
        Assert.StartsWith($"{stored.Version.Counter}@{stored.Version.Writer}/", state.ETag, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_builder_option_chooses_the_ring_key()
    {
        var services = Services(1);
        var options = new ChordGrainStorageOptions
        {
            GrainStorageSerializer = services.GetRequiredService<IGrainStorageSerializer>(),
            DeleteStateOnClear = DeleteOnClear,
            GetStorageKey = (service, grain, name) => $"custom:{name}:{grain.Key}",
        };
        var custom = new ChordGrainStorage(
            "custom", options, services.GetRequiredService<ChordSiloNode>(), services.GetRequiredService<IGrainFactory>(),
            services.GetRequiredService<Orleans.Serialization.Serializers.IActivatorProvider>(),
            services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ClusterOptions>>().Value,
            services.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ChordGrainStorage>>());
        var id = NewId("custom");
        var state = NewState(state: new TestState { A = "custom" });
        await custom.WriteStateAsync("s", id, state);

        Assert.Equal($"custom:s:{id.Key}", custom.RingKeyOf(id, "s"));
        Assert.False((await fixture.Chord.Nodes[0].Node.GetVersionedAsync($"custom:s:{id.Key}")).Value.IsNil);
        Assert.False((await ReadAsync(id, "s")).RecordExists); // the default provider looks elsewhere
        Assert.Equal(state.State, (await ReadAsync(id, "s", custom)).State);
    }

    [Fact]
    public async Task A_ring_key_holding_something_else_is_reported_not_overwritten()
    {
        var id = NewId("foreign");
        var storage = (ChordGrainStorage)Storage;
        var key = storage.RingKeyOf(id, StateName);
        await fixture.Chord.Nodes[0].Node.SetAsync(key, Dht.Wire.MsgValue.Str("not a grain state"));

        var error = await Assert.ThrowsAsync<ChordGrainStorageException>(() => ReadAsync(id));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ChordGrainStorageException>(() => Storage.WriteStateAsync(StateName, id, NewState()));
        Assert.Equal("not a grain state", (await fixture.Chord.Nodes[1].Node.GetVersionedAsync(key)).Value.AsString());
    }

    private IServiceProvider Services(int silo) => ((InProcessSiloHandle)fixture.Chord.Cluster.Silos[silo]).SiloHost.Services;
}

[Collection(TombstoneStorageCluster.Collection)]
public sealed class TombstoneProviderConformanceTests(TombstoneStorageCluster fixture) : ProviderConformanceTests(fixture);

[Collection(DeleteStorageCluster.Collection)]
public sealed class DeleteProviderConformanceTests(DeleteStorageCluster fixture) : ProviderConformanceTests(fixture);
