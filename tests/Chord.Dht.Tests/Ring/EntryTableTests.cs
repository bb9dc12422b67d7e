using System.Numerics;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Ring;

/// <summary>
/// The ring node's entry table: a slot's entry replaced in its cell without a lock, and the map's semantics kept
/// (a removed slot is absent, a write after a removal is visible, enumeration shows only slots that hold an entry).
/// </summary>
public class EntryTableTests
{
    private static (HashMethod, BigInteger) Slot(int i) => ((HashMethod)(i % 5), new BigInteger(i) * 1_000_003);

    private static StoredEntry Entry(string text) => new(MsgValue.Str(text), null, null);

    [Fact]
    public void A_slot_holds_its_last_entry_until_removed_and_only_slots_with_entries_are_listed()
    {
        var table = new EntryTable(4, 16);
        Assert.True(table.IsEmpty);
        Assert.False(table.TryGetValue(Slot(1), out _));

        table[Slot(1)] = Entry("a");
        table[Slot(1)] = Entry("b");
        table[Slot(2)] = Entry("c");

        Assert.True(table.TryGetValue(Slot(1), out var held));
        Assert.Equal("b", held.Value.AsString());
        Assert.Equal(2, table.Count);
        Assert.False(table.IsEmpty);

        Assert.True(table.TryRemove(Slot(1)));
        Assert.False(table.TryRemove(Slot(1)));
        Assert.False(table.TryGetValue(Slot(1), out _));
        Assert.Equal([Slot(2)], table.Select(e => e.Key));
        Assert.Equal(["c"], table.Values.Select(e => e.Value.AsString()));

        table[Slot(1)] = Entry("d");
        Assert.True(table.TryGetValue(Slot(1), out held));
        Assert.Equal("d", held.Value.AsString());
        Assert.Equal(2, table.Count);
    }

    [Fact]
    public async Task Writers_and_removers_of_their_own_slots_always_read_their_last_write_while_others_do_the_same()
    {
        var table = new EntryTable(4, 16);
        using var stop = new CancellationTokenSource();
        var lister = Task.Run(() =>
        {
            var listed = 0L;
            while (!stop.IsCancellationRequested)
            {
                listed += table.Count; // enumerating while cells come and go must neither throw nor list an empty cell
                Assert.DoesNotContain(table, e => e.Value is null);
            }

            return listed;
        });

        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (var round = 0; round < 20_000; round++)
            {
                var slot = Slot((w * 7) + (round % 7));
                var text = $"{w}/{round}";
                table[slot] = Entry(text);
                Assert.True(table.TryGetValue(slot, out var read), $"worker {w} lost its write {text}");
                Assert.Equal(text, read.Value.AsString());
                if (round % 3 == 0)
                {
                    Assert.True(table.TryRemove(slot));
                    Assert.False(table.TryGetValue(slot, out _));
                }
            }
        })).ToArray();

        await Task.WhenAll(workers).WaitAsync(Eventually.Deadline);
        stop.Cancel();
        await lister.WaitAsync(Eventually.Deadline);
    }
}
