using System.Net;
using System.Net.Sockets;
using Chord.Grains.Providers;
using Chord.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Providers;
using Orleans.Storage;

namespace Chord.Grains.Tests.Storage;

/// <summary>How the provider is registered and validated: no cluster needed, or one silo that must refuse to start.</summary>
public sealed class StorageRegistrationTests
{
    private static HostApplicationBuilder SiloHost(Action<ISiloBuilder> configure)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(FreePort(), FreePort());
            configure(silo);
        });
        return builder;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public void The_silo_builder_overloads_add_the_ring_node_and_a_named_provider_with_its_options()
    {
        var builder = SiloHost(silo => silo
            .AddChord(o => o.ListenHost = "127.0.0.1")
            .AddChordGrainStorage("chord")
            .AddChordGrainStorage("chord-delete", o => o.DeleteStateOnClear = true)
            .AddChordGrainStorageAsDefault(ob => ob.Configure(o => o.DeleteStateOnClear = true)));
        Assert.Single(builder.Services, s => s.ServiceType == typeof(ChordSiloNode));
        using var host = builder.Build();
        var monitor = host.Services.GetRequiredService<IOptionsMonitor<ChordGrainStorageOptions>>();
        Assert.False(monitor.Get("chord").DeleteStateOnClear);
        Assert.True(monitor.Get("chord-delete").DeleteStateOnClear);
        Assert.True(monitor.Get(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME).DeleteStateOnClear);
        Assert.NotNull(monitor.Get("chord").GrainStorageSerializer); // the silo's default serializer
        Assert.IsType<ChordGrainStorage>(host.Services.GetRequiredKeyedService<IGrainStorage>("chord"));
        Assert.IsType<ChordGrainStorage>(host.Services.GetRequiredKeyedService<IGrainStorage>(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME));
    }

    [Fact]
    public void AddChordGrainStorage_alone_adds_the_ring_node_once()
    {
        var builder = SiloHost(silo => silo.AddChordGrainStorage("a").AddChordGrainStorage("b", (ChordGrainStorageOptions o) => o.DeleteStateOnClear = true));
        Assert.Single(builder.Services, s => s.ServiceType == typeof(ChordSiloNode));
    }

    [Fact]
    public async Task A_silo_with_the_provider_but_no_ring_node_refuses_to_start_and_says_to_add_AddChord()
    {
        var builder = SiloHost(silo => silo.Services.AddChordGrainStorage("chord"));
        using var host = builder.Build();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
        var messages = string.Join(" | ", Flatten(error).Select(e => e.Message));
        Assert.Contains("AddChord", messages, StringComparison.Ordinal);
        Assert.Contains("'chord'", messages, StringComparison.Ordinal);
    }

    [Fact]
    public void The_validator_names_each_bad_setting()
    {
        var ok = new ChordGrainStorageOptions { GrainStorageSerializer = new JsonGrainStorageSerializer(new Orleans.Serialization.OrleansJsonSerializer(Options.Create(new Orleans.Serialization.OrleansJsonSerializerOptions()))) };
        new ChordGrainStorageOptionsValidator(ok, "fine", hasRingNode: true).ValidateConfiguration();

        var bad = new ChordGrainStorageOptions { InitStage = ServiceLifecycleStage.RuntimeGrainServices };
        var error = Assert.Throws<OrleansConfigurationException>(() => new ChordGrainStorageOptionsValidator(bad, "broken", hasRingNode: false).ValidateConfiguration());
        Assert.Contains("'broken'", error.Message, StringComparison.Ordinal);
        Assert.Contains("AddChord", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(ChordGrainStorageOptions.GrainStorageSerializer), error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(ChordGrainStorageOptions.InitStage), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_default_key_escapes_slash_and_percent_in_the_service_id_and_state_name_so_keys_never_collide()
    {
        var grain = GrainId.Create("player", "a/b");
        Assert.Equal("orleans/shop/cart/player/a/b", ChordGrainStorageOptions.DefaultStorageKey("shop", grain, "cart"));
        Assert.Equal("orleans/s%2Fx/n%25%2F/player/a/b", ChordGrainStorageOptions.DefaultStorageKey("s/x", grain, "n%/"));
        Assert.NotEqual(
            ChordGrainStorageOptions.DefaultStorageKey("s", GrainId.Create("t", "k"), "a/b"),
            ChordGrainStorageOptions.DefaultStorageKey("s", GrainId.Create("b", "k"), "a"));
    }

    private static IEnumerable<Exception> Flatten(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }
        }
    }
}
