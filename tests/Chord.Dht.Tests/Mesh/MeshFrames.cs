using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>Builders of frames, good and bad, byte by byte.</summary>
internal static class MeshFrames
{
    /// <summary>A length header followed by <paramref name="body"/>.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> body) => Wire.TestFrames.Frame(body);

    /// <summary>A bare length header announcing <paramref name="declaredLength"/> bytes.</summary>
    public static byte[] Header(uint declaredLength) => Wire.TestFrames.Header(declaredLength);

    /// <summary>A frame whose digest is right for <paramref name="packed"/>, whatever those bytes are.</summary>
    public static byte[] WithValidDigest(ReadOnlySpan<byte> packed) => Frame(Wire.TestFrames.BodyFor(packed));

    /// <summary>A frame holding <paramref name="message"/> packed as is (it need not be a valid py2p message).</summary>
    public static byte[] WithValidDigest(MsgValue message) => WithValidDigest(MsgPack.Serialize(message));
}
