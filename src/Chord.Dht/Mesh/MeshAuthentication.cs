using System.Security.Cryptography;
using System.Text;

namespace Chord.Dht.Mesh;

/// <summary>
/// The mesh's mutual challenge–response (docs/PROTOCOL-EXTENSIONS.md): each side sends a random nonce first, and
/// proves knowledge of the cluster secret with an HMAC-SHA256 over both node ids and both nonces. Pure functions.
/// </summary>
internal static class MeshAuthentication
{
    /// <summary>whisper <c>[auth_challenge, nonce(bin 32), features]</c>, sent before the handshake.</summary>
    public const int ChallengeFlag = 0x40;

    /// <summary>
    /// The challenge's features bit for bare digests: this node sends frames whose digest is 32 zero bytes and takes
    /// them from a peer that said the same (docs/PROTOCOL-EXTENSIONS.md).
    /// </summary>
    public const int BareDigestsFeature = 1;

    /// <summary>The features this node announces in its challenge.</summary>
    public const int Features = BareDigestsFeature;

    /// <summary>whisper <c>[auth_proof, mac(bin 32)]</c>, sent once the peer's challenge and handshake are in.</summary>
    public const int ProofFlag = 0x41;

    /// <summary>Bytes of a nonce and of a proof.</summary>
    public const int Length = 32;

    /// <summary>The smallest secret accepted, in bytes (UTF-8).</summary>
    public const int MinimumSecretBytes = 16;

    // Version 2 binds each proof to the prover's role on the connection (dialler or acceptor): version 1 did not, so a
    // stranger that dialled two nodes could pass one node's proof to the other (a relay) and be served as that node.
    private static readonly byte[] Label = Encoding.ASCII.GetBytes("chord-mesh-auth/2");

    /// <summary>The prover's role on the connection, part of the MAC's input.</summary>
    public enum Role : byte
    {
        /// <summary>The side that dialled the connection.</summary>
        Dialler = (byte)'d',

        /// <summary>The side that accepted it.</summary>
        Acceptor = (byte)'a',
    }

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(Length);

    /// <summary>
    /// The proof that <paramref name="proverId"/>, on its side <paramref name="proverRole"/> of a connection, knows
    /// <paramref name="secret"/>, for the verifier <paramref name="verifierId"/> that sent <paramref name="verifierNonce"/>.
    /// Both ids and the prover's role are in the MAC's input, so a proof reflected back to its sender, replayed on another
    /// connection (another nonce), or relayed from a connection the stranger dialled to one it dialled (the prover there
    /// was the acceptor, the verifier expects a dialler) does not verify.
    /// </summary>
    public static byte[] Proof(ReadOnlySpan<byte> secret, string protocolId, Role proverRole, string proverId, string verifierId, ReadOnlySpan<byte> verifierNonce, ReadOnlySpan<byte> proverNonce)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        hmac.AppendData(Label);
        hmac.AppendData([(byte)proverRole, 0]);
        AppendText(hmac, protocolId);
        AppendText(hmac, proverId);
        AppendText(hmac, verifierId);
        hmac.AppendData(verifierNonce);
        hmac.AppendData(proverNonce);
        return hmac.GetHashAndReset();
    }

    /// <summary>Compares a received proof with the expected one in constant time.</summary>
    public static bool Verify(ReadOnlySpan<byte> received, ReadOnlySpan<byte> expected) =>
        received.Length == expected.Length && CryptographicOperations.FixedTimeEquals(received, expected);

    private static void AppendText(IncrementalHash hmac, string text)
    {
        // Ids and protocol ids are base58 (no NUL): a NUL after each keeps the concatenation unambiguous.
        hmac.AppendData(Encoding.UTF8.GetBytes(text));
        hmac.AppendData([0]);
    }
}
