using System.Security.Cryptography;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Grains.Storage;

/// <summary>
/// What the provider finds at a state's ring key: nothing (never written, or deleted), a cleared record, or a state.
/// </summary>
/// <remarks>
/// The <b>incarnation</b> is a random id chosen when a record is first written where there was nothing, and kept by
/// every later write and clear of that record. It goes into the ETag beside the ring version because a ring delete is
/// a tombstone the ring collects once every position has it, after which the key's version starts again from 1: a
/// version alone could then repeat an ETag handed out before the delete, and a writer holding that stale ETag would
/// pass the check. With the incarnation the ETag of a record written after a delete never equals one from before it.
/// </remarks>
internal sealed record ChordStateRecord(EntryVersion Version, string? Incarnation, ReadOnlyMemory<byte>? State)
{
    private const long Format = 1;

    /// <summary>True when a state is stored (not nothing, not a cleared record).</summary>
    public bool HasState => State is not null;

    /// <summary>True when there is a record (with or without state); false for nothing.</summary>
    public bool Exists => Incarnation is not null;

    /// <summary>The record's ETag: null for nothing, else <c>{counter}@{writer}/{incarnation}</c>.</summary>
    public string? ETag => Incarnation is null ? null : MakeETag(Version, Incarnation);

    public static string MakeETag(EntryVersion version, string incarnation) => $"{version.Counter}@{version.Writer}/{incarnation}";

    public static string NewIncarnation() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>The ring value of a record: a map with the state's bytes, or without them for a cleared record.</summary>
    public static MsgValue Encode(string incarnation, GrainId grainId, string stateName, ReadOnlyMemory<byte>? state)
    {
        var entries = new List<KeyValuePair<MsgValue, MsgValue>>
        {
            new("format", Format),
            new("incarnation", incarnation),
            new("grain", grainId.ToString()),
            new("name", stateName),
        };
        if (state is { } bytes)
        {
            entries.Add(new("state", MsgValue.Bin(bytes.Span)));
        }

        return MsgValue.Map(entries);
    }

    /// <summary>Reads what a ring read returned; throws <see cref="ChordGrainStorageException"/> when it is not a record of this provider.</summary>
    public static ChordStateRecord Decode(VersionedValue read, string ringKey)
    {
        if (read.Value.IsNil)
        {
            return new ChordStateRecord(read.Version, null, null);
        }

        if (read.Value.Kind != MsgKind.Map
            || !read.Value.TryGetValue("format", out var format) || format.Kind != MsgKind.Int
            || !read.Value.TryGetValue("incarnation", out var incarnation) || incarnation.Kind != MsgKind.Str)
        {
            throw new ChordGrainStorageException(
                $"The ring key '{ringKey}' holds a value that is not a grain-state record (a map with 'format' and 'incarnation'): {Describe(read.Value)}. "
                + "Something other than the Chord grain storage wrote it; delete the key or choose another key (ChordGrainStorageOptions.GetStorageKey).");
        }

        if (format.AsInteger() != Format)
        {
            throw new ChordGrainStorageException($"The ring key '{ringKey}' holds a grain-state record of format {format.AsInteger()}; this provider reads format {Format}.");
        }

        if (read.Version == EntryVersion.Zero)
        {
            throw new ChordGrainStorageException(
                $"The ring key '{ringKey}' holds a grain-state record without a version (written by a node that keeps none, such as py2p), so it has no ETag; write it through the Chord grain storage.");
        }

        ReadOnlyMemory<byte>? state = null;
        if (read.Value.TryGetValue("state", out var bytes) && !bytes.IsNil)
        {
            if (bytes.Kind != MsgKind.Bin)
            {
                throw new ChordGrainStorageException($"The grain-state record at the ring key '{ringKey}' has a 'state' of kind {bytes.Kind}; expected bin (the serializer's bytes).");
            }

            state = bytes.AsBytes();
        }

        return new ChordStateRecord(read.Version, incarnation.AsString(), state);
    }

    private static string Describe(MsgValue value)
    {
        var text = value.ToString();
        return text.Length > 80 ? $"{value.Kind}, {text[..80]}..." : $"{value.Kind}, {text}";
    }
}
