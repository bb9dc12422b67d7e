using Chord.Grains;
using Chord.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Serialization;

namespace Orleans.Hosting;

/// <summary>Adds the Chord ring to a silo.</summary>
public static class ChordSiloBuilderExtensions
{
    /// <summary>
    /// Runs a ring node in this silo: it joins the ring the cluster's silos form from membership, serves
    /// <c>IChordKeyGrain</c> and <c>IChordRingGrain</c>, and hands its data off when the silo stops.
    /// </summary>
    public static ISiloBuilder AddChord(this ISiloBuilder builder, Action<ChordOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddChord(options =>
        {
            if (configure is not null)
            {
                options.Configure(configure);
            }
        });
    }

    /// <summary>Runs a ring node in this silo, configuring its options through an <see cref="OptionsBuilder{TOptions}"/> (for example to bind configuration).</summary>
    public static ISiloBuilder AddChord(this ISiloBuilder builder, Action<OptionsBuilder<ChordOptions>> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configureOptions);
        var services = builder.Services;
        configureOptions(services.AddOptions<ChordOptions>());
        if (services.Any(s => s.ServiceType == typeof(ChordSiloNode)))
        {
            return builder; // added already: the options above still apply
        }

        services.AddOptions<ChordOptions>().ValidateOnStart();

        // The ring's exceptions (Chord.Dht.Ring.ChordWriteException, ...) cross silos when a key grain runs on another
        // silo than its caller: without this, Orleans finds no codec for them and the caller gets a CodecNotFoundException
        // instead of the ring's message.
        services.Configure<ExceptionSerializationOptions>(o => o.SupportedNamespacePrefixes.Add("Chord"));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ChordOptions>, ChordOptionsValidator>());
        services.AddSingleton<ChordSiloNode>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ChordSiloNode>());
        services.AddSingleton<IChordSiloServiceClient, ChordSiloServiceClient>();
        services.AddGrainService<ChordSiloService>();
        return builder;
    }
}
