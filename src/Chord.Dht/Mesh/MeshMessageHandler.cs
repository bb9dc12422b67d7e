namespace Chord.Dht.Mesh;

/// <summary>
/// Handles one received message and returns true to claim it, which ends the chain (py2p's
/// <c>register_handler</c>). Handlers run on the connection's read loop, one message at a time per connection:
/// they must not wait for other messages (start that work and return).
/// </summary>
public delegate ValueTask<bool> MeshMessageHandler(MeshMessage message);
