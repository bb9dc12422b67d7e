using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Numerics;
using System.Text;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// A stand-in for a reference py2p 0.7 <c>ChordSocket</c> (PROTOCOL.md §5) built on a plain <see cref="MeshNode"/>:
/// it sends chord meta <c>[5, "0"|"1"]</c> on every new connection, keeps a table per hash method from
/// <c>[11 store, method, pos, value]</c> (nil deletes), answers <c>[12 retrieve, method, pos]</c> with exactly
/// <c>[13, method, pos, value-or-nil]</c>, merges <c>[17 delta, method, pos, map]</c>, forwards what it does not own
/// toward the owner it knows (storing peers learnt from their chord meta only) and records notify messages. Its quirks
/// are the reference's: a retrieve it forwards is answered twice (nil at once, the owner's value later), a delete of
/// an entry it lacks drops the connection (KeyError), and disposing it is <c>close()</c> (no handoff).
/// It never sends our extension sub-flags (0x30-0x33) nor trailing packets, and reads only the packets the
/// reference reads, so trailing packets we send are ignored as the reference ignores them.
/// </summary>
public sealed class LegacyPy2pPeer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Method, BigInteger Position), MsgValue> _table = new();
    private readonly ConcurrentDictionary<string, bool> _peerStoring = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Method, BigInteger Position), ConcurrentQueue<MeshPeer>> _relays = new();
    private readonly ConcurrentDictionary<(string Method, BigInteger Position), TaskCompletionSource<MsgValue>> _asked = new();
    private readonly ConcurrentDictionary<string, byte> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string From, ImmutableArray<MsgValue> Payload)> _received = new();
    private readonly ConcurrentQueue<Message> _sent = new();

    private LegacyPy2pPeer(MeshNode mesh, bool storing, bool answerRetrieves)
    {
        Mesh = mesh;
        IsStoring = storing;
        AnswersRetrieves = answerRetrieves;
        Mesh.RegisterHandler(HandleAsync);
        Mesh.PeerConnected += OnPeerConnected;
    }

    /// <summary>The mesh node underneath.</summary>
    public MeshNode Mesh { get; }

    /// <summary>Our node id.</summary>
    public string Id => Mesh.Id;

    /// <summary>True when this node has "joined" (chord meta "0"); false for a leeching py2p client.</summary>
    public bool IsStoring { get; }

    /// <summary>False makes it a black hole for retrieves: it never answers one (to provoke time-outs).</summary>
    public bool AnswersRetrieves { get; }

    /// <summary>How many entries it holds.</summary>
    public int StoredCount => _table.Count;

    /// <summary>The storing peers it knows, from their chord meta.</summary>
    public IReadOnlyCollection<string> StoringPeerIds => [.. _peerStoring.Where(kv => kv.Value).Select(kv => kv.Key)];

    /// <summary>Keys learnt from notify messages (as UTF-8 text), added and not deleted since.</summary>
    public IReadOnlyCollection<string> Keys => [.. _keys.Keys];

    /// <summary>Every ring-layer payload it received (mesh handshake, peers and requests are the mesh's own), with the sender's id.</summary>
    public IReadOnlyList<(string From, ImmutableArray<MsgValue> Payload)> Received => [.. _received];

    /// <summary>How many connections it dropped as the reference does on a delete of an entry it does not hold.</summary>
    public int KeyErrorDisconnects => Volatile.Read(ref _keyErrorDisconnects);

    private int _keyErrorDisconnects;

    /// <summary>Forgets what it holds at one position (an entry lost, or never stored).</summary>
    public void ForgetForTest(HashMethod method, RingPosition position) => _table.TryRemove((method.WireName(), position.Value), out _);

    /// <summary>Every message it sent from the ring layer.</summary>
    public IReadOnlyList<Message> Sent => [.. _sent];

    public static async Task<LegacyPy2pPeer> StartAsync(bool storing = true, bool answerRetrieves = true, IMeshTransport? transport = null)
    {
        var mesh = new MeshNode(new MeshOptions { Security = MeshSecurity.Off }, null, transport); // py2p authenticates nobody
        var peer = new LegacyPy2pPeer(mesh, storing, answerRetrieves);
        await mesh.StartAsync();
        return peer;
    }

    /// <summary>
    /// Starts stand-ins (ids are random) until one owns at least <paramref name="minShare"/> of the ring among
    /// <paramref name="ringIds"/>, so that keys with several positions on it are common; the others are disposed.
    /// When the ring has no gap wide enough for that share (its members' ids are random: four ids leave no gap of 30 %
    /// about once in a hundred rings), the share asked for is 60 % of the widest gap, so an attempt succeeds with a
    /// probability of at least 40 % of that gap and 200 attempts do not run out.
    /// </summary>
    public static async Task<LegacyPy2pPeer> StartOwningAsync(IReadOnlyCollection<string> ringIds, double minShare, bool storing = true, bool answerRetrieves = true)
    {
        var share = Math.Min(minShare, 0.6 * WidestGap(ringIds));
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var peer = await StartAsync(storing, answerRetrieves);
            var self = RingPosition.FromBase58(peer.Id);
            var arc = ringIds.Select(id => self.DistanceTo(RingPosition.FromBase58(id))).Min();
            if ((double)arc / (double)RingPosition.Limit >= share)
            {
                return peer;
            }

            await peer.DisposeAsync();
        }

        throw new InvalidOperationException($"no stand-in owned {share:P0} of the ring in 200 attempts");
    }

    /// <summary>The widest arc between two neighbouring ids of <paramref name="ringIds"/>, as a share of the ring.</summary>
    private static double WidestGap(IReadOnlyCollection<string> ringIds)
    {
        var positions = ringIds.Select(id => RingPosition.FromBase58(id)).ToList();
        return positions.Select(p => positions.Where(q => q != p).Select(p.DistanceTo).DefaultIfEmpty(RingPosition.Limit).Min())
            .Select(gap => (double)gap / (double)RingPosition.Limit)
            .Max();
    }

    /// <summary>Connects to one of our ring nodes (a py2p node learns storing peers only from direct connections).</summary>
    public Task<MeshPeer> ConnectAsync(RingNode node) => Mesh.ConnectAsync(node.Mesh.Address);

    /// <summary>What it holds at <paramref name="position"/> of <paramref name="method"/>, or null.</summary>
    public MsgValue? Stored(HashMethod method, RingPosition position) =>
        _table.TryGetValue((method.WireName(), position.Value), out var value) ? value : null;

    /// <summary>The store payloads it received for <paramref name="method"/> at <paramref name="position"/>, in order.</summary>
    public IReadOnlyList<ImmutableArray<MsgValue>> StoresAt(HashMethod method, RingPosition position) =>
        [.. Received.Select(r => r.Payload).Where(p => p[0] == MsgValue.From((long)SubFlag.Store) && IsAt(p, method, position))];

    /// <summary>The retrieve payloads it received for <paramref name="method"/> at <paramref name="position"/>, in order.</summary>
    public IReadOnlyList<ImmutableArray<MsgValue>> RetrievesAt(HashMethod method, RingPosition position) =>
        [.. Received.Select(r => r.Payload).Where(p => p[0] == MsgValue.From((long)SubFlag.Retrieve) && IsAt(p, method, position))];

    /// <summary>
    /// Sets a key as a py2p node does: for each of the five positions, <c>[store, method, pos, value]</c> to the owner
    /// it knows (or into its own table when it owns the position), then notify <c>[6, key]</c> as a broadcast.
    /// </summary>
    public async Task SetAsync(string key, MsgValue value)
    {
        var bytes = Encoding.UTF8.GetBytes(key);
        foreach (var method in KeyHashes.Methods)
        {
            await SendStoreAsync(method, KeyHashes.Position(method, bytes), value);
        }

        if (_keys.TryAdd(key, 0))
        {
            await SendAsync(null, MainFlag.Broadcast, (long)SubFlag.Notify, MsgValue.Bin(bytes));
        }
    }

    /// <summary>
    /// Gets a key as py2p's <c>getSync</c> does: a retrieve per position to the owner it knows (or its own table), and
    /// the value at least three positions agree on; nil (py2p's None) when none has three or too few answer in time.
    /// </summary>
    public async Task<MsgValue> GetAsync(string key, TimeSpan? timeout = null)
    {
        var bytes = Encoding.UTF8.GetBytes(key);
        var answers = await Task.WhenAll(KeyHashes.Methods.Select(async method =>
        {
            var position = KeyHashes.Position(method, bytes);
            var slot = (method.WireName(), position.Value);
            if (OwnerOf(position) is not { } owner)
            {
                return _table.TryGetValue(slot, out var held) ? held : MsgValue.Nil;
            }

            var answer = _asked.GetOrAdd(slot, _ => new TaskCompletionSource<MsgValue>(TaskCreationOptions.RunContinuationsAsynchronously));
            await SendAsync(owner, MainFlag.Whisper, (long)SubFlag.Retrieve, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()));
            try
            {
                return await answer.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                return (MsgValue?)null;
            }
            finally
            {
                _asked.TryRemove(KeyValuePair.Create(slot, answer));
            }
        }));
        var best = answers.Where(a => a is not null).GroupBy(a => a!).MaxBy(g => g.Count());
        return best is not null && best.Count() >= 3 ? best.Key : MsgValue.Nil;
    }

    /// <summary>Sends one <c>[store, method, pos, value]</c> toward the owner it knows (or applies it when it owns it).</summary>
    public async Task SendStoreAsync(HashMethod method, RingPosition position, MsgValue value)
    {
        var owner = OwnerOf(position);
        if (owner is null)
        {
            Apply(SubFlag.Store, method.WireName(), position.Value, value);
            return;
        }

        await SendAsync(owner, MainFlag.Whisper, (long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()), value);
    }

    /// <summary>Sends <c>[store, method, pos, value]</c> to one connected node, whoever owns the position.</summary>
    public async Task SendStoreToAsync(string nodeId, HashMethod method, RingPosition position, MsgValue value)
    {
        var peer = Mesh.GetPeer(nodeId) ?? throw new InvalidOperationException($"not connected to {nodeId}");
        await SendAsync(peer, MainFlag.Whisper, (long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()), value);
    }

    public ValueTask DisposeAsync() => Mesh.DisposeAsync();

    private static bool IsAt(ImmutableArray<MsgValue> p, HashMethod method, RingPosition position) =>
        p.Length >= 3 && p[1] == MsgValue.BinAscii(method.WireName()) && p[2] == MsgValue.BinAscii(position.ToBase58());

    /// <summary>The connection toward the owner of <paramref name="position"/>, or null when this node owns it.</summary>
    private MeshPeer? OwnerOf(RingPosition position)
    {
        var target = position.Reduced;
        var self = RingPosition.FromBase58(Id);
        var best = IsStoring ? self.DistanceTo(target) : RingPosition.Limit;
        MeshPeer? owner = null;
        foreach (var (id, storing) in _peerStoring)
        {
            if (!storing || Mesh.GetPeer(id) is not { } peer)
            {
                continue;
            }

            var distance = RingPosition.FromBase58(id).DistanceTo(target);
            if (distance < best)
            {
                best = distance;
                owner = peer;
            }
        }

        return owner;
    }

    private async ValueTask<bool> HandleAsync(MeshMessage received)
    {
        var p = received.Payload;
        var from = received.Peer;
        var flag = received.Message.SubFlagValue;
        if (flag is (int)SubFlag.Handshake or (int)SubFlag.Notify or (int)SubFlag.Store or (int)SubFlag.Retrieve
            or (int)SubFlag.Retrieved or (int)SubFlag.Delta)
        {
            _received.Enqueue((from.Id ?? "?", p));
        }

        switch (flag)
        {
            case (int)SubFlag.Handshake when p.Length == 2 && p[1].Kind == MsgKind.Str:
                _peerStoring[from.Id!] = p[1].AsString() == "0";
                return true;
            case (int)SubFlag.Notify when p.Length is 2 or 3 && p[1].Kind == MsgKind.Bin:
                var key = Encoding.UTF8.GetString(p[1].AsBytes().Span);
                if (p.Length == 2)
                {
                    _keys.TryAdd(key, 0);
                }
                else
                {
                    _keys.TryRemove(key, out _);
                }

                return true;
            case (int)SubFlag.Store or (int)SubFlag.Delta when p.Length >= 4 && TryRead(p, out var method, out var position):
                if (OwnerOf(position) is { } next)
                {
                    await SendAsync(next, MainFlag.Whisper, p[0], p[1], p[2], p[3]);
                }
                else if (p[0].AsInt64() == (long)SubFlag.Store && p[3].IsNil && !_table.ContainsKey((method, position.Value)))
                {
                    // The reference's `del self.data[method][key]` raises KeyError for an entry it lacks; the
                    // exception reaches its connection handler, which disconnects the peer that sent it.
                    Interlocked.Increment(ref _keyErrorDisconnects);
                    from.Close("py2p: KeyError deleting an entry it does not hold");
                }
                else
                {
                    Apply((SubFlag)p[0].AsInt64(), method, position.Value, p[3]);
                }

                return true;
            case (int)SubFlag.Retrieve when p.Length >= 3 && TryRead(p, out var method, out var position):
                if (!AnswersRetrieves)
                {
                    return true;
                }

                if (OwnerOf(position) is { } onward)
                {
                    // The reference's __handle_retrieve forwards the lookup and, its value not in yet, answers None at
                    // once; the owner's value follows later through the lookup's callback: two answers.
                    _relays.GetOrAdd((method, position.Value), _ => new()).Enqueue(from);
                    await SendAsync(onward, MainFlag.Whisper, (long)SubFlag.Retrieve, p[1], p[2]);
                    await SendAsync(from, MainFlag.Whisper, (long)SubFlag.Retrieved, p[1], p[2], MsgValue.Nil);
                }
                else
                {
                    var value = _table.TryGetValue((method, position.Value), out var held) ? held : MsgValue.Nil;
                    await SendAsync(from, MainFlag.Whisper, (long)SubFlag.Retrieved, p[1], p[2], value);
                }

                return true;
            case (int)SubFlag.Retrieved when p.Length >= 4 && TryRead(p, out var method, out var position):
                if (_asked.TryGetValue((method, position.Value), out var mine))
                {
                    mine.TrySetResult(p[3]); // our own getSync's question
                }

                if (_relays.TryRemove((method, position.Value), out var askers))
                {
                    while (askers.TryDequeue(out var asker))
                    {
                        await SendAsync(asker, MainFlag.Whisper, (long)SubFlag.Retrieved, p[1], p[2], p[3]);
                    }
                }

                return true;
            default:
                return false; // unknown sub-flags (our extensions among them) are ignored, as py2p ignores them
        }
    }

    private static bool TryRead(ImmutableArray<MsgValue> p, out string method, out RingPosition position)
    {
        method = string.Empty;
        position = default;
        if (p[1].Kind != MsgKind.Bin || p[2].Kind != MsgKind.Bin || !Base58.TryDecode(p[2].AsAscii(), out var value))
        {
            return false;
        }

        method = p[1].AsAscii();
        position = new RingPosition(value);
        return true;
    }

    private void Apply(SubFlag kind, string method, BigInteger position, MsgValue value)
    {
        var slot = (method, position);
        if (kind == SubFlag.Store)
        {
            if (value.IsNil)
            {
                _table.TryRemove(slot, out _);
            }
            else
            {
                _table[slot] = value;
            }

            return;
        }

        if (value.Kind != MsgKind.Map)
        {
            return; // the reference would fail on a non-dict delta; it stores nothing
        }

        lock (_table)
        {
            var stored = _table.TryGetValue(slot, out var held) && held.Kind == MsgKind.Map ? held.AsMap() : [];
            var merged = stored.Where(e => !value.TryGetValue(e.Key, out _)).Concat(value.AsMap());
            _table[slot] = MsgValue.Map(merged);
        }
    }

    private void OnPeerConnected(object? sender, MeshPeerEventArgs e)
    {
        // As the reference does on every new connection: chord meta (exactly two packets), then the keys it knows.
        _ = SendAsync(e.Peer, MainFlag.Whisper, (long)SubFlag.Handshake, IsStoring ? "0" : "1").AsTask();
        foreach (var key in _keys.Keys)
        {
            _ = SendAsync(e.Peer, MainFlag.Whisper, (long)SubFlag.Notify, MsgValue.Bin(Encoding.UTF8.GetBytes(key))).AsTask();
        }
    }

    /// <summary>Sends and records a message: a whisper to <paramref name="to"/>, or a broadcast to all when it is null.</summary>
    private async ValueTask SendAsync(MeshPeer? to, MainFlag type, params MsgValue[] payload)
    {
        if (type == MainFlag.Broadcast)
        {
            _sent.Enqueue(Mesh.CreateMessage(type, payload));
            await Mesh.BroadcastPayloadAsync(payload);
            return;
        }

        var message = Mesh.CreateMessage(type, payload);
        _sent.Enqueue(message);
        await to!.SendAsync(message);
    }
}
