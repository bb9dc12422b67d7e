using System.Diagnostics;

namespace Chord.Silo.Logging;

/// <summary>
/// The system clock with timestamps counted from this clock's first reading instead of from boot: the host gives
/// it to Orleans' membership services (the <c>Membership</c> keyed TimeProvider), whose watchdog reads one of its
/// timestamps before setting it.
/// </summary>
/// <remarks>
/// Orleans 10.4.2's <c>Watchdog.Start</c> starts the platform watchdog thread before it sets the component
/// watchdog's timestamp. When that thread runs first (a loaded machine, a slow start), it measures the time since
/// timestamp 0, which with the system clock (CLOCK_MONOTONIC on Linux) is the machine's uptime, and warns
/// "Participant check thread has not completed for 00:09:56 ... deadlock" on a silo that is fine. From this clock
/// timestamp 0 is its first reading, made as the silo starts, so that measurement is at most a moment and the
/// warning stays for real stalls. Every other reading pairs two timestamps of this same clock, so the offset does
/// not change any duration; wall-clock time and timers are the system's.
/// </remarks>
public sealed class ProcessClock : TimeProvider
{
    private long _origin;

    /// <inheritdoc />
    public override long TimestampFrequency => Stopwatch.Frequency;

    /// <inheritdoc />
    public override long GetTimestamp()
    {
        var now = Stopwatch.GetTimestamp();
        var origin = Volatile.Read(ref _origin);
        if (origin == 0)
        {
            // One less than the first reading: no timestamp is ever 0, which callers may use for "never".
            var first = Interlocked.CompareExchange(ref _origin, now - 1, 0);
            origin = first == 0 ? now - 1 : first;
        }

        return now - origin;
    }
}
