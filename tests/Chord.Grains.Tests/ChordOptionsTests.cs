using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Chord.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Chord.Testing;

namespace Chord.Grains.Tests;

/// <summary>AddChord's settings are checked when the silo starts, and a bad one names itself and what is allowed.</summary>
public sealed class ChordOptionsTests : IDisposable
{
    private static readonly ChordOptionsValidator Validator = new();
    private readonly string _directory = Directory.CreateTempSubdirectory("chord-options-").FullName;

    public static TheoryData<string, Action<ChordOptions>, string> BadSettings => new()
    {
        { "RingPort", o => o.RingPort = 70_000, "0 (any free port) to 65535" },
        { "RingPort", o => o.RingPort = -1, "0 (any free port) to 65535" },
        { "ListenHost", o => o.ListenHost = "not a host!", "an IP address or host name" },
        { "OutwardAddress", o => o.OutwardAddress = "10.0.0.1", "host:port" },
        { "OutwardAddress", o => o.OutwardAddress = "10.0.0.1:0", "a port of 1 to 65535" },
        { "Subnet", o => o.Subnet = " ", "a non-empty name" },
        { "MaxFrameLength", o => o.MaxFrameLength = 100, "1024 to" },
        { "WriteQuorum", o => o.WriteQuorum = 6, "1 to 5" },
        { "ReadQuorum", o => o.ReadQuorum = 6, "1 to 5" },
        { "ReadQuorum + WriteQuorum", o => (o.ReadQuorum, o.WriteQuorum) = (2, 3), "more than 5" },
        { "RequestTimeout", o => o.RequestTimeout = TimeSpan.Zero, "a positive time" },
        { "JoinTimeout", o => o.JoinTimeout = TimeSpan.FromSeconds(-1), "zero or a positive time" },
        { "ReadHedgeAfter", o => o.ReadHedgeAfter = TimeSpan.FromMilliseconds(-5), "shorter than RequestTimeout" },
        { "ReadHedgeAfter", o => o.ReadHedgeAfter = TimeSpan.FromSeconds(10), "shorter than RequestTimeout" },
        { "Seeds", o => o.Seeds = ["127.0.0.1:4444", "nowhere"], "host:port entries" },
        { "Compression", o => o.Compression = ["zlib", "lzma"], "zlib" },
        { "Compression", o => o.Compression = ["7"], "zlib" },
        { "DataDirectory", o => o.DataDirectory = string.Empty, "a directory path" },
        { "NodeIdSalt", o => o.NodeIdSalt = string.Empty, "a non-empty string" },
        { "ClusterSecret", o => o.ClusterSecret = "short-secret", "at least 16 bytes" },
        { "MaxConnections", o => o.MaxConnections = 0, "at least 1" },
        { "MaxConnectionsPerAddress", o => o.MaxConnectionsPerAddress = 0, "at least 1" },
        { "MaxPreAuthFrameLength", o => o.MaxPreAuthFrameLength = 10, "at least 512 bytes" },
        { "MaxPreAuthBytes", o => o.MaxPreAuthBytes = 10, "at least 1024 bytes" },
        { "HandshakeTimeout", o => o.HandshakeTimeout = TimeSpan.Zero, "a positive time" },
        { "HandshakeTimeout", o => o.HandshakeTimeout = TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1), "a positive time of at most 00:05:00" },
        { "TlsCertificatePath", o => o.TlsCertificatePath = "/nonexistent/cluster.pfx", "an existing PKCS#12 (.pfx) file" },
    };

    [Fact]
    public void A_short_cluster_secret_is_reported_without_showing_it()
    {
        var result = Validator.Validate(null, new ChordOptions { ClusterSecret = "hunter2-hunter2" });

        var failure = Assert.Single(result.Failures!);
        Assert.Contains("15 bytes", failure, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_defaults_are_valid()
    {
        var result = Validator.Validate(null, new ChordOptions());
        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void Good_non_default_settings_are_valid()
    {
        var options = new ChordOptions
        {
            RingPort = 4444,
            ListenHost = "0.0.0.0",
            OutwardAddress = "ring.example.org:4444",
            WriteQuorum = 4,
            ReadQuorum = 2,
            Seeds = ["127.0.0.1:4445", "py2p.example.org:4446"],
            Compression = ["snappy", "ZLIB"],
            DataDirectory = "/var/lib/chord",
            ClusterSecret = "a-secret-of-at-least-16-bytes",
            AllowUnauthenticatedPeers = true,
            MaxConnections = 10,
            MaxConnectionsPerAddress = 2,
        };

        var result = Validator.Validate(null, options);
        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_setting_is_named_with_its_value_and_what_is_allowed(string setting, Action<ChordOptions> spoil, string allowed)
    {
        var options = new ChordOptions();
        spoil(options);

        var result = Validator.Validate(null, options);

        Assert.True(result.Failed);
        var failure = Assert.Single(result.Failures!);
        Assert.StartsWith($"Chord:{setting} is '", failure, StringComparison.Ordinal);
        Assert.Contains(allowed, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_bad_setting_is_reported_at_once()
    {
        var options = new ChordOptions { RingPort = -5, WriteQuorum = 9, Subnet = string.Empty };

        var failures = Validator.Validate(null, options).Failures!.ToList();

        Assert.Equal(3, failures.Count);
        Assert.Contains(failures, f => f.StartsWith("Chord:RingPort is '-5'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Chord:WriteQuorum is '9'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Chord:Subnet is ''", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_silo_with_a_bad_setting_does_not_start_and_says_which()
    {
        using var host = new HostBuilder()
            .UseOrleans(silo => silo
                .UseLocalhostClustering(FreePort(), FreePort())
                .AddChord(options => options.WriteQuorum = 0))
            .Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Chord:WriteQuorum is '0'; allowed: 1 to 5.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fixed_ring_port_and_salt_give_the_silo_the_ring_id_py2p_would_compute_for_them()
    {
        var ringPort = FreePort();
        using var host = new HostBuilder()
            .UseOrleans(silo => silo
                .UseLocalhostClustering(FreePort(), FreePort())
                .AddChord(options =>
                {
                    options.ListenHost = "127.0.0.1";
                    options.RingPort = ringPort;
                    options.NodeIdSalt = "bench-Primary";
                }))
            .Build();
        await host.StartAsync();
        try
        {
            var node = host.Services.GetRequiredService<ChordSiloNode>().Node;

            Assert.Equal("bench-Primary", node.Mesh.Salt);
            Assert.Equal(Dht.Wire.NodeIdentity.NodeId("127.0.0.1", ringPort, node.Mesh.ProtocolId, "bench-Primary"), node.Id);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void A_certificate_file_that_is_not_PKCS12_is_refused_with_its_path_and_the_cause()
    {
        var path = Path.Combine(_directory, "garbage.pfx");
        File.WriteAllBytes(path, [.. Enumerable.Range(0, 512).Select(i => (byte)(i * 37))]);

        var failure = Assert.Single(Validator.Validate(null, new ChordOptions { TlsCertificatePath = path }).Failures!);

        // The path, then the loader's reason (on Linux "ASN1 corrupted data"), then what is allowed.
        Assert.Matches($"^Chord:TlsCertificatePath is '{Regex.Escape(path)}', which could not be loaded as the cluster certificate: [^;]*[A-Za-z][^;]*; allowed: a PKCS#12 ", failure);
    }

    [Fact]
    public void A_certificate_with_the_wrong_password_is_refused_and_the_right_one_is_accepted()
    {
        var path = CreateCertificate("cluster", "the-right-password");

        var failure = Assert.Single(Validator.Validate(null, new ChordOptions { TlsCertificatePath = path, TlsCertificatePassword = "a-wrong-one" }).Failures!);
        Assert.StartsWith($"Chord:TlsCertificatePath is '{path}', which could not be loaded", failure, StringComparison.Ordinal);
        Assert.DoesNotContain("a-wrong-one", failure, StringComparison.Ordinal);

        var result = Validator.Validate(null, new ChordOptions { TlsCertificatePath = path, TlsCertificatePassword = "the-right-password" });
        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void A_certificate_without_its_private_key_is_refused()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var withKey = new CertificateRequest("CN=public-only", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var publicOnly = X509CertificateLoader.LoadCertificate(withKey.Export(X509ContentType.Cert));
        var path = Path.Combine(_directory, "public-only.pfx");
        File.WriteAllBytes(path, publicOnly.Export(X509ContentType.Pfx));

        var failure = Assert.Single(Validator.Validate(null, new ChordOptions { TlsCertificatePath = path }).Failures!);
        Assert.Contains("without its private key", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void TLS_and_unauthenticated_py2p_peers_exclude_each_other()
    {
        var path = CreateCertificate("cluster", null);
        Assert.True(Validator.Validate(null, new ChordOptions { TlsCertificatePath = path }).Succeeded);
        Assert.True(Validator.Validate(null, new ChordOptions { AllowUnauthenticatedPeers = true }).Succeeded);

        var failure = Assert.Single(Validator.Validate(null, new ChordOptions { TlsCertificatePath = path, AllowUnauthenticatedPeers = true }).Failures!);

        Assert.StartsWith($"Chord:AllowUnauthenticatedPeers is 'true' while Chord:TlsCertificatePath is set ('{path}'); allowed: one of the two.", failure, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string CreateCertificate(string name, string? password) => TestCertificates.Create(_directory, name, password);

    /// <summary>A port the OS has just handed out and released (Orleans' localhost clustering needs fixed ports).</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
