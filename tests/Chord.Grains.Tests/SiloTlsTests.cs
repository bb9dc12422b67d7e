using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Chord.Dht.Tests.Mesh;
using Chord.Dht.Wire;
using Chord.Interfaces;
using Chord.Testing;

namespace Chord.Grains.Tests;

/// <summary>
/// Silos given the ring's TLS certificate (<see cref="Hosting.ChordOptions.TlsCertificatePath"/> and its password)
/// form one ring over TLS and serve keys through grains; a plaintext peer, or one with another certificate, cannot
/// talk to a silo's ring port, and the ring keeps serving.
/// </summary>
public sealed class SiloTlsTests : IDisposable
{
    private const string Password = "ring-certificate-password";

    /// <summary>Not the development secret: the plaintext peers below know it, so only TLS can be what refuses them.</summary>
    private const string ClusterSecret = "silo-tls-tests-cluster-secret-0123456789";

    private readonly string _directory = Directory.CreateTempSubdirectory("chord-silo-tls-").FullName;

    [Fact]
    public async Task Silos_with_the_ring_certificate_form_one_ring_over_TLS_and_serve_keys_through_grains()
    {
        var certificate = CreateCertificate("ring", Password);
        await using var chord = await ChordTestCluster.StartAsync(3, tlsCertificatePath: certificate, tlsCertificatePassword: Password, clusterSecret: ClusterSecret);

        // One ring: every node is storing and serving, and knows the two others as storing members.
        Assert.True(chord.IsOneRing(out var divergence), divergence);
        var nodes = chord.Nodes.Select(n => n.Node).ToList();
        Assert.Equal(3, nodes.Select(n => n.Id).Distinct().Count());
        foreach (var node in nodes)
        {
            Assert.Equal(2, node.Members.Count(m => m.IsStoring && m.Id != node.Id && nodes.Any(o => o.Id == m.Id)));
            Assert.Equal(certificate, node.Mesh.Options.TlsCertificatePath);
        }

        for (var i = 0; i < 5; i++)
        {
            await chord.Grains.GetGrain<IChordKeyGrain>($"tls-key-{i}").Set($"tls-value-{i}");
        }

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal($"tls-value-{i}", (await chord.Grains.GetGrain<IChordKeyGrain>($"tls-key-{i}").Get())?.AsString());
        }

        // Nothing exposes a connection's transport, so the ring port itself is probed: each silo's ring node completes
        // a TLS handshake in which it presents exactly the cluster certificate (the transport checks its SHA-256
        // thumbprint). Every ring connection is made to such a port, and Plaintext_peers_... shows a plaintext one is
        // refused there, so the ring connections between the silos are TLS.
        using var loaded = TlsTcpTransport.LoadCertificate(certificate, Password);
        var tls = new TlsTcpTransport(loaded, TimeSpan.FromSeconds(10));
        using var deadline = new CancellationTokenSource(Eventually.Deadline);
        foreach (var node in nodes)
        {
            await using var connection = await tls.ConnectAsync(node.Mesh.Address, deadline.Token);
        }

        Assert.True(chord.IsOneRing(out divergence), divergence);
    }

    [Fact]
    public async Task Plaintext_peers_and_peers_with_another_certificate_cannot_talk_to_a_TLS_silos_ring_port_and_the_ring_keeps_serving()
    {
        var certificate = CreateCertificate("ring", Password);
        var other = CreateCertificate("other", Password);
        await using var chord = await ChordTestCluster.StartAsync(2, tlsCertificatePath: certificate, tlsCertificatePassword: Password, clusterSecret: ClusterSecret);
        await chord.Grains.GetGrain<IChordKeyGrain>("before").Set("written before the strangers");
        var target = chord.Nodes[0].Node.Mesh;
        var refusedBefore = target.GetStatistics().RefusedPeers;

        // A raw py2p handshake in plaintext: the node closes the connection without sending a single mesh frame.
        await using var raw = await RawPeer.ConnectAsync(target.Address);
        await raw.TrySendAsync(FrameCodec.Encode(raw.Handshake()));
        await raw.WaitClosedAsync("the TLS silo's ring node closed a plaintext py2p handshake");
        Assert.Empty(raw.Frames);
        Assert.Equal(0, raw.Undecodable);

        // One of our nodes that knows the cluster secret, without TLS: its connect fails.
        await using var plain = new MeshNode(new MeshOptions { ClusterSecret = ClusterSecret, HandshakeTimeout = TimeSpan.FromSeconds(5), MaxOutgoing = 0 });
        await plain.StartAsync();
        await Assert.ThrowsAsync<MeshConnectException>(() => plain.ConnectAsync(target.Address));

        // And one with the secret and TLS, but another certificate.
        await using var stranger = new MeshNode(new MeshOptions
        {
            ClusterSecret = ClusterSecret, TlsCertificatePath = other, TlsCertificatePassword = Password, HandshakeTimeout = TimeSpan.FromSeconds(5), MaxOutgoing = 0,
        });
        await stranger.StartAsync();
        await Assert.ThrowsAsync<MeshConnectException>(() => stranger.ConnectAsync(target.Address));

        Assert.Null(target.GetPeer(raw.Id));
        Assert.Null(target.GetPeer(plain.Id));
        Assert.Null(target.GetPeer(stranger.Id));
        Assert.Empty(plain.Peers);
        Assert.Empty(stranger.Peers);
        await Eventually.UntilAsync(
            () => target.GetStatistics().RefusedPeers >= refusedBefore + 3,
            Eventually.Deadline,
            "the silo's ring node to count the three refused TLS handshakes",
            () => $"It counted {target.GetStatistics().RefusedPeers - refusedBefore}.");

        // The ring is untouched: still one ring, and it reads and writes through grains.
        Assert.True(chord.IsOneRing(out var divergence), divergence);
        Assert.Equal("written before the strangers", (await chord.Grains.GetGrain<IChordKeyGrain>("before").Get())?.AsString());
        await chord.Grains.GetGrain<IChordKeyGrain>("after").Set("written after the strangers");
        Assert.Equal("written after the strangers", (await chord.Grains.GetGrain<IChordKeyGrain>("after").Get())?.AsString());
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>A self-signed certificate with its private key, in a PKCS#12 file protected by <paramref name="password"/>.</summary>
    private string CreateCertificate(string name, string password) => TestCertificates.Create(_directory, name, password);
}
