using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Chord.Silo.Health;

/// <summary>
/// The key operations this silo's HTTP API served: counted and timed in the <c>Chord.Silo</c> meter by operation
/// and outcome, and kept in a sliding window (the last <see cref="WindowSize"/> operations of the last
/// <see cref="WindowAge"/>) that the readiness check reads.
/// </summary>
/// <remarks>
/// The window forgets by age as well as by count, so a silo that was taken out of a load balancer's rotation for
/// failing operations becomes ready again once the failures are old, rather than staying out for want of traffic.
/// </remarks>
public sealed class KeyOperations : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Chord.Silo";

    /// <summary>How many recent operations the window keeps.</summary>
    public const int WindowSize = 100;

    /// <summary>How old an operation may be and still count in the window.</summary>
    public static readonly TimeSpan WindowAge = TimeSpan.FromMinutes(1);

    /// <summary>The duration histogram's buckets in seconds: from a fast local read to a request timeout.</summary>
    public static readonly IReadOnlyList<double> DurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly TimeProvider _time;
    private readonly Meter _meter;
    private readonly Counter<long> _operations;
    private readonly Histogram<double> _duration;
    private readonly (long At, bool Failed)[] _window = new (long, bool)[WindowSize];
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    /// <summary>Created by dependency injection (one per host, so in-process hosts keep separate windows).</summary>
    public KeyOperations(IMeterFactory meters, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _meter = meters.Create(MeterName, "1.0");
        _operations = _meter.CreateCounter<long>("chord.kv.operations", "{operation}", "Key operations served by the HTTP API, by operation and outcome");
        _duration = _meter.CreateHistogram<double>("chord.kv.duration", "s", "Key operation time as the HTTP API saw it, by operation and outcome",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
    }

    /// <summary>The outcome of an HTTP status: ok, not_found, conflict (409, 412), bad_request (other 4xx), unavailable (503), error (other 5xx).</summary>
    public static string Outcome(int status) => status switch
    {
        < 400 => "ok",
        404 => "not_found",
        409 or 412 => "conflict",
        < 500 => "bad_request",
        503 => "unavailable",
        _ => "error",
    };

    /// <summary>Records one operation: <paramref name="operation"/> (get, put, delete, delta, inspect) answered with <paramref name="status"/>.</summary>
    public void Record(string operation, int status, TimeSpan elapsed)
    {
        var outcome = Outcome(status);
        var tags = new TagList { { "operation", operation }, { "outcome", outcome } };
        _operations.Add(1, tags);
        _duration.Record(elapsed.TotalSeconds, tags);
        lock (_lock)
        {
            _window[_next] = (_time.GetTimestamp(), status >= 500);
            _next = (_next + 1) % WindowSize;
            _count = Math.Min(_count + 1, WindowSize);
        }
    }

    /// <summary>Starts timing an operation (pass the result to <see cref="Elapsed"/>).</summary>
    public long Start() => _time.GetTimestamp();

    /// <summary>The time since <paramref name="started"/>.</summary>
    public TimeSpan Elapsed(long started) => _time.GetElapsedTime(started);

    /// <summary>The operations in the window now and how many of them failed (a 5xx: the ring or the silo could not serve them).</summary>
    public (int Operations, int Failed) Recent()
    {
        var now = _time.GetTimestamp();
        var operations = 0;
        var failed = 0;
        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                var (at, isFailure) = _window[i];
                if (_time.GetElapsedTime(at, now) <= WindowAge)
                {
                    operations++;
                    failed += isFailure ? 1 : 0;
                }
            }
        }

        return (operations, failed);
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
