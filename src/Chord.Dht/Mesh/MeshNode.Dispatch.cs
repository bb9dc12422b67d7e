using Chord.Dht.Wire;

namespace Chord.Dht.Mesh;

/// <summary>What the node does with each received message (PROTOCOL.md §4).</summary>
public sealed partial class MeshNode
{
    internal async ValueTask DispatchAsync(MeshPeer peer, Message message)
    {
        if (peer.Id is null && !IsMeshHandshake(message) && message.Type != MainFlag.Renegotiate)
        {
            MeshLog.Ignored(Logger, message.ToString(), peer.RemoteEndPoint, "it came before the handshake");
            return;
        }

        switch (message.Type)
        {
            case MainFlag.Broadcast:
                if (!AcceptBroadcast(message))
                {
                    return;
                }

                // Relay the same content (same sender, time, payload: same id) to everyone but where it came from.
                await SendToAllAsync(message, except: peer);
                break;
            case MainFlag.Renegotiate:
                await HandleRenegotiateAsync(peer, message);
                return;
            case MainFlag.Ping:
                await peer.SendAsync(CreateMessage(MainFlag.Pong, [.. message.Payload]));
                return;
            case MainFlag.Pong:
                peer.OnPong(message);
                return;
        }

        var received = new MeshMessage(this, peer, message);
        try
        {
            if (await HandleMeshAsync(received))
            {
                return;
            }

            foreach (var handler in _handlers)
            {
                if (await handler(received))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            CountException();
            MeshLog.HandlerFailed(Logger, message.ToString(), e);
            return;
        }

        if (message.Is(SubFlag.Whisper) || message.Is(SubFlag.Broadcast))
        {
            _received.Writer.TryWrite(received);
            Raise(MessageReceived, new MeshMessageEventArgs(received));
            return;
        }

        MeshLog.Ignored(Logger, message.ToString(), peer.Id ?? peer.RemoteEndPoint, "no handler claimed its sub-flag");
    }

    private static bool IsMeshHandshake(Message message) =>
        message.Type == MainFlag.Whisper && message.Is(SubFlag.Handshake) && message.Payload.Length == 5;

    private bool AcceptBroadcast(Message message)
    {
        if (message.Time < UnixTime - (long)Options.BroadcastWindow.TotalSeconds)
        {
            return false; // older than the window: py2p drops these too
        }

        return _seenBroadcasts.TryAdd(message.Id, message.Time);
    }

    private async ValueTask<bool> HandleMeshAsync(MeshMessage received)
    {
        var message = received.Message;
        var payload = message.Payload;
        switch (message.SubFlagValue)
        {
            case (int)SubFlag.Handshake when payload.Length == 5:
                await HandleHandshakeAsync(received.Peer, message);
                return true;
            case (int)SubFlag.Peers when payload.Length >= 2:
                HandlePeers(payload[1]);
                return true;
            case (int)SubFlag.Request when payload.Length >= 2 && payload[1].Kind == MsgKind.Str && payload[1].AsString() == "*":
                await received.Peer.WhisperAsync(PeersPayload());
                return true;
            case (int)SubFlag.Request when payload.Length >= 3:
                await HandleAddressRequestAsync(payload[1], payload[2]);
                return true;
            case (int)SubFlag.Response when payload.Length >= 3:
                HandleAddressResponse(payload[1], payload[2]);
                return true;
            default:
                return false;
        }
    }

    private async ValueTask HandleHandshakeAsync(MeshPeer peer, Message message)
    {
        var p = message.Payload;
        if (p[1].Kind != MsgKind.Bin || p[2].Kind != MsgKind.Bin || !TryReadAddress(p[3], out var address) || p[4].Kind != MsgKind.Array)
        {
            CountBadFrame();
            peer.Close("its handshake is malformed: expected [handshake, id(bin), protocol(bin), [host, port], [compression flags]]");
            return;
        }

        var protocol = p[2].AsAscii();
        if (protocol != ProtocolId)
        {
            peer.Close($"it speaks protocol {protocol}, not ours ({ProtocolId}, subnet '{Options.Subnet}')");
            return;
        }

        var id = p[1].AsAscii();
        if (id == Id)
        {
            peer.Close("it is this node itself");
            return;
        }

        if (peer.Id is not null)
        {
            return; // a repeated handshake on a live connection changes nothing
        }

        var theirs = p[4].AsArray()
            .Where(v => v.TryGetInt32(out var flag) && Compression.IsSupported(flag))
            .Select(v => (CompressionMethod)(byte)v.AsInt64())
            .ToArray();
        peer.SetHandshake(id, address, theirs);
        _awaiting.TryRemove(peer, out _);

        bool first;
        lock (_routingLock)
        {
            if (_routing.TryGetValue(id, out var existing) && !existing.IsClosed)
            {
                var keep = ChooseSurvivor(existing, peer);
                var drop = keep == peer ? existing : peer;
                MeshLog.ConflictResolved(Logger, id, keep.IsOutgoing ? "we" : "they");
                _routing[id] = keep;
                drop.Close();
                if (keep != peer)
                {
                    return;
                }
            }

            first = _routing.IsEmpty;
            _routing[id] = peer;
        }

        MeshLog.PeerAdded(Logger, id, address);
        await peer.WhisperAsync(PeersPayload());
        Raise(PeerConnected, new MeshPeerEventArgs(peer));
        if (first)
        {
            try
            {
                ConnectedToNetwork?.Invoke(this, EventArgs.Empty);
            }
            catch (Exception e)
            {
                CountException();
                MeshLog.HandlerFailed(Logger, nameof(ConnectedToNetwork), e);
            }
        }
    }

    /// <summary>
    /// Of two connections between the same two nodes, both nodes keep the one dialled by the node with the
    /// numerically smaller id, so each side closes the same one. Two in the same direction: the older stays.
    /// </summary>
    private MeshPeer ChooseSurvivor(MeshPeer existing, MeshPeer incoming)
    {
        if (existing.IsOutgoing == incoming.IsOutgoing)
        {
            return existing;
        }

        var weAreSmaller = RingPosition.FromBase58(Id) < RingPosition.FromBase58(incoming.Id!);
        return weAreSmaller == existing.IsOutgoing ? existing : incoming;
    }

    private MsgValue[] PeersPayload() =>
    [
        (long)SubFlag.Peers,
        MsgValue.Array(_routing.Values
            .Where(p => p.Address is not null && !p.IsClosed)
            .Select(p => MsgValue.Array(MsgValue.Array(p.Address!.Value.Host, p.Address.Value.Port), MsgValue.BinAscii(p.Id!)))),
    ];

    private void HandlePeers(MsgValue list)
    {
        if (list.Kind != MsgKind.Array)
        {
            return;
        }

        foreach (var entry in list.AsArray())
        {
            if (entry.Kind != MsgKind.Array || entry.Count != 2 || !TryReadAddress(entry.AsArray()[0], out var address)
                || entry.AsArray()[1].Kind != MsgKind.Bin)
            {
                continue; // one bad entry does not spoil the list
            }

            var id = entry.AsArray()[1].AsAscii();
            if (id == Id || _routing.ContainsKey(id) || _disposed != 0)
            {
                continue;
            }

            if (OutgoingCount + _dialing.Count < Options.MaxOutgoing || (ExtraDialPolicy?.Invoke(id) ?? false))
            {
                DialInBackground(address, id);
            }
        }
    }

    /// <summary>Dials a peer without waiting; failures are logged, not thrown (the peers list may be stale).</summary>
    internal void DialInBackground(PeerAddress address, string id)
    {
        if (!_dialing.TryAdd(id, 0))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await ConnectAsync(address, id, _stopping.Token);
            }
            catch (Exception e) when (e is MeshConnectException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                MeshLog.DialFailed(Logger, address, e.Message);
            }
            finally
            {
                _dialing.TryRemove(id, out _);
            }
        });
    }

    private async ValueTask HandleAddressRequestAsync(MsgValue requestId, MsgValue wanted)
    {
        if (wanted.Kind != MsgKind.Bin || GetPeer(wanted.AsAscii()) is not { Address: { } address })
        {
            return;
        }

        await BroadcastPayloadAsync((long)SubFlag.Response, requestId, MsgValue.Array(MsgValue.Array(address.Host, address.Port), wanted));
    }

    private void HandleAddressResponse(MsgValue requestId, MsgValue answer)
    {
        if (requestId.Kind != MsgKind.Str || !_pendingRequests.TryGetValue(requestId.AsString(), out var pending))
        {
            return;
        }

        if (answer.Kind == MsgKind.Array && answer.Count == 2 && TryReadAddress(answer.AsArray()[0], out var address))
        {
            pending.TrySetResult(address);
        }
    }

    private async ValueTask HandleRenegotiateAsync(MeshPeer peer, Message message)
    {
        var p = message.Payload;
        if (message.Is(SubFlag.Compression) && p.Length >= 2 && p[1].Kind == MsgKind.Array)
        {
            var offered = p[1].AsArray();
            var agreed = offered
                .Where(v => v.TryGetInt32(out var flag) && Compression.IsSupported(flag) && Options.Compression.Contains((CompressionMethod)flag))
                .Select(v => (CompressionMethod)(byte)v.AsInt64())
                .ToArray();
            peer.SetCompression(agreed);
            if (agreed.Length != offered.Length)
            {
                await peer.SendAsync(CreateMessage(MainFlag.Renegotiate, (long)SubFlag.Compression, MsgValue.Array(agreed.Select(c => MsgValue.From((long)c)))));
            }
        }
        else if (message.Is(SubFlag.Resend) && peer.LastSent is { } last)
        {
            await peer.SendAsync(last);
        }
    }

    private static bool TryReadAddress(MsgValue value, out PeerAddress address)
    {
        address = default;
        if (value.Kind != MsgKind.Array || value.Count != 2)
        {
            return false;
        }

        var parts = value.AsArray();
        if (parts[0].Kind != MsgKind.Str || !parts[1].TryGetInt32(out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        address = new PeerAddress(parts[0].AsString(), port);
        return true;
    }
}
