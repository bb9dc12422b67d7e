using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Microsoft.Extensions.Options;

namespace Chord.Grains.Hosting;

/// <summary>Checks <see cref="ChordOptions"/> when the silo starts; each failure names the setting, its value and what is allowed.</summary>
public sealed class ChordOptionsValidator : IValidateOptions<ChordOptions>
{
    private const int MaxFrameLimit = 1 << 30;

    /// <summary>
    /// The longest <see cref="ChordOptions.HandshakeTimeout"/>: a handshake takes milliseconds, even over TLS across
    /// a slow link, while every connection that has not authenticated holds a slot of MaxConnections for this long.
    /// </summary>
    internal static readonly TimeSpan MaxHandshakeTimeout = TimeSpan.FromMinutes(5);

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ChordOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        void Check(bool ok, string setting, object? value, string allowed)
        {
            if (!ok)
            {
                failures.Add($"Chord:{setting} is '{value}'; allowed: {allowed}.");
            }
        }

        Check(options.RingPort is >= 0 and <= 65535, nameof(options.RingPort), options.RingPort, "0 (any free port) to 65535");
        Check(options.ListenHost is null || IPAddress.TryParse(options.ListenHost, out _) || Uri.CheckHostName(options.ListenHost) != UriHostNameType.Unknown,
            nameof(options.ListenHost), options.ListenHost, "an IP address or host name, or unset for the silo's address");
        Check(options.OutwardAddress is null || TryParseAddress(options.OutwardAddress), nameof(options.OutwardAddress), options.OutwardAddress, "host:port with a port of 1 to 65535, or unset");
        Check(!string.IsNullOrWhiteSpace(options.Subnet), nameof(options.Subnet), options.Subnet, "a non-empty name shared by every node of the ring");
        Check(options.MaxFrameLength is >= 1024 and <= MaxFrameLimit, nameof(options.MaxFrameLength), options.MaxFrameLength, $"1024 to {MaxFrameLimit} bytes (1 KiB to 1 GiB)");
        Check(options.ClusterSecret is null || System.Text.Encoding.UTF8.GetByteCount(options.ClusterSecret) >= 16, nameof(options.ClusterSecret),
            options.ClusterSecret is null ? null : $"({System.Text.Encoding.UTF8.GetByteCount(options.ClusterSecret)} bytes, not shown)",
            "at least 16 bytes (UTF-8), the same on every silo, for example 32 random bytes in base64 (openssl rand -base64 32); or unset for the development secret");
        Check(options.TlsCertificatePath is null || File.Exists(options.TlsCertificatePath), nameof(options.TlsCertificatePath), options.TlsCertificatePath,
            "an existing PKCS#12 (.pfx) file with the cluster certificate and its private key, or unset for plaintext");
        if (options.TlsCertificatePath is { } certificatePath && File.Exists(certificatePath) && CertificateProblem(certificatePath, options.TlsCertificatePassword) is { } cause)
        {
            failures.Add($"Chord:TlsCertificatePath is '{certificatePath}', which could not be loaded as the cluster certificate: {cause}; allowed: a PKCS#12 (.pfx) "
                + "file with the certificate and its private key, with its password in Chord:TlsCertificatePassword (unset when it has none).");
        }

        if (options.TlsCertificatePath is not null && options.AllowUnauthenticatedPeers)
        {
            failures.Add($"Chord:AllowUnauthenticatedPeers is 'true' while Chord:TlsCertificatePath is set ('{options.TlsCertificatePath}'); allowed: one of the two. "
                + "py2p nodes speak plaintext and cannot pass the TLS handshake, so TLS and the py2p opt-in exclude each other (docs/SECURITY.md).");
        }

        Check(options.MaxConnections >= 1, nameof(options.MaxConnections), options.MaxConnections, "at least 1");
        Check(options.MaxConnectionsPerAddress >= 1, nameof(options.MaxConnectionsPerAddress), options.MaxConnectionsPerAddress, "at least 1");
        Check(options.MaxPreAuthFrameLength >= 512, nameof(options.MaxPreAuthFrameLength), options.MaxPreAuthFrameLength, "at least 512 bytes");
        Check(options.MaxPreAuthBytes >= 1024, nameof(options.MaxPreAuthBytes), options.MaxPreAuthBytes, "at least 1024 bytes");
        Check(options.MaxUnauthenticatedFrameLength >= 1024, nameof(options.MaxUnauthenticatedFrameLength), options.MaxUnauthenticatedFrameLength, "at least 1024 bytes");
        Check(options.HandshakeTimeout > TimeSpan.Zero && options.HandshakeTimeout <= MaxHandshakeTimeout, nameof(options.HandshakeTimeout), options.HandshakeTimeout,
            $"a positive time of at most {MaxHandshakeTimeout} (a stranger may hold a connection and its pre-authentication bytes this long)");
        Check(options.WriteQuorum is >= 1 and <= 5, nameof(options.WriteQuorum), options.WriteQuorum, "1 to 5");
        Check(options.ReadQuorum is >= 1 and <= 5, nameof(options.ReadQuorum), options.ReadQuorum, "1 to 5");
        Check(options.ReadQuorum + options.WriteQuorum > 5, "ReadQuorum + WriteQuorum", options.ReadQuorum + options.WriteQuorum, "more than 5, so every read meets the latest write");
        Check(options.RequestTimeout > TimeSpan.Zero, nameof(options.RequestTimeout), options.RequestTimeout, "a positive time");
        Check(options.ReadHedgeAfter >= TimeSpan.Zero && (options.RequestTimeout <= TimeSpan.Zero || options.ReadHedgeAfter < options.RequestTimeout), nameof(options.ReadHedgeAfter), options.ReadHedgeAfter, "zero (ask every position at once) or a time shorter than RequestTimeout");
        Check(options.JoinTimeout >= TimeSpan.Zero, nameof(options.JoinTimeout), options.JoinTimeout, "zero or a positive time");
        foreach (var seed in options.Seeds ?? [])
        {
            Check(TryParseAddress(seed), nameof(options.Seeds), seed, "host:port entries with a port of 1 to 65535");
        }

        foreach (var method in options.Compression ?? [])
        {
            Check(TryParseCompression(method, out _), nameof(options.Compression), method,
                string.Join(", ", Compression.Supported.Select(m => m.ToString().ToLowerInvariant())));
        }

        Check(options.NodeIdSalt is null || options.NodeIdSalt.Length > 0, nameof(options.NodeIdSalt), options.NodeIdSalt, "a non-empty string, or unset for a random salt at each start");
        Check(options.DataDirectory is null || options.DataDirectory.Length > 0, nameof(options.DataDirectory), options.DataDirectory, "a directory path, or unset to keep entries in memory");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Why the file cannot serve as the ring's TLS certificate (as <c>TlsTcpTransport</c> loads it); null when it can.</summary>
    private static string? CertificateProblem(string path, string? password)
    {
        try
        {
            using var certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
            return certificate.HasPrivateKey ? null : $"it holds the certificate {certificate.Subject} without its private key";
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            return e.Message.TrimEnd('.');
        }
    }

    internal static bool TryParseAddress(string text)
    {
        try
        {
            var address = PeerAddress.Parse(text);
            return address.Port is > 0 and <= 65535;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    internal static bool TryParseCompression(string text, out CompressionMethod method) =>
        Enum.TryParse(text, ignoreCase: true, out method) && Enum.IsDefined(method) && !int.TryParse(text, out _);

    /// <summary>The ring node's settings for these options, once validated.</summary>
    internal static RingOptions ToRingOptions(ChordOptions options, string listenHost, PeerAddress? outward) => new()
    {
        RequestTimeout = options.RequestTimeout,
        ReadQuorum = options.ReadQuorum,
        WriteQuorum = options.WriteQuorum,
        ReadHedgeAfter = options.ReadHedgeAfter,
        DataDirectory = options.DataDirectory,
        KeepPlacementCopies = options.KeepPlacementCopies,
        Mesh = new MeshOptions
        {
            ListenHost = listenHost,
            ListenPort = options.RingPort,
            OutwardAddress = outward,
            Salt = options.NodeIdSalt,
            Subnet = options.Subnet,
            MaxFrameLength = options.MaxFrameLength,
            RequestTimeout = options.RequestTimeout,
            ClusterSecret = options.ClusterSecret,
            TlsCertificatePath = options.TlsCertificatePath,
            TlsCertificatePassword = options.TlsCertificatePassword,
            Security = options.AllowUnauthenticatedPeers ? MeshSecurity.AllowUnauthenticated : MeshSecurity.Required,
            MaxConnections = options.MaxConnections,
            MaxConnectionsPerAddress = options.MaxConnectionsPerAddress,
            MaxPreAuthFrameLength = options.MaxPreAuthFrameLength,
            MaxPreAuthBytes = options.MaxPreAuthBytes,
            MaxUnauthenticatedFrameLength = options.MaxUnauthenticatedFrameLength,
            HandshakeTimeout = options.HandshakeTimeout,
            Compression = [.. options.Compression.Select(m => TryParseCompression(m, out var c) ? c : throw new ArgumentException($"Unknown compression '{m}'."))],
        },
    };
}
