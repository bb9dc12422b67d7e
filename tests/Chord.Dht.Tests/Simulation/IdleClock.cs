using Microsoft.Extensions.Time.Testing;

namespace Chord.Dht.Tests.Simulation;

/// <summary>
/// A fake clock that moves only while the process has nothing to do: a thread of its own checks, every millisecond of
/// real time, that the thread pool has no queued work item and completed none since the last check, and only then
/// advances the clock by <see cref="Step"/> (firing the timers due). Work that is queued or running holds time still,
/// so on a loaded machine everything runs slower but no time-out fires because the machine was slow: a ring on this
/// clock converges through its own periodic timers, and its deadlines measure the ring's idleness, not the machine's
/// speed. (A thread descheduled in the middle of a work item can look idle for a moment; each such moment moves the
/// clock by one step only.)
/// </summary>
public sealed class IdleClock : IDisposable
{
    private readonly Thread _driver;
    private volatile bool _stopped;
    private long _steps;

    public IdleClock(TimeSpan step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(step, TimeSpan.Zero);
        Step = step;
        Time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        _driver = new Thread(Drive) { IsBackground = true, Name = "idle-clock" };
        _driver.Start();
    }

    /// <summary>The clock to give the nodes.</summary>
    public FakeTimeProvider Time { get; }

    /// <summary>How far each idle moment moves the clock.</summary>
    public TimeSpan Step { get; }

    /// <summary>How many times the clock has moved.</summary>
    public long Steps => Interlocked.Read(ref _steps);

    private void Drive()
    {
        var completed = ThreadPool.CompletedWorkItemCount;
        while (!_stopped)
        {
            Thread.Sleep(1);
            var now = ThreadPool.CompletedWorkItemCount;
            if (now == completed && ThreadPool.PendingWorkItemCount == 0)
            {
                Time.Advance(Step); // timer callbacks run here; what they start is pool work, so the next check waits for it
                Interlocked.Increment(ref _steps);
            }

            completed = ThreadPool.CompletedWorkItemCount;
        }
    }

    public void Dispose()
    {
        _stopped = true;
        _driver.Join();
    }
}
