using System.CommandLine;
using Chord.Dht.Mesh;
using Chord.Dht.Mesh.Transport;
using Microsoft.Extensions.Logging;

namespace Chord.Cli;

/// <summary>Options several verbs share, and their parsing.</summary>
internal static class CliOptions
{
    public static Option<string?> Ring() => new("--ring")
    {
        Description = "Any node of the ring, as host:port: join it as a client (give this or --http).",
    };

    public static Option<string?> Http() => new("--http")
    {
        Description = "A silo's HTTP API, for example http://127.0.0.1:8080: go through it (give this or --ring).",
    };

    /// <summary>Seconds to wait, checked at parse time so every verb refuses a bad value the same way (exit code 2).</summary>
    public static Option<double> Timeout()
    {
        var option = new Option<double>("--timeout")
        {
            Description = "Seconds to wait for the ring to answer (more than 0, at most 3600).",
            DefaultValueFactory = _ => 10,
        };
        option.Validators.Add(result =>
        {
            var seconds = result.GetValueOrDefault<double>();
            if (seconds is <= 0 or > 3600)
            {
                result.AddError($"--timeout {seconds} is out of range: give 0 < seconds <= 3600.");
            }
        });
        return option;
    }

    public static Option<string> Subnet() => new("--subnet")
    {
        Description = "The ring's subnet; nodes of another subnet are refused (py2p's chord default: chord).",
        DefaultValueFactory = _ => "chord",
    };

    /// <summary>The environment variable read when <c>--cluster-secret</c> is not given (a command line is visible to every user of the machine).</summary>
    public const string ClusterSecretVariable = "CHORD_CLUSTER_SECRET";

    /// <summary>The cluster secret, checked at parse time (at least 16 bytes), so a short one is a usage error (exit code 2).</summary>
    public static Option<string?> ClusterSecret()
    {
        var option = new Option<string?>("--cluster-secret")
        {
            Description = $"The ring's cluster secret (at least 16 bytes; default: ${ClusterSecretVariable}, else the built-in development secret, with a warning).",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } secret && System.Text.Encoding.UTF8.GetByteCount(secret) < 16)
            {
                result.AddError($"--cluster-secret is {System.Text.Encoding.UTF8.GetByteCount(secret)} bytes: give at least 16 bytes, the secret every node of the ring shares.");
            }
        });
        return option;
    }

    public static Option<bool> AllowUnauthenticatedPeers() => new("--allow-unauthenticated-peers")
    {
        Description = "Also serve peers that do not authenticate (py2p nodes); anyone who reaches the port can then read and write as py2p can. Not with --tls-certificate.",
    };

    /// <summary>The environment variable read when <c>--tls-certificate</c> is not given.</summary>
    public const string TlsCertificateVariable = "CHORD_TLS_CERTIFICATE";

    /// <summary>The environment variable read when <c>--tls-certificate-password</c> is not given (better than a command line).</summary>
    public const string TlsCertificatePasswordVariable = "CHORD_TLS_CERTIFICATE_PASSWORD";

    public static Option<string?> TlsCertificate() => new("--tls-certificate")
    {
        Description = "The ring's TLS certificate: a PKCS#12 (.pfx) file with its private key, the one every node of the ring has; "
            + $"ring connections are then TLS and peers must present the same certificate (default: ${TlsCertificateVariable}, else plaintext). "
            + "Not with --allow-unauthenticated-peers.",
        HelpName = "PATH",
    };

    public static Option<string?> TlsCertificatePassword() => new("--tls-certificate-password")
    {
        Description = $"The password of --tls-certificate, if it has one (default: ${TlsCertificatePasswordVariable}, better than a command line every user of the machine can read).",
        HelpName = "PASSWORD",
    };

    /// <summary>
    /// Sets the mesh's security from the options (and <see cref="ClusterSecretVariable"/>, <see cref="TlsCertificateVariable"/>,
    /// <see cref="TlsCertificatePasswordVariable"/>): the cluster secret, the py2p opt-in and TLS. Null when all is
    /// well, else what is wrong (a usage error): a short secret, a password without a certificate, a certificate that
    /// does not load, or TLS together with the py2p opt-in.
    /// </summary>
    public static string? ApplySecurity(MeshOptions mesh, string? secret, bool allowUnauthenticated, string? tlsCertificate = null, string? tlsPassword = null)
    {
        secret ??= Environment.GetEnvironmentVariable(ClusterSecretVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
        if (secret is not null && System.Text.Encoding.UTF8.GetByteCount(secret) < 16)
        {
            return $"${ClusterSecretVariable} is {System.Text.Encoding.UTF8.GetByteCount(secret)} bytes: give at least 16 bytes, the secret every node of the ring shares.";
        }

        var certificateSource = tlsCertificate is null ? $"${TlsCertificateVariable}" : "--tls-certificate";
        tlsCertificate ??= Environment.GetEnvironmentVariable(TlsCertificateVariable) is { Length: > 0 } path ? path : null;
        if (tlsPassword is not null && tlsCertificate is null)
        {
            // After the certificate's own fallback: a password flag with the certificate in the environment is fine.
            return $"--tls-certificate-password is the password of the ring's certificate: give --tls-certificate PATH (or ${TlsCertificateVariable}) too, or leave the password out.";
        }

        if (tlsCertificate is not null)
        {
            if (allowUnauthenticated)
            {
                return $"{certificateSource} and --allow-unauthenticated-peers exclude each other: py2p nodes speak plaintext and cannot pass the TLS handshake. "
                    + "Give one of them.";
            }

            tlsPassword ??= Environment.GetEnvironmentVariable(TlsCertificatePasswordVariable);
            if (CertificateProblem(tlsCertificate, tlsPassword) is { } problem)
            {
                return $"{certificateSource}: {problem}";
            }
        }

        mesh.ClusterSecret = secret;
        mesh.Security = allowUnauthenticated ? MeshSecurity.AllowUnauthenticated : MeshSecurity.Required;
        mesh.TlsCertificatePath = tlsCertificate;
        mesh.TlsCertificatePassword = tlsCertificate is null ? null : tlsPassword;
        return null;
    }

    /// <summary>Why the file cannot be the ring's certificate (missing, not PKCS#12, wrong password, no private key); null when it can.</summary>
    private static string? CertificateProblem(string path, string? password)
    {
        if (!File.Exists(path))
        {
            return $"'{path}' does not exist; give a PKCS#12 (.pfx) file with the ring's certificate and its private key.";
        }

        try
        {
            using var certificate = TlsTcpTransport.LoadCertificate(path, password);
            return certificate.HasPrivateKey
                ? null
                : $"'{path}' holds the certificate {certificate.Subject} without its private key; give the PKCS#12 (.pfx) file that includes the key.";
        }
        catch (ArgumentException e)
        {
            return e.Message + $" (password: --tls-certificate-password or ${TlsCertificatePasswordVariable})";
        }
    }

    public static Option<bool> Verbose() => new("--verbose", "-v")
    {
        Description = "Log what the node does to stderr.",
    };

    /// <summary>Parses host:port, or prints why not; null means the caller should exit with <see cref="ExitCodes.Usage"/>.</summary>
    public static PeerAddress? ParseAddress(string text, string option, TextWriter error)
    {
        try
        {
            return PeerAddress.Parse(text);
        }
        catch (FormatException e)
        {
            error.WriteLine($"chord: {option}: {e.Message}");
            return null;
        }
    }

    public static ILoggerFactory Logging(bool verbose) => LoggerFactory.Create(builder => builder
        .AddFilter(level => level >= (verbose ? LogLevel.Debug : LogLevel.Warning))
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace) // logs to stderr; results alone go to stdout
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.ColorBehavior = Microsoft.Extensions.Logging.Console.LoggerColorBehavior.Disabled;
        }));
}
