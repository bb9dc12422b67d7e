using Orleans.Concurrency;
using Chord.Dht.Ring;
using Chord.Dht.Wire;
using Chord.Interfaces;

namespace Chord.Grains;

/// <summary>
/// One key: each call goes to the key's five positions through the calling silo's ring node, whose proposer
/// coordinates the key's consensus register from there. The grain holds nothing (a stateless worker): a read always
/// reflects the ring, and every write is a compare-and-set at ring level, atomic against every other writer of the
/// key (other silos, bare <c>chord</c> nodes, the HTTP API), so no silo is the key's single coordinator and a
/// frozen or dead silo stalls only the calls made on it.
/// </summary>
[StatelessWorker]
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

    public async Task<bool> Delete()
    {
        return !(await Ring.PopAsync(RingKey, MsgValue.Nil)).IsNil;
    }

    public async Task<ChordValue> ApplyDelta(ChordValue delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        return ChordValue.From(await Ring.ApplyDeltaAsync(Key, delta.Value));
    }

    public async Task<ChordValue?> Pop()
    {
        return ChordValue.FromNullable(await Ring.PopAsync(RingKey, MsgValue.Nil));
    }

    public async Task<ChordVersionedValue> GetVersioned()
    {
        var read = await Ring.GetVersionedAsync(Key);
        return new ChordVersionedValue(ChordValue.FromNullable(read.Value), ChordVersion.From(read.Version));
    }

    public Task<ChordCasResult> SetIfVersion(ChordValue? value, ChordVersion expected) => CompareAndSetAsync(value, expected);

    public Task<ChordCasResult> SetIfVersionAfterRead(ChordValue? value, ChordVersion expected) => CompareAndSetAsync(value, expected);

    private async Task<ChordCasResult> CompareAndSetAsync(ChordValue? value, ChordVersion expected)
    {
        var result = await Ring.CompareAndSetAsync(Key, expected.ToEntryVersion(), value?.Value ?? MsgValue.Nil);
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
