using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Chord.Testing;

/// <summary>Self-signed certificates for the ring's TLS tests, written as PKCS#12 files into a folder the test owns.</summary>
internal static class TestCertificates
{
    /// <summary>
    /// A self-signed certificate (P-256 key, valid from yesterday to tomorrow) with its private key, in a new
    /// PKCS#12 file in <paramref name="directory"/> protected by <paramref name="password"/> (null: none); returns its path.
    /// </summary>
    public static string Create(string directory, string name, string? password = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var certificate = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(directory, $"{name}-{Guid.NewGuid():N}.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
        return path;
    }
}
