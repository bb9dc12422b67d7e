using System.Text;

namespace Chord.Dht.Wire;

/// <summary>
/// The sender ids of received messages as strings, made once per id: every frame carries its sender's id (64 to 90
/// base58 digits), and a ring hears the same few ids all the time. Bounded (<see cref="BoundedSpanCache{TValue}"/>):
/// about <see cref="Capacity"/> ids of up to <see cref="MaxLength"/> bytes, so a stranger sending random ids costs a
/// string per frame, as without the cache, and never more memory than the bound.
/// </summary>
internal static class SenderIds
{
    public const int Capacity = 1024;

    public const int MaxLength = 128;

    private static readonly BoundedSpanCache<string> Cache = new(Capacity);

    /// <summary>Kept ids (for tests).</summary>
    internal static int Count => Cache.Count;

    /// <summary>The id as ASCII text (bytes above 127 read as '?', as <see cref="Encoding.ASCII"/> does).</summary>
    public static string Get(ReadOnlySpan<byte> id)
    {
        if (id.Length > MaxLength)
        {
            return Encoding.ASCII.GetString(id);
        }

        if (Cache.TryGet(id, out var known))
        {
            return known;
        }

        var text = Encoding.ASCII.GetString(id);
        Cache.Add(id, text);
        return text;
    }
}
