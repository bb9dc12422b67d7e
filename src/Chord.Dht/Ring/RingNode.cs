using System.Collections.Concurrent;
using System.Text;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring.Register;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Chord.Dht.Ring;

/// <summary>
/// A node of the chord ring (py2p's <c>ChordSocket</c>) on top of a <see cref="MeshNode"/>. A key is stored at
/// five positions, one per hash method; a read asks all five and returns the value the read quorum (3) agrees on.
/// </summary>
/// <remarks>
/// <para>A node starts <em>leeching</em>: it reads and writes as a client and stores nothing. <see cref="JoinAsync"/>
/// makes it <em>storing</em>; <see cref="UnjoinAsync"/> hands its entries to their new owners and makes it a
/// client again.</para>
/// <para>Routing: every node knows the ring's members (a directory kept by broadcasts of our own sub-flags) but
/// keeps connections only to its ring neighbours and to the owners of <c>id + 2^i</c> (Chord's fingers). A request
/// goes greedily to the connected storing peer nearest before the position, so it reaches the owner in about
/// ½·log₂N hops. A dead next hop is routed around.</para>
/// </remarks>
public sealed partial class RingNode : IAsyncDisposable
{
    // Striped: the default concurrency level is the processor count (two locks on a two-core machine), and every
    // accept, prepare and store of every key took one table-wide lock; under 64 writers both showed in the profile as
    // lock contention (Monitor and Lock slow paths, 13% of the process's CPU in the storage bench's writes). The table
    // keeps a cell per slot, so replacing an entry under its slot lock takes no second lock (EntryTable).
    private readonly EntryTable _table = new(SlotLockCount, 1024);
    private readonly Lock[] _slotLocks = [.. Enumerable.Range(0, SlotLockCount).Select(_ => new Lock())];
    private const int SlotLockCount = 64;
    private readonly ConcurrentDictionary<byte[], byte> _keys = new(ByteArrayComparer.Instance);
    private readonly CancellationTokenSource _stopping = new();
    private ITimer? _stabilizer;
    private ITimer? _antiEntropy;
    private int _disposed;

    /// <summary>Creates a ring node and its mesh node; nothing is opened until <see cref="StartAsync"/>.</summary>
    public RingNode(RingOptions options, ILoggerFactory? loggerFactory = null, IMeshTransport? transport = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<RingNode>();
        (_store, var meshOptions) = OpenStore(options);
        Mesh = new MeshNode(meshOptions, loggerFactory, transport);
        Mesh.RegisterHandler(HandleAsync);
        ReadBatchAnswersInPlace();
        Mesh.PeerConnected += OnPeerConnected;
        Mesh.PeerDisconnected += OnPeerDisconnected;
        Mesh.ExtraDialPolicy = ShouldDial;
    }

    /// <summary>The settings.</summary>
    public RingOptions Options { get; }

    /// <summary>The mesh node underneath.</summary>
    public MeshNode Mesh { get; }

    internal ILogger Logger { get; }

    /// <summary>Our node id.</summary>
    public string Id => Mesh.Id;

    /// <summary>Our position on the ring.</summary>
    public RingPosition Position { get; private set; }

    /// <summary>True while the node stores nothing (py2p's <c>leeching</c>); the state after start.</summary>
    public bool IsLeeching => !_storing;

    /// <summary>Raised when a key gets its first value (py2p's <c>add</c> event).</summary>
    public event EventHandler<ChordKeyEventArgs>? KeyAdded;

    /// <summary>Raised when a key is deleted (py2p's <c>delete</c> event).</summary>
    public event EventHandler<ChordKeyEventArgs>? KeyDeleted;

    /// <summary>The keys this node knows of, from its own writes and the ring's notify broadcasts.</summary>
    public IReadOnlyCollection<byte[]> Keys => [.. _keys.Keys];

    /// <summary>How many entries (positions) with a value this node stores (tombstones and bare promises excluded).</summary>
    public int StoredCount => _table.Values.Count(e => e.HasValue);

    /// <summary>Starts the mesh node (listener, id) and the ring's maintenance.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await Mesh.StartAsync(cancellationToken);
        Position = RingPosition.FromBase58(Id);
        LoadStoredEntries();
        var interval = Options.StabilizeInterval;
        _stabilizer = Options.Mesh.TimeProvider.CreateTimer(_ =>
        {
            Stabilize();
            GossipMembership();
            ReportSuspects();
        }, null, interval, interval);
        _antiEntropy = Options.Mesh.TimeProvider.CreateTimer(_ => RunInBackground(() => RunAntiEntropyAsync(_stopping.Token)), null,
            Options.AntiEntropyInterval, Options.AntiEntropyInterval);
    }

    /// <summary>Connects to a node of the ring (usually a seed) and waits for its handshake.</summary>
    public Task<MeshPeer> ConnectAsync(string host, int port, CancellationToken cancellationToken = default) =>
        Mesh.ConnectAsync(host, port, null, cancellationToken);

    /// <summary>Connects to a node of the ring (usually a seed) and waits for its handshake.</summary>
    public Task<MeshPeer> ConnectAsync(PeerAddress address, CancellationToken cancellationToken = default) =>
        Mesh.ConnectAsync(address, null, cancellationToken);

    // ---- the dictionary API --------------------------------------------------------------------------

    /// <summary>
    /// The value at least <see cref="RingOptions.ReadQuorum"/> positions agree on. Throws
    /// <see cref="ChordKeyNotFoundException"/> when they agree there is none, <see cref="ChordNoMajorityException"/>
    /// when they answered but disagree, and <see cref="ChordTimeoutException"/> when too few answered in time.
    /// </summary>
    public Task<MsgValue> GetAsync(string key, CancellationToken cancellationToken = default) => GetAsync(KeyBytes(key), cancellationToken);

    /// <inheritdoc cref="GetAsync(string, CancellationToken)"/>
    public async Task<MsgValue> GetAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        using var deadline = Deadline(cancellationToken);
        var read = await ReadAsync(key, deadline.Token, cancellationToken);
        return read.Value.IsNil ? throw NotFound(key) : read.Value;
    }

    /// <summary>py2p's <c>getSync(key, ifError)</c>: the agreed value, or <paramref name="fallback"/> on any of the three failures.</summary>
    public async Task<MsgValue> GetOrDefaultAsync(byte[] key, MsgValue fallback, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        using var deadline = ClockDeadline.Start(Options.Mesh.TimeProvider, timeout ?? Timeout.InfiniteTimeSpan, cancellationToken);

        try
        {
            return await GetAsync(key, deadline.Token);
        }
        catch (Exception e) when (e is ChordKeyNotFoundException or ChordNoMajorityException or ChordTimeoutException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return fallback;
        }
    }

    /// <inheritdoc cref="GetOrDefaultAsync(byte[], MsgValue, TimeSpan?, CancellationToken)"/>
    public Task<MsgValue> GetOrDefaultAsync(string key, MsgValue fallback, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        GetOrDefaultAsync(KeyBytes(key), fallback, timeout, cancellationToken);

    /// <summary>
    /// Stores <paramref name="value"/> at the key's five positions; completes when
    /// <see cref="RingOptions.WriteQuorum"/> owners acknowledged it, else throws <see cref="ChordWriteException"/>.
    /// </summary>
    public Task SetAsync(string key, MsgValue value, CancellationToken cancellationToken = default) => SetAsync(KeyBytes(key), value, cancellationToken);

    /// <inheritdoc cref="SetAsync(string, MsgValue, CancellationToken)"/>
    public async Task SetAsync(byte[] key, MsgValue value, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(value);
        if (value.IsNil)
        {
            throw new ArgumentException("A nil value deletes on the wire; call DeleteAsync to delete a key.", nameof(value));
        }

        using var deadline = Deadline(cancellationToken);
        if (RegisterServes(key))
        {
            await UpdateWithinAsync(key, _ => RegisterChange.To(value), deadline.Token, cancellationToken);
        }
        else
        {
            // py2p's path: a blind write needs only the versions, not the value.
            var highest = await HighestVersionAsync(key, deadline.Token, cancellationToken);
            await WriteQuorumAsync(key, SubFlag.Store, value, highest, deadline.Token, cancellationToken);
        }

        await AnnounceKeyAsync(key, added: true);
    }

    /// <summary>Deletes the key; throws <see cref="ChordKeyNotFoundException"/> when it has no value (py2p's <c>__delitem__</c>).</summary>
    public Task DeleteAsync(string key, CancellationToken cancellationToken = default) => DeleteAsync(KeyBytes(key), cancellationToken);

    /// <inheritdoc cref="DeleteAsync(string, CancellationToken)"/>
    public async Task DeleteAsync(byte[] key, CancellationToken cancellationToken = default) => await PopAsync(key, cancellationToken);

    /// <summary>Sets every pair (py2p's <c>update</c>); each is acknowledged as <see cref="SetAsync(byte[], MsgValue, CancellationToken)"/> is.</summary>
    public async Task UpdateAsync(IEnumerable<KeyValuePair<byte[], MsgValue>> pairs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        await Task.WhenAll(pairs.Select(pair => SetAsync(pair.Key, pair.Value, cancellationToken)));
    }

    /// <summary>
    /// Merges <paramref name="delta"/> (a map) into the map stored at the key, creating an empty map first, and
    /// returns the merged map the write quorum agrees on. A non-map delta, or a non-map stored value, is refused.
    /// </summary>
    public Task<MsgValue> ApplyDeltaAsync(string key, MsgValue delta, CancellationToken cancellationToken = default) =>
        ApplyDeltaAsync(KeyBytes(key), delta, cancellationToken);

    /// <inheritdoc cref="ApplyDeltaAsync(string, MsgValue, CancellationToken)"/>
    public async Task<MsgValue> ApplyDeltaAsync(byte[] key, MsgValue delta, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(delta);
        if (delta.Kind != MsgKind.Map)
        {
            throw new ArgumentException($"A delta must be a map; got a {delta.Kind}.", nameof(delta));
        }

        using var deadline = Deadline(cancellationToken);
        if (RegisterServes(key))
        {
            // Merged at the proposer over the committed map, so concurrent deltas never lose each other's fields.
            var outcome = await UpdateWithinAsync(key, current => RegisterChange.To(Merge(key, current.Value, delta)), deadline.Token, cancellationToken);
            await AnnounceKeyAsync(key, added: true);
            return outcome.Current.Value;
        }

        // py2p's form: each owner merges the delta into what it holds.
        var highest = await HighestVersionAsync(key, deadline.Token, cancellationToken);
        var results = (await WriteQuorumAsync(key, SubFlag.Delta, delta, highest, deadline.Token, cancellationToken)).Select(a => a.Result);
        await AnnounceKeyAsync(key, added: true);
        var merged = results.Where(r => r is not null).GroupBy(r => r!).OrderByDescending(g => g.Count()).FirstOrDefault();
        return merged?.Key ?? throw new ChordWriteException("No owner returned the merged map.", 0);
    }

    /// <summary>The map <paramref name="stored"/> (nil: empty) with the fields of <paramref name="delta"/> set.</summary>
    private static MsgValue Merge(byte[] key, MsgValue stored, MsgValue delta)
    {
        if (!stored.IsNil && stored.Kind != MsgKind.Map)
        {
            throw new ChordWriteException($"The delta to {Describe(key)} was refused: its value is a {stored.Kind}, not a map, so a delta cannot merge into it (nothing was written).", 0);
        }

        return MergeMaps(stored.IsNil ? [] : stored.AsMap(), delta);
    }

    /// <summary>The fields of <paramref name="stored"/> with those of the map <paramref name="delta"/> set (py2p's delta rule).</summary>
    private static MsgValue MergeMaps(IEnumerable<KeyValuePair<MsgValue, MsgValue>> stored, MsgValue delta)
    {
        var merged = stored.ToList();
        foreach (var entry in delta.AsMap())
        {
            var index = merged.FindIndex(e => e.Key.Equals(entry.Key));
            if (index >= 0)
            {
                merged[index] = entry;
            }
            else
            {
                merged.Add(entry);
            }
        }

        return MsgValue.Map(merged);
    }

    /// <summary>Reads and deletes the key; throws <see cref="ChordKeyNotFoundException"/> when it has no value.</summary>
    public async Task<MsgValue> PopAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        CheckKey(key);
        using var deadline = Deadline(cancellationToken);

        // A versioned tombstone: it outranks every older write, so a lagging position cannot bring the value back.
        var outcome = await UpdateWithinAsync(key, static current => current.Value.IsNil ? RegisterChange.Keep : RegisterChange.To(MsgValue.Nil),
            deadline.Token, cancellationToken);
        if (!outcome.Written)
        {
            throw NotFound(key);
        }

        await AnnounceKeyAsync(key, added: false);
        return outcome.Previous.Value;
    }

    /// <summary>Reads and deletes the key, or returns <paramref name="fallback"/> when it has no value.</summary>
    public async Task<MsgValue> PopAsync(byte[] key, MsgValue fallback, CancellationToken cancellationToken = default)
    {
        try
        {
            return await PopAsync(key, cancellationToken);
        }
        catch (ChordKeyNotFoundException)
        {
            return fallback;
        }
    }

    /// <inheritdoc cref="PopAsync(byte[], CancellationToken)"/>
    public Task<MsgValue> PopAsync(string key, CancellationToken cancellationToken = default) => PopAsync(KeyBytes(key), cancellationToken);

    /// <summary>Pops some known key with a value (py2p's <c>popitem</c>); throws <see cref="ChordKeyNotFoundException"/> when none has one.</summary>
    public async Task<KeyValuePair<byte[], MsgValue>> PopItemAsync(CancellationToken cancellationToken = default)
    {
        foreach (var key in Keys)
        {
            try
            {
                return new(key, await PopAsync(key, cancellationToken));
            }
            catch (ChordKeyNotFoundException)
            {
                _keys.TryRemove(key, out _); // stale: someone deleted it unseen
            }
        }

        throw new ChordKeyNotFoundException("popitem: no known key has a value.");
    }

    /// <summary>The values of the known keys that have one.</summary>
    public async IAsyncEnumerable<MsgValue> ValuesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in ItemsAsync(cancellationToken))
        {
            yield return item.Value;
        }
    }

    /// <summary>The known keys that have a value, with it. Keys without an agreed value are skipped.</summary>
    public async IAsyncEnumerable<KeyValuePair<byte[], MsgValue>> ItemsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var key in Keys)
        {
            MsgValue value;
            try
            {
                value = await GetAsync(key, cancellationToken);
            }
            catch (Exception e) when (e is ChordKeyNotFoundException or ChordNoMajorityException)
            {
                continue;
            }

            yield return new(key, value);
        }
    }

    /// <summary>A snapshot of every known key with its value (py2p's <c>copy</c>).</summary>
    public async Task<Dictionary<byte[], MsgValue>> CopyAsync(CancellationToken cancellationToken = default)
    {
        var copy = new Dictionary<byte[], MsgValue>(ByteArrayComparer.Instance);
        await foreach (var (key, value) in ItemsAsync(cancellationToken))
        {
            copy[key] = value;
        }

        return copy;
    }

    /// <summary>
    /// The entries this node stores whose (reduced) position lies in the clockwise range [<paramref name="start"/>,
    /// <paramref name="end"/>) (py2p's <c>dump_data</c>), grouped by method. start == end means the whole ring.
    /// </summary>
    public IReadOnlyDictionary<HashMethod, IReadOnlyDictionary<RingPosition, MsgValue>> DumpData(RingPosition start, RingPosition end)
    {
        var span = start == end ? RingPosition.Limit : start.Reduced.DistanceTo(end.Reduced);
        var result = KeyHashes.Methods.ToDictionary(m => m, _ => new Dictionary<RingPosition, MsgValue>());
        foreach (var ((method, position), entry) in _table)
        {
            var p = new RingPosition(position);
            if (entry.HasValue && start.Reduced.DistanceTo(p.Reduced) < span)
            {
                result[method][p] = entry.Value;
            }
        }

        return result.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<RingPosition, MsgValue>)kv.Value);
    }

    /// <summary>
    /// The original keys of the live entries this node stores (each once, whatever positions it holds), after
    /// <paramref name="after"/> in ordinal byte order, at most <paramref name="limit"/>. Entries written by py2p carry
    /// no key and are not listed. A listing across the ring merges every storing node's pages.
    /// </summary>
    public IReadOnlyList<byte[]> StoredKeys(byte[]? after, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var keys = new SortedSet<byte[]>(ByteArrayComparer.Instance);
        foreach (var entry in _table.Values)
        {
            if (entry is { HasValue: true, Key: { } key } && (after is null || ByteArrayComparer.Instance.Compare(key, after) > 0))
            {
                keys.Add(key);
                if (keys.Count > limit)
                {
                    keys.Remove(keys.Max!);
                }
            }
        }

        return [.. keys];
    }

    /// <summary>
    /// Removes a member that something outside the ring knows to be dead (Orleans declared its silo dead), tells
    /// the ring, and starts repairing the positions it held. A member that is still connected is left alone: the
    /// connection is better evidence than a report.
    /// </summary>
    /// <returns>True when the member was known and removed.</returns>
    public async Task<bool> ForgetMemberAsync(string id, string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (id == Id || Mesh.GetPeer(id) is not null || !_members.TryGetValue(id, out var member))
        {
            return false;
        }

        RemoveMember(id, reason);
        await Mesh.BroadcastPayloadAsync((long)RingSubFlag.Gone, MsgValue.BinAscii(id), member.Epoch);
        return true;
    }

    // ---- typed values ----------------------------------------------------------------------------------

    /// <summary>Stores any .NET value, converted by MessagePack-CSharp to maps and arrays a py2p node can read.</summary>
    public Task SetAsync<T>(string key, T value, CancellationToken cancellationToken = default) =>
        SetAsync(KeyBytes(key), MsgValueConverter.From(value), cancellationToken);

    /// <summary>Reads a value stored by <see cref="SetAsync{T}"/> (or any compatible msgpack) as <typeparamref name="T"/>.</summary>
    public async Task<T> GetAsync<T>(string key, CancellationToken cancellationToken = default) =>
        MsgValueConverter.To<T>(await GetAsync(KeyBytes(key), cancellationToken));

    /// <summary>Stops maintenance and closes the mesh node. Call <see cref="UnjoinAsync"/> first to hand data off.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await DrainBackgroundAsync(); // a client that writes and stops at once still leaves its copies
        await _stopping.CancelAsync();
        if (_stabilizer is not null)
        {
            await _stabilizer.DisposeAsync();
        }

        if (_antiEntropy is not null)
        {
            await _antiEntropy.DisposeAsync();
        }

        await Mesh.DisposeAsync();
        foreach (var pending in _pending.Values)
        {
            pending.TrySetCanceled();
        }

        foreach (var slotLock in _slotLocks)
        {
            slotLock.Enter(); // no read-modify-write of an entry is half done when the store closes
        }

        try
        {
            _store?.Dispose();
        }
        finally
        {
            foreach (var slotLock in _slotLocks)
            {
                slotLock.Exit();
            }
        }

        _stopping.Dispose();
    }

    internal static byte[] KeyBytes(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Encoding.UTF8.GetBytes(key);
    }

    private static void CheckKey(byte[] key) => ArgumentNullException.ThrowIfNull(key);

    internal static string Describe(byte[] key)
    {
        try
        {
            var text = new UTF8Encoding(false, true).GetString(key);
            return text.Length > 64 ? $"'{text[..64]}…'" : $"'{text}'";
        }
        catch (DecoderFallbackException)
        {
            return "0x" + Convert.ToHexStringLower(key.AsSpan(0, Math.Min(32, key.Length)));
        }
    }

    private async Task AnnounceKeyAsync(byte[] key, bool added)
    {
        var changed = added ? _keys.TryAdd(key, 0) : _keys.TryRemove(key, out _);
        if (!changed)
        {
            return;
        }

        RaiseKeyEvent(added ? KeyAdded : KeyDeleted, key);
        MsgValue[] payload = added
            ? [(long)SubFlag.Notify, MsgValue.Bin(key)]
            : [(long)SubFlag.Notify, MsgValue.Bin(key), MsgValue.BinAscii("del")];
        await Mesh.BroadcastPayloadAsync(payload);
    }

    private void RaiseKeyEvent(EventHandler<ChordKeyEventArgs>? handler, byte[] key)
    {
        try
        {
            handler?.Invoke(this, new ChordKeyEventArgs(key));
        }
        catch (Exception e)
        {
            RingLog.BackgroundFailed(Logger, e);
        }
    }
}
