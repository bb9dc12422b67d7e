using Chord.Grains.Providers;
using Microsoft.Extensions.Options;

namespace Orleans.Hosting;

/// <summary>
/// Adds Chord grain-storage providers to a silo: grain state stored on the ring, with ETag-checked writes. Each of
/// these also adds the ring node (<c>AddChord()</c>) when it is not added yet; its options still come from the
/// silo's <c>AddChord(options =&gt; ...)</c> call, before or after this one.
/// </summary>
public static class ChordGrainStorageSiloBuilderExtensions
{
    /// <summary>Adds the Chord grain storage as the default provider (the one grains get without a provider name).</summary>
    public static ISiloBuilder AddChordGrainStorageAsDefault(this ISiloBuilder builder, Action<ChordGrainStorageOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddChord();
        builder.Services.AddChordGrainStorageAsDefault(configureOptions);
        return builder;
    }

    /// <summary>Adds the Chord grain storage as the default provider, configuring its options through an <see cref="OptionsBuilder{TOptions}"/>.</summary>
    public static ISiloBuilder AddChordGrainStorageAsDefault(this ISiloBuilder builder, Action<OptionsBuilder<ChordGrainStorageOptions>>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddChord();
        builder.Services.AddChordGrainStorageAsDefault(configureOptions);
        return builder;
    }

    /// <summary>Adds a Chord grain-storage provider named <paramref name="name"/> (the name in <c>[PersistentState("state", name)]</c>).</summary>
    public static ISiloBuilder AddChordGrainStorage(this ISiloBuilder builder, string name, Action<ChordGrainStorageOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddChord();
        builder.Services.AddChordGrainStorage(name, configureOptions);
        return builder;
    }

    /// <summary>
    /// Adds a Chord grain-storage provider named <paramref name="name"/>, configuring its options through an
    /// <see cref="OptionsBuilder{TOptions}"/> (for example to bind configuration).
    /// </summary>
    public static ISiloBuilder AddChordGrainStorage(this ISiloBuilder builder, string name, Action<OptionsBuilder<ChordGrainStorageOptions>>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddChord();
        builder.Services.AddChordGrainStorage(name, configureOptions);
        return builder;
    }
}
