namespace Chord.Grains.Providers;

/// <summary>
/// Builds the ring key a grain's state is stored under. See <see cref="ChordGrainStorageOptions.GetStorageKey"/> for
/// the default and what a replacement must keep.
/// </summary>
/// <param name="serviceId">The cluster's service id (<c>ClusterOptions.ServiceId</c>).</param>
/// <param name="grainId">The grain whose state it is.</param>
/// <param name="stateName">The state's name (the first argument of <c>[PersistentState]</c>).</param>
/// <returns>The ring key: a non-empty string, unique for each (service, grain, state name).</returns>
public delegate string ChordStorageKeyBuilder(string serviceId, GrainId grainId, string stateName);
