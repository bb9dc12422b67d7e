using System.Collections.Concurrent;
using Chord.Dht.Ring;

namespace Chord.Dht.Wire;

/// <summary>
/// A cache keyed by byte content, looked up with a span (no copy of the key), holding about
/// <see cref="Capacity"/> entries: when an add finds it full it is emptied, so whatever keys arrive (a stranger's
/// random ones included) it never holds much more than the bound. Concurrent adds that race an emptying may leave one
/// entry each above it. The count is kept apart, since <see cref="ConcurrentDictionary{TKey, TValue}.Count"/> takes
/// every lock.
/// </summary>
/// <typeparam name="TValue">What a key maps to.</typeparam>
internal sealed class BoundedSpanCache<TValue>
{
    private readonly ConcurrentDictionary<byte[], TValue> _entries = new(ByteArrayComparer.Instance);

    // Made once: a lookup checks the comparer when it is made, and lookups run for every frame and key.
    private readonly ConcurrentDictionary<byte[], TValue>.AlternateLookup<ReadOnlySpan<byte>> _bySpan;
    private int _count;

    public BoundedSpanCache(int capacity)
    {
        Capacity = capacity;
        _bySpan = _entries.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The bound.</summary>
    public int Capacity { get; }

    /// <summary>Entries held now (takes every lock: for tests).</summary>
    public int Count => _entries.Count;

    public bool TryGet(ReadOnlySpan<byte> key, out TValue value) => _bySpan.TryGetValue(key, out value!);

    /// <summary>Keeps <paramref name="value"/> for a copy of <paramref name="key"/>, emptying the cache first when it is full.</summary>
    public void Add(ReadOnlySpan<byte> key, TValue value)
    {
        if (Interlocked.Increment(ref _count) > Capacity)
        {
            _entries.Clear();
            Interlocked.Exchange(ref _count, 1);
        }

        if (!_bySpan.TryAdd(key, value))
        {
            Interlocked.Decrement(ref _count);
        }
    }
}
