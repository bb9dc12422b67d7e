using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Chord.Grains.Tests;

/// <summary>
/// An opt-in trace of every test silo's ring, for chasing a failure that happens only now and then: with
/// <c>CHORD_TEST_TRACE</c> set to a folder, each test cluster collects the Chord libraries' log entries (Trace level: what
/// each owner applied and then held, what each proposer heard, each node's ring) in memory, and writes them on one
/// timeline to a file of that folder when the cluster is disposed. Off (and free) when the variable is not set.
/// </summary>
internal sealed class ClusterTrace(string name) : ILoggerProvider
{
    private readonly ConcurrentQueue<(long At, string Text)> _lines = new();
    private readonly long _origin = Stopwatch.GetTimestamp();

    /// <summary>The name the cluster's silos find this trace by (a configuration property).</summary>
    public string Name { get; } = name;

    /// <summary>The folder traces are written to, or null when tracing is off.</summary>
    public static string? Folder { get; } = Environment.GetEnvironmentVariable("CHORD_TEST_TRACE") is { Length: > 0 } folder ? folder : null;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>A line of the test's own (a silo restarted, a check failed).</summary>
    public void Note(string text) => _lines.Enqueue((Stopwatch.GetTimestamp(), "test: " + text));

    /// <summary>Writes the timeline to a new file of <see cref="Folder"/>, named after <paramref name="name"/>.</summary>
    public string Write(string name)
    {
        var text = new StringBuilder();
        foreach (var (at, line) in _lines.OrderBy(l => l.At))
        {
            text.Append(CultureInfo.InvariantCulture, $"{Stopwatch.GetElapsedTime(_origin, at).TotalMilliseconds,10:0.000} {line}\n");
        }

        Directory.CreateDirectory(Folder!);
        var path = Path.Combine(Folder!, $"{name}-{DateTime.UtcNow:HHmmss}-{Guid.NewGuid():N}.log");
        File.WriteAllText(path, text.ToString());
        return path;
    }

    public void Dispose()
    {
    }

    private sealed class Logger(ClusterTrace owner, string category) : ILogger
    {
        private readonly string _category = category[(category.LastIndexOf('.') + 1)..];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._lines.Enqueue((Stopwatch.GetTimestamp(), $"{_category}: {formatter(state, exception)}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}"));
    }
}
