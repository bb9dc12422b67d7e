using System.Text.Json.Nodes;
using Chord.Interfaces;

namespace Chord.Silo.Api;

/// <summary>The JSON shapes of the HTTP API (camelCase on the wire).</summary>
internal static class ApiViews
{
    public static JsonNode? Json(ChordValue? value) => value is null ? null : Dht.Wire.MsgValueJson.ToNode(value.Value);

    public static RingView Ring(ChordRingStatus status) => new(
        status.ObservedBy,
        [.. status.Members.Select(m => new RingMemberView(m.NodeId, m.Address, m.Silo, m.IsStoring, m.KeyCount, m.OwnedKeyCount, m.Share, m.IsSuspect))]);

    public static InspectionView Inspection(ChordKeyInspection inspection) => new(
        inspection.Key,
        inspection.HasMajority,
        Json(inspection.Value),
        inspection.Version?.ToString(),
        [.. inspection.Positions.Select(p => new PositionView(p.Method, p.Position, p.OwnerId, p.OwnerAddress, p.Answered, Json(p.Value), p.Version?.ToString(), p.AgreesWithMajority))]);
}

/// <summary>GET /ring.</summary>
internal sealed record RingView(string ObservedBy, IReadOnlyList<RingMemberView> Members);

/// <summary>One member in GET /ring.</summary>
/// <param name="NodeId">The ring node id.</param>
/// <param name="Address">Where it listens.</param>
/// <param name="Silo">Its silo; null for a bare node.</param>
/// <param name="Storing">Whether it stores data.</param>
/// <param name="Keys">Entries it holds, placement copies included.</param>
/// <param name="OwnedKeys">Entries at the positions it owns (a key has five positions across the ring).</param>
/// <param name="Share">The fraction of the ring it owns.</param>
/// <param name="Suspect">Whether the observing node suspects it (a request unanswered for a few seconds, nothing else heard).</param>
internal sealed record RingMemberView(string NodeId, string Address, string? Silo, bool Storing, int? Keys, int? OwnedKeys, double Share, bool Suspect);

/// <summary>GET /keys.</summary>
internal sealed record KeyPageView(IReadOnlyList<string> Keys, string? Next);

/// <summary>GET /kv/{key}/inspect.</summary>
internal sealed record InspectionView(string Key, bool HasMajority, JsonNode? Value, string? Version, IReadOnlyList<PositionView> Positions);

/// <summary>One position in GET /kv/{key}/inspect.</summary>
internal sealed record PositionView(
    string Method, string Position, string? OwnerId, string? OwnerAddress, bool Answered, JsonNode? Value, string? Version, bool AgreesWithMajority);

/// <summary>GET /health, /health/ready and /health/live: the overall status, the ring node's summary, and each check.</summary>
internal sealed record HealthView(
    string Status, string? NodeId, string? RingAddress, bool Storing, int StoringMembers, int ActiveSilos, string? Problem,
    IReadOnlyDictionary<string, HealthCheckView> Checks);

/// <summary>One health check's status, what it found, and its details.</summary>
internal sealed record HealthCheckView(string Status, string? Description, IReadOnlyDictionary<string, object>? Data);
