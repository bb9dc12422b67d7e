using System.Diagnostics;

namespace Chord.Bench;

/// <summary>
/// Runs <c>callers</c> concurrent loops of one operation: a warm-up that is not recorded, then a measured window.
/// Allocation is <see cref="GC.GetTotalAllocatedBytes"/> over the window, which counts every thread of this process
/// (the nodes, the silos and the callers all run here), divided by the operations completed in the window.
/// </summary>
public static class LoadRunner
{
    /// <param name="callers">Concurrent loops.</param>
    /// <param name="warmup">Unrecorded run before the window.</param>
    /// <param name="duration">The measured window.</param>
    /// <param name="operation">One operation: (caller index, the caller's random source).</param>
    /// <param name="frames">Where frames and bytes sent are counted, or null.</param>
    /// <param name="allocations">When given, sampled over the window and its top types printed to <paramref name="log"/>.</param>
    /// <param name="log">Where the allocation profile goes.</param>
    public static async Task<Measurement> RunAsync(int callers, TimeSpan warmup, TimeSpan duration, Func<int, Random, Task> operation, FrameCounter? frames,
        AllocationSampler? allocations = null, Action<string>? log = null)
    {
        var measuring = 0; // 0 warm-up, 1 measured window, 2 stopped
        var histograms = new LatencyHistogram[callers];
        var ops = new long[callers];
        var errors = new long[callers];
        string? firstError = null;

        async Task CallerAsync(int index)
        {
            await Task.Yield();
            var random = new Random(index * 7919 + 17);
            var histogram = histograms[index] = new LatencyHistogram();
            while (true)
            {
                var phase = Volatile.Read(ref measuring);
                if (phase == 2)
                {
                    return;
                }

                var start = Stopwatch.GetTimestamp();
                try
                {
                    await operation(index, random);
                }
                catch (Exception e)
                {
                    if (phase == 1)
                    {
                        errors[index]++;
                        Interlocked.CompareExchange(ref firstError, $"{e.GetType().Name}: {e.Message}", null);
                    }

                    continue;
                }

                var end = Stopwatch.GetTimestamp();
                if (phase == 1 && Volatile.Read(ref measuring) == 1)
                {
                    histogram.Record(end - start);
                    ops[index]++;
                }
            }
        }

        var tasks = Enumerable.Range(0, callers).Select(i => Task.Run(() => CallerAsync(i))).ToArray();
        await Task.Delay(warmup);
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        var framesBefore = frames?.Frames ?? 0;
        var bytesBefore = frames?.Bytes ?? 0;
        var flushesBefore = frames?.Flushes ?? 0;
        allocations?.Reset();
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, 1);
        await Task.Delay(duration);
        Volatile.Write(ref measuring, 2);
        var elapsed = clock.Elapsed;
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuBefore;
        var allocated = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore;
        var framesSent = (frames?.Frames ?? 0) - framesBefore;
        var bytesSent = (frames?.Bytes ?? 0) - bytesBefore;
        var flushes = (frames?.Flushes ?? 0) - flushesBefore;
        if (flushes > 0 && log is not null)
        {
            log($"  {framesSent:N0} frames in {flushes:N0} flushes: {(double)framesSent / flushes:0.00} frames per flush");
        }
        if (allocations is not null && log is not null)
        {
            foreach (var (type, share) in allocations.Top(25))
            {
                log($"  alloc {share,6:P1} {type}");
            }
        }

        await Task.WhenAll(tasks);

        var merged = new LatencyHistogram();
        foreach (var h in histograms)
        {
            merged.Merge(h);
        }

        return new Measurement(ops.Sum(), errors.Sum(), elapsed, merged, allocated, framesSent, bytesSent, firstError, cpu);
    }
}
