using Orleans.Storage;

namespace Chord.Grains.Providers;

/// <summary>
/// Settings of one named Chord grain-storage provider (<c>AddChordGrainStorage(name, options =&gt; ...)</c>). They are
/// validated when the silo starts.
/// </summary>
/// <remarks>
/// <para><b>Where state goes.</b> Each state is one ring key (stored at its five positions like any key), under
/// <see cref="DefaultStorageKey"/> unless <see cref="GetStorageKey"/> says otherwise:
/// <c>orleans/{serviceId}/{stateName}/{grainId}</c>, for example <c>orleans/shop/cart/cart/alice</c> for the state
/// <c>cart</c> of the grain <c>cart/alice</c> in service <c>shop</c>. In the service id and the state name,
/// <c>%</c> and <c>/</c> are written <c>%25</c> and <c>%2F</c>, so no two (service, state, grain) triples share a key;
/// the grain id comes last, as <c>GrainId.ToString()</c> writes it (type, <c>/</c>, key).</para>
/// <para><b>What is stored.</b> A msgpack map a py2p node can read: <c>format</c> (1), <c>incarnation</c>, <c>grain</c>,
/// <c>name</c> and <c>state</c> (the bytes of <see cref="GrainStorageSerializer"/>; absent in a cleared record).</para>
/// </remarks>
public sealed class ChordGrainStorageOptions : IStorageProviderSerializerOptions
{
    /// <summary>The stage of the silo's lifecycle at which the provider checks the ring node and is ready; the ring node starts before it.</summary>
    public int InitStage { get; set; } = ServiceLifecycleStage.ApplicationServices;

    /// <summary>
    /// What <c>ClearStateAsync</c> does. True: the state's ring key is deleted (a ring delete, a versioned tombstone
    /// the ring later collects); afterwards the ETag is null, as for a state never written. False (the default): a
    /// cleared record without state is written; afterwards the ETag is that record's, new like after any write, and
    /// the next write must present it.
    /// </summary>
    public bool DeleteStateOnClear { get; set; }

    /// <summary>The serializer of grain state. Null: the silo's default <see cref="IGrainStorageSerializer"/>, set when the options are built.</summary>
    public IGrainStorageSerializer GrainStorageSerializer { get; set; } = null!;

    /// <summary>
    /// Builds the ring key of a state from the service id, the grain id and the state name; null uses
    /// <see cref="DefaultStorageKey"/> (<c>orleans/{serviceId}/{stateName}/{grainId}</c>, see the remarks of this class).
    /// A replacement must give each (service, grain, state name) its own key, or states overwrite each other, and
    /// must keep giving the same key, or stored state is no longer found.
    /// </summary>
    public ChordStorageKeyBuilder? GetStorageKey { get; set; }

    /// <summary>The default ring key: <c>orleans/{serviceId}/{stateName}/{grainId}</c>, with <c>%</c> and <c>/</c> escaped in the first two.</summary>
    public static string DefaultStorageKey(string serviceId, GrainId grainId, string stateName)
    {
        ArgumentNullException.ThrowIfNull(serviceId);
        ArgumentNullException.ThrowIfNull(stateName);
        return $"orleans/{Escape(serviceId)}/{Escape(stateName)}/{grainId}";
    }

    private static string Escape(string part) => part.Replace("%", "%25", StringComparison.Ordinal).Replace("/", "%2F", StringComparison.Ordinal);
}
