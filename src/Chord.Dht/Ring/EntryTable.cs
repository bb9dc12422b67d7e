using System.Collections;
using System.Collections.Concurrent;
using System.Numerics;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// A ring node's entries by slot: a concurrent map from slot to a cell that holds the slot's current entry. Replacing
/// the entry of a slot already present (every write of a key after its first) writes the cell and takes no lock; the
/// map itself changes only when a slot appears or goes. With a plain <see cref="ConcurrentDictionary{TKey, TValue}"/>
/// every write took one of its lock stripes, under the slot lock the writer already held: 4% of the storage bench's
/// CPU went to threads spinning there while a preempted holder (three busy threads on two cores) kept it.
/// </summary>
/// <remarks>
/// Writers and removers of one slot hold that slot's lock (<c>RingNode.LockFor</c>), as they did with the dictionary;
/// readers and enumeration take none. Should a write race a removal of its slot all the same, it is not lost: it
/// checks that its cell is still the slot's and, if not, writes again into the slot's new cell, as if it had come
/// after the removal. Enumeration is a moment-by-moment view, as a concurrent dictionary's is.
/// </remarks>
internal sealed class EntryTable : IEnumerable<KeyValuePair<(HashMethod Method, BigInteger Position), StoredEntry>>
{
    private readonly ConcurrentDictionary<(HashMethod Method, BigInteger Position), Cell> _cells;

    public EntryTable(int concurrencyLevel, int capacity) => _cells = new(concurrencyLevel, capacity);

    /// <summary>True when no slot holds an entry.</summary>
    public bool IsEmpty
    {
        get
        {
            using var entries = GetEnumerator();
            return !entries.MoveNext();
        }
    }

    /// <summary>Slots that hold an entry (walks the table).</summary>
    public int Count
    {
        get
        {
            var count = 0;
            foreach (var _ in this)
            {
                count++;
            }

            return count;
        }
    }

    /// <summary>Every entry held.</summary>
    public IEnumerable<StoredEntry> Values => this.Select(e => e.Value);

    /// <summary>Sets the slot's entry.</summary>
    public StoredEntry this[(HashMethod Method, BigInteger Position) slot]
    {
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            while (true)
            {
                var cell = _cells.GetOrAdd(slot, static _ => new Cell());
                cell.Entry = value;
                if (_cells.TryGetValue(slot, out var now) && ReferenceEquals(now, cell))
                {
                    return;
                }
            }
        }
    }

    public bool TryGetValue((HashMethod Method, BigInteger Position) slot, out StoredEntry entry)
    {
        if (_cells.TryGetValue(slot, out var cell) && cell.Entry is { } held)
        {
            entry = held;
            return true;
        }

        entry = null!;
        return false;
    }

    /// <summary>Removes the slot's entry; true when it held one.</summary>
    public bool TryRemove((HashMethod Method, BigInteger Position) slot)
    {
        if (!_cells.TryRemove(slot, out var cell))
        {
            return false;
        }

        var held = cell.Entry;
        cell.Entry = null; // a writer that still has this cell finds it gone from the map and writes again
        return held is not null;
    }

    public IEnumerator<KeyValuePair<(HashMethod Method, BigInteger Position), StoredEntry>> GetEnumerator()
    {
        foreach (var (slot, cell) in _cells)
        {
            if (cell.Entry is { } entry)
            {
                yield return new(slot, entry);
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Cell
    {
        private volatile StoredEntry? _entry;

        public StoredEntry? Entry
        {
            get => _entry;
            set => _entry = value;
        }
    }
}
