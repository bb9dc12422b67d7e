using Chord.Grains.Providers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Chord.Grains.Storage;

/// <summary>Creates the named <see cref="ChordGrainStorage"/> providers from their options.</summary>
public static class ChordGrainStorageFactory
{
    /// <summary>The provider <paramref name="name"/>, with its named <see cref="ChordGrainStorageOptions"/>.</summary>
    /// <exception cref="InvalidOperationException">The silo runs no ring node (<c>AddChord</c> was not called).</exception>
    public static IGrainStorage Create(IServiceProvider services, string name)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(name);
        var silo = services.GetService<ChordSiloNode>() ?? throw new InvalidOperationException(
            $"The Chord grain storage '{name}' needs the silo's ring node: call siloBuilder.AddChord(...) (the ISiloBuilder overloads of AddChordGrainStorage do).");
        var options = services.GetRequiredService<IOptionsMonitor<ChordGrainStorageOptions>>().Get(name);
        return new ChordGrainStorage(
            name,
            options,
            silo,
            services.GetRequiredService<IGrainFactory>(),
            services.GetRequiredService<IActivatorProvider>(),
            services.GetRequiredService<IOptions<ClusterOptions>>().Value,
            services.GetRequiredService<ILogger<ChordGrainStorage>>());
    }
}
