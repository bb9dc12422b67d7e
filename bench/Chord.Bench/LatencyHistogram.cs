using System.Diagnostics;

namespace Chord.Bench;

/// <summary>
/// A log-bucket latency histogram: 32 sub-buckets per power of two of Stopwatch ticks, so a percentile is within
/// about 3% of the true value. Not thread-safe: each caller records into its own and they are merged at the end.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 5;
    private const int Sub = 1 << SubBits;
    private readonly long[] _counts = new long[64 * Sub];

    public long Count { get; private set; }

    public void Record(long ticks)
    {
        if (ticks < 1)
        {
            ticks = 1;
        }

        _counts[Index(ticks)]++;
        Count++;
    }

    public void Merge(LatencyHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
    }

    /// <summary>The latency at quantile <paramref name="q"/> (0..1), in microseconds; NaN when empty.</summary>
    public double PercentileMicros(double q)
    {
        if (Count == 0)
        {
            return double.NaN;
        }

        var rank = (long)Math.Ceiling(q * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Midpoint(i) * 1e6 / Stopwatch.Frequency;
            }
        }

        return double.NaN;
    }

    private static int Index(long value)
    {
        // Values below 2·Sub are exact; above, keep the top SubBits+1 bits: index = (shift + 1)·Sub + mantissa.
        var bits = 64 - (int)long.LeadingZeroCount(value);
        if (bits <= SubBits + 1)
        {
            return (int)value;
        }

        var shift = bits - SubBits - 1;
        var mantissa = (int)(value >> shift) - Sub;
        return ((shift + 1) * Sub) + mantissa;
    }

    private static double Midpoint(int index)
    {
        if (index < 2 * Sub)
        {
            return index;
        }

        var shift = (index / Sub) - 1;
        var mantissa = (index % Sub) + Sub;
        return (mantissa + 0.5) * Math.Pow(2, shift);
    }
}
