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
