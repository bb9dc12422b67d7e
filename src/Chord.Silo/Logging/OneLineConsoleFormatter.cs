using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Chord.Silo.Logging;

/// <summary>
/// The host's console format: one line per event, <c>time level category: message; cause: Type: message ← inner</c>.
/// A stack trace follows only at Debug and Trace, or for an Error or Critical whose cause is not an expected network
/// fault (a reset or refused connection, a timeout, a silo that went away): a peer's crash is a line, not a page.
/// Text that a library put into the message itself (Orleans adds exception dumps) is cut at its first stack frame.
/// </summary>
internal sealed class OneLineConsoleFormatter() : ConsoleFormatter(Name)
{
    public new const string Name = "chord";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
        {
            return;
        }

        textWriter.Write(DateTime.UtcNow.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(' ');
        textWriter.Write(Level(logEntry.LogLevel));
        textWriter.Write(' ');
        textWriter.Write(logEntry.Category);
        textWriter.Write(": ");
        textWriter.Write(OneLine(message ?? string.Empty));
        if (logEntry.Exception is { } exception)
        {
            textWriter.Write("; cause: ");
            textWriter.Write(Cause(exception));
            if (WantsStackTrace(logEntry.LogLevel, exception))
            {
                textWriter.WriteLine();
                textWriter.Write(exception.ToString());
            }
        }

        textWriter.WriteLine();
    }

    /// <summary>Debug and Trace always carry the stack trace; Error and Critical do unless the cause is an expected network fault.</summary>
    internal static bool WantsStackTrace(LogLevel level, Exception exception) =>
        level <= LogLevel.Debug || (level >= LogLevel.Error && !IsExpectedNetworkFault(exception));

    /// <summary>A fault a peer's crash or a network hiccup causes: a socket error, a reset, a timeout, a refused or rejected call.</summary>
    internal static bool IsExpectedNetworkFault(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            var name = e.GetType().Name;
            if (e is SocketException or IOException or ConnectionResetException or ConnectionAbortedException or TimeoutException or OperationCanceledException
                || name is "SocketConnectionException" or "ConnectionFailedException" or "OrleansMessageRejectionException" or "SiloUnavailableException"
                    or "ChordTimeoutException" or "MeshConnectException" or "TimeoutRejectedException" or "BrokenCircuitException")
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Each exception in the chain as <c>Type: first line of its message</c>, outermost first.</summary>
    internal static string Cause(Exception exception)
    {
        var parts = new List<string>();
        for (Exception? e = exception; e is not null && parts.Count < 4; e = e.InnerException)
        {
            parts.Add($"{e.GetType().Name}: {OneLine(e.Message)}");
        }

        return string.Join(" <- ", parts);
    }

    /// <summary>The message's lines up to its first stack frame or exception dump, joined by spaces.</summary>
    internal static string OneLine(string message)
    {
        var kept = new List<string>();
        foreach (var raw in message.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("at ", StringComparison.Ordinal) || line.StartsWith("---", StringComparison.Ordinal)
                || line.StartsWith("Exc level", StringComparison.Ordinal))
            {
                break;
            }

            if (line.Length > 0)
            {
                kept.Add(line);
            }
        }

        return string.Join(' ', kept);
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
