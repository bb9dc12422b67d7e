namespace Chord.Bench;

/// <summary>What one cell of a grid measured.</summary>
public sealed record Measurement(long Ops, long Errors, TimeSpan Elapsed, LatencyHistogram Latency, long AllocatedBytes, long Frames, long Bytes, string? FirstError, TimeSpan Cpu)
{
    public double OpsPerSecond => Ops / Elapsed.TotalSeconds;

    public double AllocatedPerOp => Ops == 0 ? double.NaN : (double)AllocatedBytes / Ops;

    /// <summary>Process CPU time (all threads, user and kernel) over the window per operation, in µs: less sensitive to other load on the machine than ops/s.</summary>
    public double CpuMicrosPerOp => Ops == 0 ? double.NaN : Cpu.TotalMicroseconds / Ops;

    public double FramesPerOp => Ops == 0 ? double.NaN : (double)Frames / Ops;

    public double BytesPerOp => Ops == 0 ? double.NaN : (double)Bytes / Ops;
}
