using System.Security.Cryptography;
using System.Text;

namespace Chord.Dht.Mesh;

/// <summary>
/// The mesh's mutual challenge–response (docs/PROTOCOL-EXTENSIONS.md): each side sends a random nonce first, and
/// proves knowledge of the cluster secret with an HMAC-SHA256 over both node ids and both nonces. Pure functions.
/// </summary>
internal static class MeshAuthentication
{
    /// <summary>whisper <c>[auth_challenge, nonce(bin 32)]</c>, sent before the handshake.</summary>
    public const int ChallengeFlag = 0x40;

    /// <summary>whisper <c>[auth_proof, mac(bin 32)]</c>, sent once the peer's challenge and handshake are in.</summary>
    public const int ProofFlag = 0x41;

    /// <summary>Bytes of a nonce and of a proof.</summary>
    public const int Length = 32;

    /// <summary>The smallest secret accepted, in bytes (UTF-8).</summary>
    public const int MinimumSecretBytes = 16;

    private static readonly byte[] Label = Encoding.ASCII.GetBytes("chord-mesh-auth/1");

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(Length);

    /// <summary>
    /// The proof that <paramref name="proverId"/> knows <paramref name="secret"/>, for the verifier
    /// <paramref name="verifierId"/> that sent <paramref name="verifierNonce"/>. The roles are in the MAC's input,
    /// so a proof reflected back to its sender, or replayed on another connection (another nonce), does not verify.
    /// </summary>
    public static byte[] Proof(ReadOnlySpan<byte> secret, string protocolId, string proverId, string verifierId, ReadOnlySpan<byte> verifierNonce, ReadOnlySpan<byte> proverNonce)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, secret);
        hmac.AppendData(Label);
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
