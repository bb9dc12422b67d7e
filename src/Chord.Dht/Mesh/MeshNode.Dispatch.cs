using Chord.Dht.Wire;

namespace Chord.Dht.Mesh;

/// <summary>What the node does with each received message (PROTOCOL.md §4).</summary>
public sealed partial class MeshNode
{
    internal async ValueTask DispatchAsync(MeshPeer peer, Message message)
    {
        if (peer.IsRefused)
        {
            return;
        }

        if (!peer.IsAdmitted)
        {
            // Until a peer is served, only its challenge, handshake and proof are read (docs/SECURITY.md).
            if (IsAuthFrame(message, MeshAuthentication.ChallengeFlag))
            {
                HandleChallenge(peer, message);
            }
            else if (IsAuthFrame(message, MeshAuthentication.ProofFlag))
            {
                await HandleProofAsync(peer, message);
            }
            else if (IsMeshHandshake(message))
            {
                await HandleHandshakeAsync(peer, message);
            }
            else if (message.Type == MainFlag.Renegotiate && peer.Id is null && Options.Security != MeshSecurity.Required)
            {
                await HandleRenegotiateAsync(peer, message); // py2p may renegotiate before its handshake
            }
            else
            {
                MeshLog.Ignored(Logger, message.ToString(), peer.Id ?? peer.RemoteEndPoint, peer.Id is null ? "it came before the handshake" : "it came before the peer authenticated");
            }

            return;
        }

        if (Options.Security != MeshSecurity.Off && (IsAuthFrame(message, MeshAuthentication.ChallengeFlag) || IsAuthFrame(message, MeshAuthentication.ProofFlag)))
        {
            return; // authentication is over once a peer is served
        }

        switch (message.Type)
        {
            case MainFlag.Broadcast:
                if (!peer.IsAuthenticated && !IsPy2pSubFlag(message))
                {
                    // Relayed, it would reach our other nodes over authenticated connections and pass for theirs.
                    MeshLog.Ignored(Logger, message.ToString(), peer.Id ?? peer.RemoteEndPoint, "an extension broadcast from an unauthenticated peer is neither handled nor relayed");
                    return;
                }

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
            // The event first: whoever takes the message from the inbox can count on its event having been raised
            // (MeshFeatureTests read the inbox and then the events, and once saw the last event missing).
            Raise(MessageReceived, new MeshMessageEventArgs(received));
            _received.Writer.TryWrite(received);
            return;
        }

        MeshLog.Ignored(Logger, message.ToString(), peer.Id ?? peer.RemoteEndPoint, "no handler claimed its sub-flag");
    }

    private static bool IsPy2pSubFlag(Message message) =>
        message.SubFlagValue is { } flag && flag is >= 0 and <= byte.MaxValue && Enum.IsDefined((SubFlag)flag);

    private static bool IsAuthFrame(Message message, int flag) =>
        message.Type == MainFlag.Whisper && message.SubFlagValue == flag && message.Payload.Length >= 2;

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
                HandlePeers(payload[1], trusted: received.Peer.IsAuthenticated || Options.Security == MeshSecurity.Off);
                return true;
            case (int)SubFlag.Request when payload.Length >= 2 && IsAllPeers(payload[1]):
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

        if (peer.ExpectedId is { } expected && id != expected)
        {
            // Before any proof of ours goes out: we prove the secret only to the node we meant to dial.
            peer.Close($"it answered as node {id}, not the expected {expected}");
            return;
        }

        var theirs = p[4].AsArray()
            .Where(v => v.TryGetInt32(out var flag) && Compression.IsSupported(flag))
            .Select(v => (CompressionMethod)(byte)v.AsInt64())
            .ToArray();
        peer.SetHandshake(id, address, theirs);

        if (Options.Security == MeshSecurity.Off)
        {
            await AdmitAsync(peer);
        }
        else if (peer.RemoteNonce is null || !peer.ProvesSecret)
        {
            // No challenge before the handshake: a py2p node, or a node of ours with security Off.
            if (Options.Security == MeshSecurity.Required)
            {
                Refuse(peer, "no_challenge", "it did not authenticate (a py2p node, or a node without authentication); this node requires the cluster secret (security mode Required)");
                return;
            }

            await AdmitAsync(peer);
        }
        else
        {
            await peer.WhisperAsync((long)MeshAuthentication.ProofFlag, MsgValue.Bin(MeshAuthentication.Proof(_secret, ProtocolId, OwnRole(peer), Id, id, peer.RemoteNonce, peer.LocalNonce)));
        }
    }

    private static MeshAuthentication.Role OwnRole(MeshPeer peer) =>
        peer.IsOutgoing ? MeshAuthentication.Role.Dialler : MeshAuthentication.Role.Acceptor;

    private void HandleChallenge(MeshPeer peer, Message message)
    {
        if (Options.Security == MeshSecurity.Off || !peer.ProvesSecret)
        {
            return; // as a py2p node: an unknown sub-flag
        }

        var nonce = message.Payload[1];
        if (peer.Id is not null || peer.RemoteNonce is not null || nonce.Kind != MsgKind.Bin || nonce.AsBytes().Length != MeshAuthentication.Length)
        {
            Refuse(peer, "malformed", $"its challenge is malformed or out of order: expected one [auth_challenge, nonce(bin {MeshAuthentication.Length})] before its handshake");
            return;
        }

        peer.RemoteNonce = nonce.AsBytes().ToArray();

        // An optional third packet: the features the peer speaks (older nodes of ours send none, and ignore ours).
        if (message.Payload.Length > 2 && message.Payload[2].TryGetInt32(out var features)
            && (features & MeshAuthentication.BareDigestsFeature) != 0)
        {
            peer.BareDigests = true;
        }
    }

    private async ValueTask HandleProofAsync(MeshPeer peer, Message message)
    {
        if (Options.Security == MeshSecurity.Off)
        {
            return;
        }

        var proof = message.Payload[1];
        if (peer.Id is null || peer.RemoteNonce is null || proof.Kind != MsgKind.Bin)
        {
            Refuse(peer, "malformed", "its proof is malformed or out of order: expected [auth_proof, mac(bin 32)] after its challenge and handshake");
            return;
        }

        var theirRole = OwnRole(peer) == MeshAuthentication.Role.Dialler ? MeshAuthentication.Role.Acceptor : MeshAuthentication.Role.Dialler;
        var expected = MeshAuthentication.Proof(_secret, ProtocolId, theirRole, peer.Id, Id, peer.LocalNonce, peer.RemoteNonce);
        if (!MeshAuthentication.Verify(proof.AsBytes().Span, expected))
        {
            Refuse(peer, "wrong_proof", "its authentication proof is wrong: it does not know this cluster's secret");
            return;
        }

        peer.SetAuthenticated();
        MeshMetrics.Authenticated.Add(1);
        MeshLog.PeerAuthenticated(Logger, peer.Id, peer.RemoteEndPoint);
        await AdmitAsync(peer);
    }

    /// <summary>
    /// Closes a peer that failed authentication, with one warning naming its address (at most one a minute per
    /// address and reason: a stranger reconnecting in a loop does not flood the log; the rest go to Debug).
    /// </summary>
    private void Refuse(MeshPeer peer, string reason, string text)
    {
        if (LogOncePerMinute("refused/" + reason + "/" + peer.RemoteHost))
        {
            MeshLog.PeerRefused(Logger, peer.Id ?? "(no handshake)", peer.RemoteEndPoint, peer.Address?.ToString() ?? "nothing", text);
        }
        else
        {
            MeshLog.PeerRefusedAgain(Logger, peer.Id ?? "(no handshake)", peer.RemoteEndPoint, peer.Address?.ToString() ?? "nothing", text);
        }

        MeshMetrics.RefusedPeers.Add(1, new KeyValuePair<string, object?>("reason", reason));
        Interlocked.Increment(ref _refusedPeers); // after the log line, so a test that sees the count sees the line
        peer.Refuse();
    }

    /// <summary>
    /// The peer is served from now on: it enters the routing table (resolving a duplicate connection to the same
    /// node, which happens when both dialled at once: only now, after authentication, are both ids trusted), gets
    /// our peers list, and the layers above hear of it.
    /// </summary>
    private async ValueTask AdmitAsync(MeshPeer peer)
    {
        var id = peer.Id!;
        var address = peer.Address!.Value;
        _awaiting.TryRemove(peer, out _);
        _limitLogged.TryRemove("handshake/" + address + "/" + id, out _); // it answers: a later freeze is warned of again
        if (_dialBackoff.TryRemove(address + "/" + id, out var failedDials))
        {
            // Before the handshake completes, so that whoever waited for this connection finds the line logged.
            MeshLog.ReachableAgain(Logger, id, address, failedDials.Failures);
        }

        // Completed before a duplicate is closed, so a ConnectAsync waiting on the closed one finds the survivor.
        peer.Admit();

        bool first;
        lock (_routingLock)
        {
            if (_routing.TryGetValue(id, out var existing) && !existing.IsClosed)
            {
                var keep = ChooseSurvivor(existing, peer);
                var drop = keep == peer ? existing : peer;
                MeshLog.ConflictResolved(Logger, id, keep.IsOutgoing ? "we" : "they");
                _routing[id] = keep;
                RefreshRoutingSnapshot();
                drop.CloseAfterQueue();
                if (keep != peer)
                {
                    return;
                }
            }

            first = _routing.IsEmpty;
            _routing[id] = peer;
            RefreshRoutingSnapshot();
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
    /// numerically smaller id, so each side closes the same one. Two in the same direction (one node dialled twice):
    /// the one whose dialler's challenge nonce is smaller, which both sides know; the older one when there are none.
    /// </summary>
    private MeshPeer ChooseSurvivor(MeshPeer existing, MeshPeer incoming)
    {
        if (existing.IsAuthenticated != incoming.IsAuthenticated)
        {
            return existing.IsAuthenticated ? existing : incoming; // an unauthenticated peer never displaces a proven one
        }

        if (existing.IsOutgoing == incoming.IsOutgoing)
        {
            // Each side admits the two in its own order, so "the older" may name a different connection at each end:
            // each side then wrote only on the one the other was closing (its queue completed), and every answer sent
            // on it was lost until it closed, a minute later in memory (a ring node's join fence never answered).
            // Both authenticated: the mutual challenge ran on both, so both ends hold both dialler nonces.
            var (a, b) = (DiallerNonce(existing), DiallerNonce(incoming));
            if (existing.IsAuthenticated && a.Length > 0 && b.Length > 0)
            {
                return a.AsSpan().SequenceCompareTo(b) <= 0 ? existing : incoming;
            }

            return existing;
        }

        var weAreSmaller = RingPosition.FromBase58(Id) < RingPosition.FromBase58(incoming.Id!);
        return weAreSmaller == existing.IsOutgoing ? existing : incoming;
    }

    /// <summary>The challenge nonce the connection's dialler sent on it (empty without authentication).</summary>
    private static byte[] DiallerNonce(MeshPeer peer) => (peer.IsOutgoing ? peer.LocalNonce : peer.RemoteNonce) ?? [];

    /// <summary>The '*' of a request for all peers: a str from py2p (and us), bytes from a py2p handler's point of view.</summary>
    private static bool IsAllPeers(MsgValue value) =>
        (value.Kind == MsgKind.Str && value.AsString() == "*") || (value.Kind == MsgKind.Bin && value.AsBytes().Span.SequenceEqual("*"u8));

    private MsgValue[] PeersPayload() =>
    [
        (long)SubFlag.Peers,
        MsgValue.Array(_routing.Values
            .Where(p => p.Address is not null && !p.IsClosed)
            .Select(p => MsgValue.Array(MsgValue.Array(p.Address!.Value.Host, p.Address.Value.Port), MsgValue.BinAscii(p.Id!)))),
    ];

    /// <param name="list">The peers list.</param>
    /// <param name="trusted">
    /// It came from a peer that proved the secret. Addresses from an unauthenticated (py2p) peer are dialled as py2p
    /// would: no challenge, no proof of ours, so a stranger that names its own address cannot make us prove the
    /// secret to it and pass the proof on (docs/SECURITY.md).
    /// </param>
    private void HandlePeers(MsgValue list, bool trusted)
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
                DialInBackground(address, id, fromPeersList: true, trusted);
            }
        }
    }

    /// <summary>True while a background dial of node <paramref name="id"/> is under way.</summary>
    internal bool IsDialling(string id) => _dialing.ContainsKey(id);

    /// <summary>Dials a peer without waiting; failures are logged, not thrown (the peers list may be stale).</summary>
    internal void DialInBackground(PeerAddress address, string id, bool fromPeersList = false, bool trusted = true)
    {
        if (!_dialing.TryAdd(id, 0))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await ConnectAsync(address, id, fromPeersList, _stopping.Token, trusted);
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
