using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Chord.Dht.Tests.Linearizability;
using Chord.Dht.Wire;
using Microsoft.Extensions.Logging;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// Everything a simulation's nodes log (the ring's Trace entries included: what each owner applied and then held, what
/// each proposer heard, each node's ring), with the simulation's own notes (crashes, restarts), on one timeline. Kept in
/// memory and written to a file only for a failing seed, with the history's operations merged in and node ids and key
/// positions replaced by short names, so that one key can be followed through the run.
/// </summary>
internal sealed class SimulationTrace : ILoggerFactory, ILoggerProvider
{
    private readonly ConcurrentQueue<(long At, string Text)> _lines = new();
    private readonly long _origin = Stopwatch.GetTimestamp();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName.StartsWith("Chord.Dht.Ring", StringComparison.Ordinal) ? LogLevel.Trace : LogLevel.Debug);

    /// <summary>A line of the simulation's own (a crash, a restart).</summary>
    public void Note(string text) => _lines.Enqueue((Stopwatch.GetTimestamp(), "sim: " + text));

    /// <summary>
    /// Writes the timeline to <paramref name="path"/>: every line and every operation's invocation and response, in
    /// time order, as milliseconds since the simulation started.
    /// </summary>
    public void Write(string path, string verdict, IEnumerable<Operation> history, IReadOnlyDictionary<string, string> nodeNames, IEnumerable<string> keys)
    {
        var events = new List<(long At, string Text)>(_lines);
        foreach (var op in history)
        {
            events.Add((op.InvokedAt, $"client {op.Client}: invokes {op.Describe()}"));
            if (op.RespondedAt != Operation.Infinity && op.Outcome != OperationOutcome.Unknown)
            {
                events.Add((op.RespondedAt, $"client {op.Client}: returns {op.Describe()}"));
            }
        }

        var names = new List<(string From, string To)>();
        foreach (var (id, name) in nodeNames)
        {
            names.Add((id, name));
        }

        foreach (var key in keys)
        {
            var positions = KeyHashes.All(Encoding.UTF8.GetBytes(key));
            for (var i = 0; i < positions.Length; i++)
            {
                var method = (HashMethod)i;
                var hex = positions[i].Reduced.Value.ToString("x", CultureInfo.InvariantCulture).TrimStart('0').PadLeft(96, '0')[..8];
                names.Add(($"{method}:{hex}", $"{key}#{method}"));
            }
        }

        var text = new StringBuilder(verdict).Append("\n\n");
        foreach (var (at, line) in events.OrderBy(e => e.At))
        {
            var named = line;
            foreach (var (from, to) in names)
            {
                named = named.Replace(from, to, StringComparison.Ordinal);
            }

            text.Append(CultureInfo.InvariantCulture, $"{Stopwatch.GetElapsedTime(_origin, at).TotalMilliseconds,10:0.000} {named}\n");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text.ToString());
    }

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger(SimulationTrace owner, LogLevel least) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= least;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner._lines.Enqueue((Stopwatch.GetTimestamp(), formatter(state, exception) + (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")));
            }
        }
    }
}
