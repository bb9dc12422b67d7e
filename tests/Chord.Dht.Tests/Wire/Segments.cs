using System.Buffers;

namespace Chord.Dht.Tests.Wire;

/// <summary>
/// Builds multi-segment <see cref="ReadOnlySequence{T}"/>s, the shape a pipe hands its reader when bytes arrive in pieces.
/// </summary>
internal static class Segments
{
    /// <summary>A sequence with one segment per chunk, in order (empty chunks become empty segments).</summary>
    public static ReadOnlySequence<byte> Create(IEnumerable<ReadOnlyMemory<byte>> chunks)
    {
        Chunk? first = null;
        Chunk? last = null;
        foreach (var chunk in chunks)
        {
            last = last is null ? first = new Chunk(chunk, 0) : last.Append(chunk);
        }

        return first is null || last is null
            ? ReadOnlySequence<byte>.Empty
            : new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>A sequence with one segment per chunk.</summary>
    public static ReadOnlySequence<byte> Create(params byte[][] chunks) => Create(chunks.Select(c => (ReadOnlyMemory<byte>)c));

    /// <summary>Each byte of <paramref name="data"/> in its own segment.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] data) =>
        Create(Enumerable.Range(0, data.Length).Select(i => new ReadOnlyMemory<byte>(data, i, 1)));

    /// <summary>
    /// <paramref name="data"/> cut at <paramref name="cuts"/> (any order, clamped to the data; a repeated cut makes an
    /// empty segment).
    /// </summary>
    public static List<ReadOnlyMemory<byte>> SplitAt(byte[] data, IEnumerable<int> cuts)
    {
        var points = cuts.Select(c => Math.Clamp(c, 0, data.Length)).Order().ToList();
        var chunks = new List<ReadOnlyMemory<byte>>(points.Count + 1);
        var start = 0;
        foreach (var point in points)
        {
            chunks.Add(new ReadOnlyMemory<byte>(data, start, point - start));
            start = point;
        }

        chunks.Add(new ReadOnlyMemory<byte>(data, start, data.Length - start));
        return chunks;
    }

    /// <summary>The segments of a sequence, in order.</summary>
    public static List<ReadOnlyMemory<byte>> ChunksOf(ReadOnlySequence<byte> sequence)
    {
        var chunks = new List<ReadOnlyMemory<byte>>();
        foreach (var memory in sequence)
        {
            chunks.Add(memory);
        }

        return chunks;
    }

    private sealed class Chunk : ReadOnlySequenceSegment<byte>
    {
        public Chunk(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Chunk Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Chunk(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
