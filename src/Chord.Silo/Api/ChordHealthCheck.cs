using Chord.Grains;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Chord.Silo.Api;

/// <summary>Healthy when this silo's ring node is started and storing; the data says what it sees of the ring and the cluster.</summary>
internal sealed class ChordHealthCheck(ChordSiloNode silo, IClusterMembershipService membership) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var activeSilos = membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active);
        var data = new Dictionary<string, object> { ["activeSilos"] = activeSilos };
        if (!silo.IsStarted)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The ring node is not started (the silo is starting or stopping).", data: data));
        }

        var node = silo.Node;
        data["nodeId"] = node.Id;
        data["ringAddress"] = node.Mesh.Address.ToString();
        data["storing"] = !node.IsLeeching;
        data["storingMembers"] = node.Members.Count(m => m.IsStoring) + (node.IsLeeching ? 0 : 1);
        return Task.FromResult(node.IsLeeching
            ? HealthCheckResult.Unhealthy("The ring node has not joined the ring as storing yet.", data: data)
            : HealthCheckResult.Healthy("The ring node is storing.", data));
    }
}
