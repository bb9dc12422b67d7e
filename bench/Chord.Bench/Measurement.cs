namespace Chord.Bench;

/// <summary>What one cell of a grid measured.</summary>
public sealed record Measurement(long Ops, long Errors, TimeSpan Elapsed, LatencyHistogram Latency, long AllocatedBytes, long Frames, long Bytes, string? FirstError)
{
    public double OpsPerSecond => Ops / Elapsed.TotalSeconds;

    public double AllocatedPerOp => Ops == 0 ? double.NaN : (double)AllocatedBytes / Ops;

    public double FramesPerOp => Ops == 0 ? double.NaN : (double)Frames / Ops;

    public double BytesPerOp => Ops == 0 ? double.NaN : (double)Bytes / Ops;
}
