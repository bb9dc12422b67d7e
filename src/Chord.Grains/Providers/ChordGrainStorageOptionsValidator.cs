namespace Chord.Grains.Providers;

/// <summary>
/// Checks a Chord grain-storage provider's options, and that the silo runs a ring node, when the silo starts; a
/// failure stops the start with an <see cref="OrleansConfigurationException"/> that names the provider and the setting.
/// </summary>
public sealed class ChordGrainStorageOptionsValidator : IConfigurationValidator
{
    private readonly ChordGrainStorageOptions _options;
    private readonly string _name;
    private readonly bool _hasRingNode;

    /// <summary>Creates the validator of the provider <paramref name="name"/>.</summary>
    /// <param name="options">The provider's options.</param>
    /// <param name="name">The provider's name.</param>
    /// <param name="hasRingNode">True when the silo runs a ring node (<c>AddChord</c> was called).</param>
    public ChordGrainStorageOptionsValidator(ChordGrainStorageOptions options, string name, bool hasRingNode)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(name);
        _options = options;
        _name = name;
        _hasRingNode = hasRingNode;
    }

    /// <inheritdoc />
    public void ValidateConfiguration()
    {
        var failures = new List<string>();
        if (!_hasRingNode)
        {
            failures.Add("the silo runs no Chord ring node: call siloBuilder.AddChord(...) (the ISiloBuilder overloads of AddChordGrainStorage do), or register the provider with the silo builder instead of the service collection");
        }

        if (_options.GrainStorageSerializer is null)
        {
            failures.Add($"{nameof(ChordGrainStorageOptions.GrainStorageSerializer)} is null; allowed: an IGrainStorageSerializer, or leave it unset for the silo's default (which needs the silo's services)");
        }

        if (_options.InitStage <= ServiceLifecycleStage.RuntimeGrainServices)
        {
            failures.Add($"{nameof(ChordGrainStorageOptions.InitStage)} is {_options.InitStage}; allowed: a stage after {ServiceLifecycleStage.RuntimeGrainServices} (RuntimeGrainServices, when the ring node starts), such as {ServiceLifecycleStage.ApplicationServices} (ApplicationServices, the default)");
        }

        if (failures.Count > 0)
        {
            throw new OrleansConfigurationException($"The Chord grain storage '{_name}' is misconfigured: {string.Join("; ", failures)}.");
        }
    }
}
