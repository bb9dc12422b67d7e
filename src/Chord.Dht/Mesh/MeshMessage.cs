using System.Collections.Immutable;
using Chord.Dht.Wire;

namespace Chord.Dht.Mesh;

/// <summary>A message as a node received it: the message, and the connection it came in on.</summary>
public sealed class MeshMessage
{
    internal MeshMessage(MeshNode node, MeshPeer peer, Message message)
    {
        Node = node;
        Peer = peer;
        Message = message;
    }

    /// <summary>The node that received it.</summary>
    public MeshNode Node { get; }

    /// <summary>The connection it arrived on (for a relayed broadcast, not the original sender).</summary>
    public MeshPeer Peer { get; }

    /// <summary>The message itself.</summary>
    public Message Message { get; }

    /// <summary>The original sender's node id.</summary>
    public string Sender => Message.Sender;

    /// <summary>The payload, <c>p0</c> (the sub-flag) first.</summary>
    public ImmutableArray<MsgValue> Payload => Message.Payload;

    /// <summary>
    /// Whispers to the original sender: on the connection we hold to it, or, when we hold none (a broadcast from
    /// afar), by asking the network for its address and connecting first, as py2p's <c>reply</c> does.
    /// </summary>
    public async ValueTask ReplyAsync(MsgValue[] payload, CancellationToken cancellationToken = default)
    {
        var target = Node.GetPeer(Sender);
        if (target is null && Peer.Id == Sender)
        {
            target = Peer;
        }

        target ??= await Node.ConnectToIdAsync(Sender, cancellationToken);
        await target.WhisperAsync(payload);
    }

    /// <inheritdoc />
    public override string ToString() => Message.ToString();
}
