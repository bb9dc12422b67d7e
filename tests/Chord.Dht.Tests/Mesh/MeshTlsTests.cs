using System.Diagnostics.Metrics;
using Chord.Dht.Mesh;
using Microsoft.Extensions.Logging;
using Chord.Dht.Wire;
using Chord.Testing;

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
        var logs = new LogCapture();
        long tlsRefusals = 0;
        using var meter = new MeterListener();
        meter.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeshMetrics.MeterName && instrument.Name == "chord.mesh.refused_peers")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meter.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "reason", Value: "tls" })
                {
                    Interlocked.Add(ref tlsRefusals, value);
                }
            }
        });
        meter.Start();

        await using var a = new MeshNode(new MeshOptions { TlsCertificatePath = cluster, MaxOutgoing = 0 }, logs);
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

        // Each of the three failed its TLS handshake at a: each is counted as a refused peer (reason tls), and one
        // warning names the address, since all came from 127.0.0.1 within a minute.
        await Eventually.UntilAsync(() => a.GetStatistics().RefusedPeers == 3, "a to count three refused TLS handshakes");
        Assert.True(Interlocked.Read(ref tlsRefusals) >= 3, $"chord.mesh.refused_peers counted {tlsRefusals} with reason tls");
        var line = Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Refused TLS connection from", StringComparison.Ordinal));
        Assert.StartsWith("Refused TLS connection from 127.0.0.1:", line.Text, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed", line.Text, StringComparison.Ordinal);
        Assert.Null(line.Exception);
    }

    [Fact]
    public async Task A_connection_that_never_starts_its_TLS_handshake_is_closed_at_the_handshake_timeout_logged_and_counted()
    {
        var logs = new LogCapture();
        await using var node = new MeshNode(new MeshOptions { TlsCertificatePath = CreateCertificate("cluster"), HandshakeTimeout = TimeSpan.FromSeconds(1) }, logs);
        await node.StartAsync();

        // It connects and says nothing: only the TLS handshake's deadline closes it.
        await using var silent = await RawPeer.ConnectAsync(node.Address);
        await silent.WaitClosedAsync("the node closed a connection that never started its TLS handshake");
        await Eventually.UntilAsync(() => node.GetStatistics().RefusedPeers == 1, "the node to count the refusal");
        var line = Assert.Single(logs.AtLeast(LogLevel.Warning), l => l.Text.StartsWith("Refused TLS connection from 127.0.0.1:", StringComparison.Ordinal));
        Assert.Contains("did not complete the TLS handshake within 1 s", line.Text, StringComparison.Ordinal);
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

    private string CreateCertificate(string name) => TestCertificates.Create(_directory, name);
}
