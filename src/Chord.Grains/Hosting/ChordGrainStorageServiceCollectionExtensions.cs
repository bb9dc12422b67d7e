using Chord.Grains;
using Chord.Grains.Providers;
using Chord.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Providers;
using Orleans.Runtime.Hosting;
using Orleans.Storage;

namespace Orleans.Hosting;

/// <summary>
/// Registers Chord grain-storage providers in a silo's services. These do not add the ring node: the silo must also
/// call <c>AddChord</c>, or it fails at start-up saying so. The <see cref="ISiloBuilder"/> overloads
/// (<see cref="ChordGrainStorageSiloBuilderExtensions"/>) add it themselves.
/// </summary>
public static class ChordGrainStorageServiceCollectionExtensions
{
    /// <summary>Adds the Chord grain storage as the default provider (the one grains get without a provider name).</summary>
    public static IServiceCollection AddChordGrainStorageAsDefault(this IServiceCollection services, Action<ChordGrainStorageOptions> configureOptions) =>
        services.AddChordGrainStorage(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME, configureOptions);

    /// <summary>Adds the Chord grain storage as the default provider, configuring its options through an <see cref="OptionsBuilder{TOptions}"/>.</summary>
    public static IServiceCollection AddChordGrainStorageAsDefault(this IServiceCollection services, Action<OptionsBuilder<ChordGrainStorageOptions>>? configureOptions = null) =>
        services.AddChordGrainStorage(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME, configureOptions);

    /// <summary>Adds a Chord grain-storage provider named <paramref name="name"/> (the name in <c>[PersistentState("state", name)]</c>).</summary>
    public static IServiceCollection AddChordGrainStorage(this IServiceCollection services, string name, Action<ChordGrainStorageOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        return services.AddChordGrainStorage(name, options => options.Configure(configureOptions));
    }

    /// <summary>
    /// Adds a Chord grain-storage provider named <paramref name="name"/>, configuring its options through an
    /// <see cref="OptionsBuilder{TOptions}"/> (for example to bind configuration). Its options and the presence of the
    /// ring node are validated when the silo starts.
    /// </summary>
    public static IServiceCollection AddChordGrainStorage(this IServiceCollection services, string name, Action<OptionsBuilder<ChordGrainStorageOptions>>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        configureOptions?.Invoke(services.AddOptions<ChordGrainStorageOptions>(name));
        services.AddTransient<IPostConfigureOptions<ChordGrainStorageOptions>, DefaultStorageProviderSerializerOptionsConfigurator<ChordGrainStorageOptions>>();
        services.AddTransient<IConfigurationValidator>(sp => new ChordGrainStorageOptionsValidator(
            sp.GetRequiredService<IOptionsMonitor<ChordGrainStorageOptions>>().Get(name),
            name,
            sp.GetService<IServiceProviderIsService>()?.IsService(typeof(ChordSiloNode)) ?? sp.GetService<ChordSiloNode>() is not null));
        services.ConfigureNamedOptionForLogging<ChordGrainStorageOptions>(name);
        services.AddGrainStorage(name, ChordGrainStorageFactory.Create);
        return services;
    }
}
