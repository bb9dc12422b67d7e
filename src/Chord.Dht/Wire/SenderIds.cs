using System.Collections.Concurrent;
using System.Text;
using Chord.Dht.Ring;

namespace Chord.Dht.Wire;

/// <summary>
/// The sender ids of received messages as strings, made once per id: every frame carries its sender's id (64 to 90
/// base58 digits), and a ring hears the same few ids all the time. Bounded: about <see cref="Capacity"/> ids of up
/// to <see cref="MaxLength"/> bytes are kept (threads adding while another empties it may leave one each above), and
/// the cache is emptied when full, so a stranger sending random ids
/// costs a string per frame, as without the cache, and never more memory than the bound.
/// </summary>
internal static class SenderIds
{
    public const int Capacity = 1024;

    public const int MaxLength = 128;

    private static readonly ConcurrentDictionary<byte[], string> Cache = new(ByteArrayComparer.Instance);

    private static readonly ConcurrentDictionary<byte[], string>.AlternateLookup<ReadOnlySpan<byte>> CacheBySpan =
        Cache.GetAlternateLookup<ReadOnlySpan<byte>>();

    private static int _count;

    /// <summary>Kept ids (for tests).</summary>
    internal static int Count => Cache.Count;

    /// <summary>The id as ASCII text (bytes above 127 read as '?', as <see cref="Encoding.ASCII"/> does).</summary>
    public static string Get(ReadOnlySpan<byte> id)
    {
        if (id.Length > MaxLength)
        {
            return Encoding.ASCII.GetString(id);
        }

        if (CacheBySpan.TryGetValue(id, out var known))
        {
            return known;
        }

        var text = Encoding.ASCII.GetString(id);
        if (Interlocked.Increment(ref _count) > Capacity)
        {
            Cache.Clear();
            Interlocked.Exchange(ref _count, 1);
        }

        if (!CacheBySpan.TryAdd(id, text))
        {
            Interlocked.Decrement(ref _count);
        }

        return text;
    }
}
