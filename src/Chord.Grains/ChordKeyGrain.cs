using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains;

/// <summary>
/// One key: each call goes to the key's five positions through this silo's ring node. The grain keeps no copy of
/// the value, so a read always reflects the ring (a write by any grain, client or bare node that completed before
/// the read started is seen). Writes run one at a time in this activation, which orders them.
/// </summary>
internal sealed class ChordKeyGrain(ChordSiloNode silo) : Grain, IChordKeyGrain
{
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
        await Ring.SetAsync(Key, value.Value);
    }

    public async Task<bool> Delete() => !(await Ring.PopAsync(RingKey, MsgValue.Nil)).IsNil;

    public async Task<ChordValue> ApplyDelta(ChordValue delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        return ChordValue.From(await Ring.ApplyDeltaAsync(Key, delta.Value));
    }

    public async Task<ChordValue?> Pop() => ChordValue.FromNullable(await Ring.PopAsync(RingKey, MsgValue.Nil));

    public async Task<ChordVersionedValue> GetVersioned()
    {
        var read = await Ring.GetVersionedAsync(Key);
        return new ChordVersionedValue(ChordValue.FromNullable(read.Value), ChordVersion.From(read.Version));
    }

    public async Task<ChordCasResult> SetIfVersion(ChordValue? value, ChordVersion expected)
    {
        var result = await Ring.SetIfVersionAsync(Key, value?.Value ?? MsgValue.Nil, expected.ToEntryVersion());
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
