using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains;

/// <summary>
/// One key: each call goes to the key's five positions through this silo's ring node. The grain keeps no copy of
/// the value, so a read always reflects the ring (a write by any grain, client or bare node that completed before
/// the read started is seen). Writes run one at a time in this activation, which orders them.
/// </summary>
/// <remarks>
/// The activation remembers the version of its own last compare-and-set. When a caller that has just read the key
/// (<see cref="IChordKeyGrain.SetIfVersionAfterRead"/>) expects exactly that version, nothing can have been written
/// through the grain in between (this activation runs writes one at a time) and the caller's read stands for the
/// grain's: it writes in one quorum round (<see cref="RingNode.SetAfterOwnWriteAsync(string, MsgValue, EntryVersion, CancellationToken)"/>).
/// This is what a grain's <c>WriteStateAsync</c> on the Chord storage does on every write after the first.
/// </remarks>
internal sealed class ChordKeyGrain(ChordSiloNode silo) : Grain, IChordKeyGrain
{
    // The version of this activation's last successful compare-and-set; null after any other write or a failure.
    private EntryVersion? _ownVersion;

    private string Key => this.GetPrimaryKeyString();

    private RingNode Ring => silo.Node;

    public async Task<ChordValue?> Get()
    {
        var read = await Ring.GetVersionedAsync(Key);
        return ChordValue.FromNullable(read.Value);
    }

    public async Task Set(ChordValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        _ownVersion = null;
        await Ring.SetAsync(Key, value.Value);
    }

    public async Task<bool> Delete()
    {
        _ownVersion = null;
        return !(await Ring.PopAsync(RingKey, MsgValue.Nil)).IsNil;
    }

    public async Task<ChordValue> ApplyDelta(ChordValue delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        _ownVersion = null;
        return ChordValue.From(await Ring.ApplyDeltaAsync(Key, delta.Value));
    }

    public async Task<ChordValue?> Pop()
    {
        _ownVersion = null;
        return ChordValue.FromNullable(await Ring.PopAsync(RingKey, MsgValue.Nil));
    }

    public async Task<ChordVersionedValue> GetVersioned()
    {
        var read = await Ring.GetVersionedAsync(Key);
        return new ChordVersionedValue(ChordValue.FromNullable(read.Value), ChordVersion.From(read.Version));
    }

    public Task<ChordCasResult> SetIfVersion(ChordValue? value, ChordVersion expected) => CompareAndSetAsync(value, expected, callerJustRead: false);

    public Task<ChordCasResult> SetIfVersionAfterRead(ChordValue? value, ChordVersion expected) => CompareAndSetAsync(value, expected, callerJustRead: true);

    private async Task<ChordCasResult> CompareAndSetAsync(ChordValue? value, ChordVersion expected, bool callerJustRead)
    {
        var expectedVersion = expected.ToEntryVersion();
        var ownVersion = _ownVersion;
        _ownVersion = null; // until this write is known to have succeeded
        var result = callerJustRead && ownVersion == expectedVersion && expectedVersion > EntryVersion.Zero
            ? await Ring.SetAfterOwnWriteAsync(Key, value?.Value ?? MsgValue.Nil, expectedVersion)
            : await Ring.SetIfVersionAsync(Key, value?.Value ?? MsgValue.Nil, expectedVersion);
        _ownVersion = result.Succeeded ? result.Current.Version : null;
        return new ChordCasResult(result.Succeeded, new ChordVersionedValue(ChordValue.FromNullable(result.Current.Value), ChordVersion.From(result.Current.Version)));
    }

    public async Task<ChordKeyInspection> Inspect()
    {
        var inspection = await Ring.InspectAsync(Key);
        var positions = inspection.Positions.Select(p => new ChordPositionReport(
            p.Method.WireName(),
            p.Position.ToString(),
            p.Owner?.Id,
            p.Owner?.Address.ToString(),
            p.Answered,
            ChordValue.FromNullable(p.Value),
            p.Version is { } v ? ChordVersion.From(v) : null,
            p.AgreesWithMajority)).ToList();
        return new ChordKeyInspection(Key, positions, ChordValue.FromNullable(inspection.Value),
            inspection.Version is { } version ? ChordVersion.From(version) : null, inspection.HasMajority);
    }

    private byte[] RingKey => System.Text.Encoding.UTF8.GetBytes(Key);
}
