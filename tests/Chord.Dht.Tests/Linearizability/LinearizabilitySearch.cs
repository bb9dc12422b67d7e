using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// Wing &amp; Gong's search with Lowe's memoization over one register's history, in the style of Porcupine:
/// a doubly-linked list of call/return entries sorted by time, from which linearized operations are "lifted"
/// (and restored on backtracking), a stack of choices, and a cache of visited (linearized set, value) configurations.
/// </summary>
/// <remarks>
/// <para>Refinements keep the search small. Each skips only configurations from which no linearization exists, or
/// whose linearizations an already-visited configuration can match:</para>
/// <list type="bullet">
/// <item>Values that no operation can observe (no read returns them, no compare-and-set expects them) are all the
/// same "unobservable" value.</item>
/// <item>A candidate that leaves the value unchanged and is legal now (a read returning the current value, a
/// compare-and-set that rightly failed) can always be moved first: it is taken without trying alternatives.</item>
/// <item>A configuration is abandoned at once when a pending read (or successful compare-and-set) needs a value the
/// register does not hold and that no remaining operation invoked before its response can write.</item>
/// <item>Operations of unknown outcome have their return at +infinity and need not be linearized at all: definite
/// operations are tried first, and an unknown one is only linearized when it changes the value and a candidate can
/// observe the new value next (any other placement can be dropped from a linearization).</item>
/// <item>Interchangeable operations (same effect and legality) are tried in one order only: among definite ones, the
/// one that must respond first; among unknown ones, the one invoked first.</item>
/// <item>The cache matches dominated configurations, not just equal ones: same value and same observable definite
/// operations, but a subset of the unknown ones, or (when no compare-and-set ever fails) a superset of the definite
/// writes of unobservable values, which nothing can tell from never having happened once overwritten.</item>
/// </list>
/// <para>Definite operations are numbered by invocation, so the linearized set is a run of ones followed by a short
/// window; cache entries store only that window.</para>
/// </remarks>
internal sealed class LinearizabilitySearch
{
    private const int None = -1;
    private const int DoomLookahead = 24;
    private const int Unobservable = 0;

    private readonly Operation[] _operations;
    private readonly OperationKind[] _kind;
    private readonly bool[] _definite;
    private readonly bool[] _swapped;
    private readonly int[] _argument;
    private readonly int[] _expected;
    private readonly int[] _produces;
    private readonly int[] _requires;
    private readonly int[] _slot;
    private readonly int _definiteCount;
    private readonly int _unknownCount;
    private readonly int _valueCount;
    private readonly Dictionary<string, int> _valueIds = new(StringComparer.Ordinal);
    private readonly int _nullId;
    private readonly ulong[] _fullWord;
    private readonly ulong[] _forgettableMask;
    private readonly int _head;
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _entryOperation;
    private readonly bool[] _entryIsCall;
    private readonly int[] _match;
    private readonly ulong[] _zobrist;
    private readonly int[] _signature;
    private readonly int[] _responseRank;
    private readonly int[] _previousTwin;
    private readonly int[] _seenStamp;
    private int _stamp;

    /// <param name="operations">Operations of one key: Ok ones, and Unknown ones that are not reads.</param>
    public LinearizabilitySearch(Operation[] operations)
    {
        _operations = operations;
        var n = operations.Length;
        _kind = new OperationKind[n];
        _definite = new bool[n];
        _swapped = new bool[n];
        for (var i = 0; i < n; i++)
        {
            _kind[i] = operations[i].Kind;
            _definite[i] = operations[i].Outcome == OperationOutcome.Ok;
            _swapped[i] = operations[i].Swapped;
        }

        // Values: 0 = unobservable, then every value some operation can observe.
        var nullObservable = false;
        foreach (var operation in operations)
        {
            var observed = operation.Kind switch
            {
                OperationKind.Read => operation.Value,
                OperationKind.CompareAndSet => operation.Expected,
                _ => "",
            };
            if (operation.Kind is OperationKind.Read or OperationKind.CompareAndSet)
            {
                if (observed is null)
                {
                    nullObservable = true;
                }
                else if (!_valueIds.ContainsKey(observed))
                {
                    _valueIds.Add(observed, _valueIds.Count + 1);
                }
            }
        }

        _nullId = nullObservable ? _valueIds.Count + 1 : Unobservable;
        _valueCount = _valueIds.Count + 2;
        _argument = new int[n];
        _expected = new int[n];
        _produces = new int[n];
        _requires = new int[n];
        for (var i = 0; i < n; i++)
        {
            var operation = operations[i];
            _argument[i] = operation.Kind == OperationKind.Delete ? _nullId : ValueId(operation.Value);
            _expected[i] = ValueId(operation.Expected);
            (_produces[i], _requires[i]) = operation.Kind switch
            {
                OperationKind.Read => (None, _definite[i] ? _argument[i] : None),
                OperationKind.CompareAndSet when !_definite[i] => (_argument[i], None),
                OperationKind.CompareAndSet when operation.Swapped => (_argument[i], _expected[i]),
                OperationKind.CompareAndSet => (None, None),
                _ => (_argument[i], None),
            };
        }

        // Slots: definite operations by invocation (so the linearized set is mostly a prefix), unknown ones apart.
        _slot = new int[n];
        foreach (var i in Enumerable.Range(0, n).Where(i => _definite[i]).OrderBy(i => operations[i].InvokedAt).ThenBy(i => i))
        {
            _slot[i] = _definiteCount++;
        }

        for (var i = 0; i < n; i++)
        {
            if (!_definite[i])
            {
                _slot[i] = _unknownCount++;
            }
        }

        var words = Math.Max(1, (_definiteCount + 63) >> 6);
        _fullWord = new ulong[words];
        for (var w = 0; w < words; w++)
        {
            var bits = Math.Clamp(_definiteCount - (w * 64), 0, 64);
            _fullWord[w] = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        }

        // Definite writes of unobservable values are forgettable once overwritten, unless a failed compare-and-set
        // could tell the unobservable value from the one it overwrote.
        var forgettable = !Enumerable.Range(0, n).Any(i => _definite[i] && _kind[i] == OperationKind.CompareAndSet && !_swapped[i]);
        _forgettableMask = new ulong[words];
        _zobrist = new ulong[n];
        var seed = 0x9E3779B97F4A7C15UL;
        for (var i = 0; i < n; i++)
        {
            var random = SplitMix64(ref seed);
            if (forgettable && _definite[i] && _kind[i] is OperationKind.Write or OperationKind.Delete && _argument[i] == Unobservable)
            {
                _forgettableMask[_slot[i] >> 6] |= 1UL << (_slot[i] & 63);
            }
            else if (_definite[i])
            {
                _zobrist[i] = random;
            }
        }

        // Entries sorted by time; at equal times calls come first, so touching intervals count as concurrent.
        var events = new (long Time, int IsReturn, int Operation)[2 * n];
        for (var i = 0; i < n; i++)
        {
            events[2 * i] = (operations[i].InvokedAt, 0, i);
            events[(2 * i) + 1] = (_definite[i] ? operations[i].RespondedAt : Operation.Infinity, 1, i);
        }

        Array.Sort(events);
        _head = 2 * n;
        _next = new int[(2 * n) + 1];
        _prev = new int[(2 * n) + 1];
        _entryOperation = new int[2 * n];
        _entryIsCall = new bool[2 * n];
        _match = new int[2 * n];
        var callEntry = new int[n];
        for (var e = 0; e < 2 * n; e++)
        {
            _entryOperation[e] = events[e].Operation;
            _entryIsCall[e] = events[e].IsReturn == 0;
            if (_entryIsCall[e])
            {
                callEntry[events[e].Operation] = e;
            }
            else
            {
                _match[callEntry[events[e].Operation]] = e;
            }

            _prev[e] = e == 0 ? _head : e - 1;
            _next[e] = e == (2 * n) - 1 ? None : e + 1;
        }

        _next[_head] = n == 0 ? None : 0;
        _seenStamp = new int[_valueCount];

        // Interchangeable operations: same effect on the register and same legality.
        _signature = new int[n];
        var signatures = new Dictionary<(OperationKind, int, int, bool), int>();
        for (var i = 0; i < n; i++)
        {
            var shape = _kind[i] switch
            {
                OperationKind.Read => (OperationKind.Read, _argument[i], 0, _definite[i]),
                OperationKind.CompareAndSet => (OperationKind.CompareAndSet, _argument[i], _expected[i], _definite[i] && _swapped[i]),
                _ => (OperationKind.Write, _argument[i], 0, _definite[i]),
            };
            if (!signatures.TryGetValue(shape, out _signature[i]))
            {
                _signature[i] = signatures.Count;
                signatures.Add(shape, _signature[i]);
            }
        }

        _responseRank = new int[n];
        var rank = 0;
        foreach (var i in Enumerable.Range(0, n).OrderBy(i => _definite[i] ? operations[i].RespondedAt : Operation.Infinity).ThenBy(i => i))
        {
            _responseRank[i] = rank++;
        }

        _previousTwin = new int[n];
        var lastTwin = new Dictionary<int, int>();
        foreach (var i in Enumerable.Range(0, n).OrderBy(i => operations[i].InvokedAt).ThenBy(i => i))
        {
            _previousTwin[i] = None;
            if (!_definite[i])
            {
                _previousTwin[i] = lastTwin.GetValueOrDefault(_signature[i], None);
                lastTwin[_signature[i]] = i;
            }
        }
    }

    /// <summary>Searches for a linearization starting from <paramref name="initialValue"/>, giving up at <paramref name="deadline"/> (Stopwatch ticks).</summary>
    public SearchOutcome Run(string? initialValue, long deadline)
    {
        var run = new SearchRun(this, initialValue is null ? _nullId : ValueId(initialValue));
        if (_definiteCount > 0 && IsDoomed(run.State))
        {
            run.Backtrack();
            return new SearchOutcome(LinearizabilityVerdict.NotLinearizable, run.Best, run.Explored);
        }

        long iterations = 0;
        while (true)
        {
            if (run.DefiniteDone == _definiteCount)
            {
                return new SearchOutcome(LinearizabilityVerdict.Linearizable, run.StackOperations(), run.Explored);
            }

            if ((++iterations & 0x3FF) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                run.RecordIfBest();
                return new SearchOutcome(LinearizabilityVerdict.Inconclusive, run.Best, run.Explored);
            }

            if (run.CheckForced)
            {
                run.CheckForced = false;
                var forced = FindLegalPureOperation(run.State);
                if (forced != None)
                {
                    if (!run.TryPush(forced, run.State, forced: true) && !run.Backtrack())
                    {
                        return new SearchOutcome(LinearizabilityVerdict.NotLinearizable, run.Best, run.Explored);
                    }

                    continue;
                }
            }

            var entry = run.Entry;
            if (entry != None && _entryIsCall[entry])
            {
                var operation = _entryOperation[entry];
                if (!(_definite[operation] == run.DefinitePass
                    && Step(run.State, operation, out var newState)
                    && (_definite[operation]
                        ? !HasEarlierTwin(entry, operation)
                        : newState != run.State && !run.IsUnused(_previousTwin[operation]) && HasObserver(newState, operation))
                    && run.TryPush(entry, newState, forced: false)))
                {
                    run.Entry = _next[entry];
                }

                continue;
            }

            // Reached the first pending return: every candidate of this pass has been tried.
            if (run.DefinitePass && _unknownCount > 0)
            {
                run.DefinitePass = false;
                run.Entry = _next[_head];
                continue;
            }

            if (!run.Backtrack())
            {
                return new SearchOutcome(LinearizabilityVerdict.NotLinearizable, run.Best, run.Explored);
            }
        }
    }

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong StateHash(int state) => ((ulong)state + 1) * 0xD6E8FEB86659FD93UL;

    private int ValueId(string? value) =>
        value is null ? _nullId : _valueIds.GetValueOrDefault(value, Unobservable);

    /// <summary>The sequential register: applies <paramref name="operation"/> to <paramref name="state"/>, false if its response is impossible.</summary>
    private bool Step(int state, int operation, out int next)
    {
        switch (_kind[operation])
        {
            case OperationKind.Read:
                next = state;
                return state == _argument[operation];
            case OperationKind.CompareAndSet:
                var matches = state == _expected[operation];
                if (!_definite[operation])
                {
                    next = matches ? _argument[operation] : state;
                    return true;
                }

                next = _swapped[operation] ? _argument[operation] : state;
                return _swapped[operation] == matches;
            default:
                next = _argument[operation];
                return true;
        }
    }

    /// <summary>A candidate call entry whose operation is definite, leaves the value unchanged, and is legal now.</summary>
    private int FindLegalPureOperation(int state)
    {
        for (var entry = _next[_head]; entry != None && _entryIsCall[entry]; entry = _next[entry])
        {
            var operation = _entryOperation[entry];
            if (!_definite[operation])
            {
                continue;
            }

            var legalPure = _kind[operation] switch
            {
                OperationKind.Read => state == _argument[operation],
                OperationKind.CompareAndSet => !_swapped[operation] && state != _expected[operation],
                _ => false,
            };
            if (legalPure)
            {
                return entry;
            }
        }

        return None;
    }

    /// <summary>
    /// Whether another candidate is interchangeable with <paramref name="operation"/> (same effect, same legality) and must
    /// respond no later: whatever linearization starts with <paramref name="operation"/>, swapping the two gives one that
    /// starts with the twin, so only the twin is tried.
    /// </summary>
    private bool HasEarlierTwin(int entry, int operation)
    {
        if (_kind[operation] == OperationKind.Read)
        {
            return false;
        }

        for (var other = _next[_head]; other != None && _entryIsCall[other]; other = _next[other])
        {
            var twin = _entryOperation[other];
            if (other != entry && _definite[twin] && _signature[twin] == _signature[operation] && _responseRank[twin] < _responseRank[operation])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether some candidate other than <paramref name="unknown"/> would observe the value <paramref name="state"/> it
    /// leaves: a read or compare-and-set legal in that state, or an unknown compare-and-set that would swap.
    /// </summary>
    private bool HasObserver(int state, int unknown)
    {
        for (var entry = _next[_head]; entry != None && _entryIsCall[entry]; entry = _next[entry])
        {
            var operation = _entryOperation[entry];
            if (operation == unknown)
            {
                continue;
            }

            var observes = _kind[operation] switch
            {
                OperationKind.Read => state == _argument[operation],
                OperationKind.CompareAndSet when _definite[operation] => Step(state, operation, out _),
                OperationKind.CompareAndSet => state == _expected[operation],
                _ => false,
            };
            if (observes)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether one of the pending operations responding soonest needs a value that the register does not hold and that
    /// no remaining operation invoked before that response can write: then nothing can be linearized from here.
    /// </summary>
    private bool IsDoomed(int state)
    {
        var stamp = ++_stamp;
        var returns = 0;
        for (var entry = _next[_head]; entry != None; entry = _next[entry])
        {
            var operation = _entryOperation[entry];
            if (_entryIsCall[entry])
            {
                if (_produces[operation] != None)
                {
                    _seenStamp[_produces[operation]] = stamp;
                }

                continue;
            }

            var needs = _requires[operation];
            if (needs != None && needs != state && _seenStamp[needs] != stamp)
            {
                return true;
            }

            if (++returns == DoomLookahead)
            {
                break;
            }
        }

        return false;
    }

    private void Lift(int call)
    {
        _next[_prev[call]] = _next[call];
        if (_next[call] != None)
        {
            _prev[_next[call]] = _prev[call];
        }

        var ret = _match[call];
        _next[_prev[ret]] = _next[ret];
        if (_next[ret] != None)
        {
            _prev[_next[ret]] = _prev[ret];
        }
    }

    private void Unlift(int call)
    {
        var ret = _match[call];
        _next[_prev[ret]] = ret;
        if (_next[ret] != None)
        {
            _prev[_next[ret]] = ret;
        }

        _next[_prev[call]] = call;
        if (_next[call] != None)
        {
            _prev[_next[call]] = call;
        }
    }

    /// <summary>The result of <see cref="Run"/>: the witness order (or the longest prefix found) as operation indexes.</summary>
    internal sealed record SearchOutcome(LinearizabilityVerdict Verdict, int[] Order, long Explored);

    /// <summary>The mutable state of one search: the current configuration, the stack of choices, the cache.</summary>
    private sealed class SearchRun
    {
        private readonly LinearizabilitySearch _search;
        private readonly ulong[] _definiteBits;
        private readonly ulong[] _unknownBits;
        private readonly int[] _stackEntry;
        private readonly int[] _stackState;
        private readonly bool[] _stackForced;
        private readonly Dictionary<ulong, CacheNode> _cache = [];
        private ulong[]? _unknownSnapshot;
        private ulong _definiteHash;
        private int _depth;
        private int _bestDefinite = -1;
        private int _fullWords;
        private int _highWord;

        public SearchRun(LinearizabilitySearch search, int initialState)
        {
            _search = search;
            var n = search._operations.Length;
            _definiteBits = new ulong[search._fullWord.Length];
            _unknownBits = new ulong[Math.Max(1, (search._unknownCount + 63) >> 6)];
            _stackEntry = new int[n];
            _stackState = new int[n];
            _stackForced = new bool[n];
            State = initialState;
            Entry = search._next[search._head];
        }

        /// <summary>The register's value (interned) after the operations on the stack.</summary>
        public int State { get; private set; }

        /// <summary>The next list entry to consider at the current configuration.</summary>
        public int Entry { get; set; }

        /// <summary>Whether definite operations (true) or unknown-outcome ones (false) are being tried.</summary>
        public bool DefinitePass { get; set; } = true;

        /// <summary>Whether the current configuration has yet to be checked for a legal pure operation.</summary>
        public bool CheckForced { get; set; } = true;

        public int DefiniteDone { get; private set; }

        public long Explored { get; private set; }

        public int[] Best { get; private set; } = [];

        /// <summary>
        /// Linearizes the call at <paramref name="entry"/> (reaching <paramref name="newState"/>) unless that configuration
        /// is already covered by the cache. A new configuration that is doomed is entered and abandoned at once.
        /// </summary>
        public bool TryPush(int entry, int newState, bool forced)
        {
            var operation = _search._entryOperation[entry];
            if (!Visit(operation, newState))
            {
                return false;
            }

            Explored++;
            _stackEntry[_depth] = entry;
            _stackState[_depth] = State;
            _stackForced[_depth] = forced;
            _depth++;
            State = newState;
            Toggle(operation);
            if (_search._definite[operation])
            {
                _definiteHash ^= _search._zobrist[operation];
                DefiniteDone++;
            }

            _search.Lift(entry);
            Entry = _search._next[_search._head];
            DefinitePass = true;
            CheckForced = true;
            if (DefiniteDone < _search._definiteCount && _search.IsDoomed(State))
            {
                // Pretend every candidate was tried: the caller's next step backtracks.
                CheckForced = false;
                DefinitePass = false;
                Entry = None;
            }

            return true;
        }

        /// <summary>
        /// The current configuration is exhausted: undo the last choice and move on to the next candidate at that level
        /// (or further up, past forced choices). False when there is nothing left to undo.
        /// </summary>
        public bool Backtrack()
        {
            while (true)
            {
                RecordIfBest();
                if (_depth == 0)
                {
                    return false;
                }

                _depth--;
                var entry = _stackEntry[_depth];
                State = _stackState[_depth];
                var operation = _search._entryOperation[entry];
                Toggle(operation);
                if (_search._definite[operation])
                {
                    _definiteHash ^= _search._zobrist[operation];
                    DefiniteDone--;
                }

                _search.Unlift(entry);
                if (!_stackForced[_depth])
                {
                    Entry = _search._next[entry];
                    DefinitePass = _search._definite[operation];
                    CheckForced = false;
                    return true;
                }
            }
        }

        /// <summary>Whether <paramref name="unknown"/> is an unknown-outcome operation not linearized yet (false for None).</summary>
        public bool IsUnused(int unknown)
        {
            if (unknown == None)
            {
                return false;
            }

            var slot = _search._slot[unknown];
            return (_unknownBits[slot >> 6] & (1UL << (slot & 63))) == 0;
        }

        /// <summary>Remembers the stack as the longest prefix if it has more definite operations than any before.</summary>
        public void RecordIfBest()
        {
            if (DefiniteDone > _bestDefinite)
            {
                _bestDefinite = DefiniteDone;
                Best = StackOperations();
            }
        }

        /// <summary>The operations on the stack, in linearization order.</summary>
        public int[] StackOperations()
        {
            var order = new int[_depth];
            for (var i = 0; i < _depth; i++)
            {
                order[i] = _search._entryOperation[_stackEntry[i]];
            }

            return order;
        }

        /// <summary>
        /// Records the configuration reached by linearizing <paramref name="operation"/> into <paramref name="newState"/>;
        /// false if a cached configuration dominates it.
        /// </summary>
        private bool Visit(int operation, int newState)
        {
            var definite = _search._definite[operation];
            var slot = _search._slot[operation];
            var addWord = definite ? slot >> 6 : -1;
            var addBit = definite ? 1UL << (slot & 63) : 0;
            var key = (definite ? _definiteHash ^ _search._zobrist[operation] : _definiteHash) ^ StateHash(newState);
            while (_highWord > 0 && _definiteBits[_highWord] == 0)
            {
                _highWord--;
            }

            var end = Math.Max(_highWord, addWord) + 1;
            ref var chain = ref CollectionsMarshal.GetValueRefOrAddDefault(_cache, key, out _);
            for (var node = chain; node is not null; node = node.Next)
            {
                if (node.State == newState
                    && DefiniteDominates(node, end, addWord, addBit)
                    && UnknownDominates(node.Unknown, definite ? None : slot))
                {
                    return false;
                }
            }

            var window = new ulong[end - _fullWords];
            for (var w = _fullWords; w < end; w++)
            {
                window[w - _fullWords] = _definiteBits[w] | (w == addWord ? addBit : 0);
            }

            ulong[] unknown;
            if (definite)
            {
                // Nodes share one immutable copy of the unknown set until it changes.
                unknown = _unknownSnapshot ??= (ulong[])_unknownBits.Clone();
            }
            else
            {
                unknown = (ulong[])_unknownBits.Clone();
                unknown[slot >> 6] |= 1UL << (slot & 63);
            }

            chain = new CacheNode(_fullWords, window, unknown, newState, chain);
            return true;
        }

        /// <summary>Same observable definite operations, and a superset of the forgettable ones (exactly equal when there are none).</summary>
        private bool DefiniteDominates(CacheNode node, int end, int addWord, ulong addBit)
        {
            var full = _search._fullWord;
            var forgettable = _search._forgettableMask;
            var from = Math.Min(node.FullWords, _fullWords);
            var to = Math.Max(end, node.FullWords + node.Window.Length);
            for (var w = from; w < to; w++)
            {
                var current = (w < _definiteBits.Length ? _definiteBits[w] : 0) | (w == addWord ? addBit : 0);
                var stored = w < node.FullWords ? full[w] : w - node.FullWords < node.Window.Length ? node.Window[w - node.FullWords] : 0;
                if (((stored ^ current) & ~forgettable[w]) != 0 || (current & ~stored) != 0)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>The stored unknown operations are a subset of the current ones (plus <paramref name="addSlot"/>).</summary>
        private bool UnknownDominates(ulong[] stored, int addSlot)
        {
            for (var w = 0; w < stored.Length; w++)
            {
                var current = _unknownBits[w] | (addSlot != None && w == addSlot >> 6 ? 1UL << (addSlot & 63) : 0);
                if ((stored[w] & ~current) != 0)
                {
                    return false;
                }
            }

            return true;
        }

        private void Toggle(int operation)
        {
            var slot = _search._slot[operation];
            var word = slot >> 6;
            if (!_search._definite[operation])
            {
                _unknownBits[word] ^= 1UL << (slot & 63);
                _unknownSnapshot = null;
                return;
            }

            _definiteBits[word] ^= 1UL << (slot & 63);
            if (word < _fullWords)
            {
                _fullWords = word;
            }

            while (_fullWords < _definiteBits.Length && _definiteBits[_fullWords] == _search._fullWord[_fullWords])
            {
                _fullWords++;
            }

            _highWord = Math.Max(_highWord, Math.Min(word, _definiteBits.Length - 1));
        }
    }

    private sealed class CacheNode(int fullWords, ulong[] window, ulong[] unknown, int state, CacheNode? next)
    {
        /// <summary>Every definite operation in words below this one is linearized.</summary>
        public int FullWords { get; } = fullWords;

        /// <summary>The linearized definite operations from word <see cref="FullWords"/> on; zero beyond.</summary>
        public ulong[] Window { get; } = window;

        public ulong[] Unknown { get; } = unknown;

        public int State { get; } = state;

        public CacheNode? Next { get; } = next;
    }
}
