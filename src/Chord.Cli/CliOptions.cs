using System.CommandLine;
using Chord.Dht.Mesh;
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
        Description = "Also serve peers that do not authenticate (py2p nodes); anyone who reaches the port can then read and write as py2p can.",
    };

    /// <summary>
    /// Sets the mesh's security from the two options (and <see cref="ClusterSecretVariable"/>); null when all is well,
    /// else what is wrong (a usage error).
    /// </summary>
    public static string? ApplySecurity(MeshOptions mesh, string? secret, bool allowUnauthenticated)
    {
        secret ??= Environment.GetEnvironmentVariable(ClusterSecretVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
        if (secret is not null && System.Text.Encoding.UTF8.GetByteCount(secret) < 16)
        {
            return $"${ClusterSecretVariable} is {System.Text.Encoding.UTF8.GetByteCount(secret)} bytes: give at least 16 bytes, the secret every node of the ring shares.";
        }

        mesh.ClusterSecret = secret;
        mesh.Security = allowUnauthenticated ? MeshSecurity.AllowUnauthenticated : MeshSecurity.Required;
        return null;
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
