using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Chord.Bench;

/// <summary>
/// Samples allocations in this process by type: the runtime's GCAllocationTick event (one per ~100 KB allocated,
/// naming the type of the object that crossed the mark), read by an in-process <see cref="EventListener"/>.
/// The bench's <c>--alloc-profile</c> option prints the top types of each cell; they are a sample, in proportion.
/// </summary>
public sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private volatile bool _enabled;

    public void Reset()
    {
        _bytes.Clear();
        _enabled = true;
    }

    /// <summary>The top types by sampled bytes, with their share, and stops sampling.</summary>
    public IReadOnlyList<(string Type, double Share)> Top(int count)
    {
        _enabled = false;
        var total = _bytes.Values.Sum();
        return [.. _bytes.OrderByDescending(kv => kv.Value).Take(count).Select(kv => (kv.Key, total == 0 ? 0 : (double)kv.Value / total))];
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_enabled || eventData.EventName is null || !eventData.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.PayloadNames is null)
        {
            return;
        }

        var typeIndex = eventData.PayloadNames.IndexOf("TypeName");
        var amountIndex = eventData.PayloadNames.IndexOf("AllocationAmount64");
        if (typeIndex < 0 || eventData.Payload is null)
        {
            return;
        }

        var type = eventData.Payload[typeIndex] as string ?? "?";
        var amount = amountIndex >= 0 && eventData.Payload[amountIndex] is ulong a ? (long)a : 100_000;
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }
}
