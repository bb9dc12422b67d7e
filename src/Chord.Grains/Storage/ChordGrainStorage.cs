using System.Diagnostics;
using Chord.Dht.Ring;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;
using Chord.Grains.Providers;
using Chord.Interfaces;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Chord.Grains.Storage;

/// <summary>
/// Grain storage on the ring: each state is one ring key (see <see cref="ChordGrainStorageOptions"/> for the key and
/// the stored record), read with a quorum read and written with a version-checked write through the key's
/// <see cref="IChordKeyGrain"/>.
/// </summary>
/// <remarks>
/// <para><b>ETags.</b> An ETag is <c>{counter}@{writer}/{incarnation}</c>: the ring version of the record (its
/// <see cref="ChordVersion"/> text) and the record's incarnation (a random id kept from the record's first write until
/// it is deleted; see <see cref="ChordStateRecord"/> for why). Null is the ETag of nothing.</para>
/// <para><b>Reads</b> of nothing give ETag null, <c>RecordExists</c> false and a new state; of a cleared record, its
/// ETag, <c>RecordExists</c> false and a new state.</para>
/// <para><b>Writes and clears</b> read the record first and go on only when its ETag equals the one given; then they
/// write through the key grain's <see cref="IChordKeyGrain.SetIfVersionAfterRead"/> with the version read (which
/// lets the key grain skip a read of its own when it wrote that version itself: one round fewer on every write after
/// a grain's first). The key grain runs
/// the version-checked writes of a key one at a time, so of two writers that present the same ETag, one writes and
/// the other finds the new version and fails. A mismatch throws <see cref="InconsistentStateException"/> with the
/// stored and the given ETag and writes nothing. Each write gets a new ring version, so a new ETag, even when the
/// state did not change.</para>
/// <para><b>Failures.</b> A ring that does not answer or acknowledge in time throws
/// <see cref="ChordGrainStorageException"/>; the grain's ETag is left as it was, since the write is not known to
/// have happened.</para>
/// <para><b>Metrics.</b> The <c>Chord.Grains.Storage</c> meter counts operations
/// (<c>chord.storage.operations</c>, by provider, operation and outcome: ok, conflict, failed) and times them
/// (<c>chord.storage.duration</c>, in milliseconds).</para>
/// </remarks>
public sealed partial class ChordGrainStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly string _name;
    private readonly ChordGrainStorageOptions _options;
    private readonly ChordSiloNode _silo;
    private readonly IGrainFactory _grains;
    private readonly IActivatorProvider _activators;
    private readonly ChordStorageKeyBuilder _keyOf;
    private readonly string _serviceId;
    private readonly ILogger _logger;

    /// <summary>Created by <see cref="ChordGrainStorageFactory"/>.</summary>
    public ChordGrainStorage(
        string name,
        ChordGrainStorageOptions options,
        ChordSiloNode silo,
        IGrainFactory grains,
        IActivatorProvider activators,
        ClusterOptions cluster,
        ILogger<ChordGrainStorage> logger)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(cluster);
        _name = name;
        _options = options;
        _silo = silo;
        _grains = grains;
        _activators = activators;
        _keyOf = options.GetStorageKey ?? ChordGrainStorageOptions.DefaultStorageKey;
        _serviceId = cluster.ServiceId;
        _logger = logger;
    }

    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe($"{nameof(ChordGrainStorage)}-{_name}", _options.InitStage, InitAsync);
    }

    /// <summary>The ring key of a state (the option <see cref="ChordGrainStorageOptions.GetStorageKey"/>, or the default).</summary>
    public string RingKeyOf(GrainId grainId, string stateName)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        var key = _keyOf(_serviceId, grainId, stateName);
        if (string.IsNullOrEmpty(key))
        {
            throw new ChordGrainStorageException(
                $"The storage key builder of the Chord grain storage '{_name}' gave an empty key for the state '{stateName}' of {grainId}; it must give a non-empty string.");
        }

        return key;
    }

    /// <inheritdoc />
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MeasureAsync("read", () => ReadStateCoreAsync(stateName, grainId, grainState));

    private async Task ReadStateCoreAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var key = RingKeyOf(grainId, stateName);
        var record = await ReadRecordAsync(key, "read", stateName, grainId);
        if (record.State is { } bytes)
        {
            T? state;
            try
            {
                state = _options.GrainStorageSerializer.Deserialize<T>(new BinaryData(bytes));
            }
            catch (Exception ex)
            {
                throw new ChordGrainStorageException(
                    $"The state '{stateName}' of {grainId} at the ring key '{key}' could not be deserialized as {typeof(T)} by {_options.GrainStorageSerializer.GetType().Name}: {ex.Message}", ex);
            }

            grainState.State = state ?? CreateState<T>();
            grainState.RecordExists = true;
        }
        else
        {
            grainState.State = CreateState<T>();
            grainState.RecordExists = false;
        }

        grainState.ETag = record.ETag;
        Log.Read(_logger, _name, stateName, grainId.ToString(), key, record.ETag);
    }

    /// <inheritdoc />
    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MeasureAsync("write", () => WriteStateCoreAsync(stateName, grainId, grainState));

    private async Task WriteStateCoreAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var key = RingKeyOf(grainId, stateName);
        BinaryData bytes;
        try
        {
            bytes = _options.GrainStorageSerializer.Serialize(grainState.State);
        }
        catch (Exception ex)
        {
            throw new ChordGrainStorageException(
                $"The state '{stateName}' of {grainId} ({typeof(T)}) could not be serialized by {_options.GrainStorageSerializer.GetType().Name}: {ex.Message}", ex);
        }

        var state = bytes.ToMemory();
        var given = grainState.ETag;
        string? incarnation = null;
        var outcome = await UpdateRecordAsync(key, "write", stateName, grainId, given, current =>
        {
            incarnation = current.Incarnation ?? ChordStateRecord.NewIncarnation();
            return ChordStateRecord.Encode(incarnation, grainId, stateName, state);
        });
        grainState.ETag = ChordStateRecord.MakeETag(outcome.Current.Version, incarnation!);
        grainState.RecordExists = true;
        Log.Written(_logger, _name, stateName, grainId.ToString(), key, grainState.ETag);
    }

    /// <inheritdoc />
    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        MeasureAsync("clear", () => ClearStateCoreAsync(stateName, grainId, grainState));

    private async Task ClearStateCoreAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        ArgumentNullException.ThrowIfNull(grainState);
        var key = RingKeyOf(grainId, stateName);
        string? incarnation = null;
        var outcome = await UpdateRecordAsync(key, "clear", stateName, grainId, grainState.ETag, current =>
        {
            incarnation = current.Incarnation;
            if (!current.Exists)
            {
                return null; // nothing stored (never written, or deleted): clearing it again changes nothing and succeeds
            }

            return _options.DeleteStateOnClear ? MsgValue.Nil : ChordStateRecord.Encode(current.Incarnation!, grainId, stateName, null);
        });
        var etag = outcome.Current.Value.IsNil || incarnation is null ? null : ChordStateRecord.MakeETag(outcome.Current.Version, incarnation);
        grainState.ETag = etag;
        grainState.RecordExists = false;
        grainState.State = CreateState<T>();
        Log.Cleared(_logger, _name, stateName, grainId.ToString(), key, _options.DeleteStateOnClear, etag);
    }

    private Task InitAsync(CancellationToken cancellationToken)
    {
        if (!_silo.IsStarted)
        {
            throw new ChordGrainStorageException(
                $"The Chord grain storage '{_name}' starts at stage {_options.InitStage}, but the silo's ring node has not started; it starts at RuntimeGrainServices ({ServiceLifecycleStage.RuntimeGrainServices}).");
        }

        Log.Ready(_logger, _name, _options.DeleteStateOnClear, _options.GrainStorageSerializer.GetType().Name);
        return Task.CompletedTask;
    }

    private async Task MeasureAsync(string operation, Func<Task> run)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "failed";
        try
        {
            await run();
            outcome = "ok";
        }
        catch (InconsistentStateException)
        {
            outcome = "conflict";
            throw;
        }
        finally
        {
            var provider = new KeyValuePair<string, object?>("provider", _name);
            var op = new KeyValuePair<string, object?>("operation", operation);
            ChordStorageMetrics.Operations.Add(1, provider, op, new KeyValuePair<string, object?>("outcome", outcome));
            ChordStorageMetrics.Duration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, provider, op);
        }
    }

    private T CreateState<T>() => _activators.GetActivator<T>().Create();

    private async Task<ChordStateRecord> ReadRecordAsync(string key, string operation, string stateName, GrainId grainId)
    {
        VersionedValue read;
        try
        {
            read = await _silo.Node.GetVersionedAsync(key);
        }
        catch (Exception ex) when (ex is ChordTimeoutException or ChordNoMajorityException or ChordWriteException or InvalidOperationException)
        {
            throw new ChordGrainStorageException(
                $"The Chord grain storage '{_name}' could not {operation} the state '{stateName}' of {grainId}: reading the ring key '{key}' failed: {ex.Message}", ex);
        }

        return ChordStateRecord.Decode(read, key);
    }

    private InconsistentStateException Mismatch(string operation, string stateName, GrainId grainId, string key, string? stored, string? given)
    {
        var what = (stored, given) switch
        {
            (null, _) => "nothing is stored (never written, or deleted), so the ETag must be null",
            (_, null) => "a record is stored, so the ETag must be the stored one, not null (the state was written since this activation read it)",
            _ => "the state was written or cleared since this ETag was read",
        };
        return new InconsistentStateException(
            $"The Chord grain storage '{_name}' refused to {operation} the state '{stateName}' of {grainId} (ring key '{key}'): the stored ETag is {stored ?? "null"}, the given one {given ?? "null"}; {what}. Nothing was written.",
            stored ?? string.Empty,
            given ?? string.Empty);
    }

    /// <summary>
    /// The ETag-checked write: one update of the key's register from this silo, so the check and the write are one
    /// atomic step against every writer of the key (one quorum round when this silo wrote the key last).
    /// </summary>
    /// <param name="key">The ring key of the state.</param>
    /// <param name="operation">"write" or "clear", for messages.</param>
    /// <param name="stateName">The state's name, for messages.</param>
    /// <param name="grainId">The grain, for messages.</param>
    /// <param name="given">The ETag the grain holds; the write happens only when it is the stored one.</param>
    /// <param name="record">The new value given the current record (nil deletes), or null to write nothing.</param>
    private async Task<RegisterOutcome> UpdateRecordAsync(
        string key, string operation, string stateName, GrainId grainId, string? given, Func<ChordStateRecord, MsgValue?> record)
    {
        string? mismatch = null;
        RegisterOutcome outcome;
        var ringKey = RingNodeKey(key);
        if (!_silo.Node.RegisterServes(ringKey))
        {
            // py2p nodes keep no versions, so an ETag-checked write cannot be made atomic there (nor read back with one).
            throw new ChordGrainStorageException(
                $"The Chord grain storage '{_name}' could not {operation} the state '{stateName}' of {grainId}: the ring key '{key}' has positions on py2p nodes, which keep no versions, so grain state cannot be stored there with ETags. Nothing was written.");
        }

        try
        {
            outcome = await _silo.Node.UpdateAsync(ringKey, current =>
            {
                var stored = ChordStateRecord.Decode(current, key);
                mismatch = string.Equals(stored.ETag, given, StringComparison.Ordinal) ? null : stored.ETag ?? string.Empty;
                if (mismatch is not null)
                {
                    return RegisterChange.Keep;
                }

                return record(stored) is { } value ? RegisterChange.To(value) : RegisterChange.Keep;
            }, announce: false, safeToRerun: true); // the ETag check makes a rerun keep the value: at most one application
        }
        catch (Exception ex) when (ex is ChordTimeoutException or ChordNoMajorityException or ChordWriteException or InvalidOperationException)
        {
            throw new ChordGrainStorageException(
                $"The Chord grain storage '{_name}' could not {operation} the state '{stateName}' of {grainId}: the ETag-checked write of the ring key '{key}' failed, so it is not known to be stored "
                + $"(read the state before writing again): {ex.Message}", ex);
        }

        if (mismatch is not null)
        {
            var stored = mismatch.Length == 0 ? null : mismatch;
            Log.ETagMismatch(_logger, _name, operation, stateName, grainId.ToString(), key, stored, given);
            throw Mismatch(operation, stateName, grainId, key, stored, given);
        }

        return outcome;
    }

    private static byte[] RingNodeKey(string key) => System.Text.Encoding.UTF8.GetBytes(key);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Chord grain storage {Name} is ready (delete on clear: {DeleteOnClear}, serializer {Serializer})")]
        public static partial void Ready(ILogger logger, string name, bool deleteOnClear, string serializer);

        [LoggerMessage(2, LogLevel.Trace, "{Name}: read {StateName} of {GrainId} from {Key}, ETag {ETag}")]
        public static partial void Read(ILogger logger, string name, string stateName, string grainId, string key, string? eTag);

        [LoggerMessage(3, LogLevel.Trace, "{Name}: wrote {StateName} of {GrainId} to {Key}, ETag {ETag}")]
        public static partial void Written(ILogger logger, string name, string stateName, string grainId, string key, string eTag);

        [LoggerMessage(4, LogLevel.Trace, "{Name}: cleared {StateName} of {GrainId} at {Key} (deleted: {Deleted}), ETag {ETag}")]
        public static partial void Cleared(ILogger logger, string name, string stateName, string grainId, string key, bool deleted, string? eTag);

        [LoggerMessage(5, LogLevel.Debug, "{Name}: {Operation} of {StateName} of {GrainId} at {Key} refused: stored ETag {Stored}, given {Given}")]
        public static partial void ETagMismatch(ILogger logger, string name, string operation, string stateName, string grainId, string key, string? stored, string? given);
    }
}
