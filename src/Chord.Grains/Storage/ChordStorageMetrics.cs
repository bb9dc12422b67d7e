using System.Diagnostics.Metrics;

namespace Chord.Grains.Storage;

/// <summary>The grain storage's instruments, in the <c>Chord.Grains.Storage</c> meter.</summary>
internal static class ChordStorageMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Chord.Grains.Storage";

    private static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Operations by <c>provider</c>, <c>operation</c> (read, write, clear) and <c>outcome</c> (ok, conflict: an ETag mismatch, failed).</summary>
    public static readonly Counter<long> Operations = Meter.CreateCounter<long>("chord.storage.operations", "{operation}", "Grain-storage reads, writes and clears by outcome");

    /// <summary>How long operations took, by <c>provider</c> and <c>operation</c>.</summary>
    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("chord.storage.duration", "ms", "Grain-storage operation time, ring round trips included");
}
