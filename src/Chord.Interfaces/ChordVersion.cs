using System.Globalization;
using Chord.Dht.Ring;

namespace Chord.Interfaces;

/// <summary>
/// The version of a key's value: a counter that grows with every write, and the ring node id that wrote it.
/// <see cref="None"/> is the version of a key that was never written. Its text form (<c>counter@writer</c>) is what
/// the grain-storage provider uses as an ETag.
/// </summary>
[GenerateSerializer, Immutable, Alias("chord.version")]
public readonly record struct ChordVersion([property: Id(0)] long Counter, [property: Id(1)] string Writer)
{
    /// <summary>The version of a key that was never written (or only by py2p, which keeps no versions).</summary>
    public static ChordVersion None { get; } = new(0, string.Empty);

    /// <summary>True for <see cref="None"/>.</summary>
    public bool IsNone => Counter == 0 && string.IsNullOrEmpty(Writer);

    /// <summary>Converts from the ring's version.</summary>
    public static ChordVersion From(EntryVersion version) => new(version.Counter, version.Writer);

    /// <summary>Converts to the ring's version.</summary>
    public EntryVersion ToEntryVersion() => new(Counter, Writer ?? string.Empty);

    /// <summary>Parses <c>counter@writer</c> as <see cref="ToString"/> writes it.</summary>
    /// <exception cref="FormatException">The text is not a version; the message says what is expected.</exception>
    public static ChordVersion Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || !long.TryParse(text.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out var counter))
        {
            throw new FormatException($"'{text}' is not a Chord version; expected 'counter@writer', a non-negative integer, '@' and a node id.");
        }

        return new ChordVersion(counter, text[(at + 1)..]);
    }

    /// <summary><c>counter@writer</c>, the full writer id.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Counter}@{Writer}");
}

/// <summary>A key's value (null when it has none) and its version.</summary>
[GenerateSerializer, Immutable, Alias("chord.versioned-value")]
public sealed record ChordVersionedValue([property: Id(0)] ChordValue? Value, [property: Id(1)] ChordVersion Version);

/// <summary>The outcome of a version-checked write: whether it was written, and the key's value and version afterwards.</summary>
/// <param name="Succeeded">True when the key held the expected version and the write was acknowledged by a write quorum.</param>
/// <param name="Current">On success, the value written and its new version; on failure, what the key holds instead.</param>
[GenerateSerializer, Immutable, Alias("chord.cas-result")]
public sealed record ChordCasResult([property: Id(0)] bool Succeeded, [property: Id(1)] ChordVersionedValue Current);
