using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Chord.Dht.Mesh;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Mesh;

/// <summary>TLS on the ring port (<see cref="MeshOptions.TlsCertificatePath"/>): one cluster certificate, plaintext refused.</summary>
public sealed class MeshTlsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("chord-tls-").FullName;

    [Fact]
    public async Task Nodes_with_the_cluster_certificate_talk_over_TLS_and_others_are_refused()
    {
        var cluster = CreateCertificate("cluster");
        var other = CreateCertificate("other");
        await using var a = new MeshNode(new MeshOptions { TlsCertificatePath = cluster, MaxOutgoing = 0 });
        await using var b = new MeshNode(new MeshOptions { TlsCertificatePath = cluster, MaxOutgoing = 0 });
        await a.StartAsync();
        await b.StartAsync();
        var inbox = new Inbox(a);

        Assert.True((await b.ConnectAsync(a.Address)).IsAuthenticated);
        await b.WhisperAsync(a.Id, "over-tls");
        await Eventually.UntilAsync(() => inbox.Count(b.Id, "over-tls") == 1, "a whisper over TLS arrived");

        // A node with another certificate, and one without TLS, cannot connect; a raw plaintext handshake is closed.
        await using var stranger = new MeshNode(new MeshOptions { TlsCertificatePath = other });
        await stranger.StartAsync();
        await Assert.ThrowsAsync<MeshConnectException>(() => stranger.ConnectAsync(a.Address));
        await using var plain = new MeshNode(new MeshOptions { HandshakeTimeout = TimeSpan.FromSeconds(2) });
        await plain.StartAsync();
        await Assert.ThrowsAsync<MeshConnectException>(() => plain.ConnectAsync(a.Address));
        await using var raw = await RawPeer.ConnectAsync(a.Address);
        await raw.TrySendAsync(FrameCodec.Encode(raw.Handshake()));
        await raw.WaitClosedAsync("a plaintext py2p handshake to a TLS node is closed");

        Assert.Null(a.GetPeer(stranger.Id));
        Assert.Null(a.GetPeer(plain.Id));
        Assert.Single(a.Peers);
    }

    [Fact]
    public void A_missing_certificate_file_is_refused_with_its_path()
    {
        var path = Path.Combine(_directory, "missing.pfx");
        var e = Assert.ThrowsAny<ArgumentException>(() => new MeshNode(new MeshOptions { TlsCertificatePath = path }));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("PKCS#12", e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string CreateCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(_directory, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx));
        return path;
    }
}
