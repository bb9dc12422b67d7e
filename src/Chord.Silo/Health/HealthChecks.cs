using Chord.Grains;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Chord.Silo.Health;

/// <summary>The health checks' names and tags, and their registration.</summary>
internal static class HostHealth
{
    /// <summary>Checks that say the process is up (<c>/health/live</c>).</summary>
    public const string Live = "live";

    /// <summary>Checks that say this silo can serve keys (<c>/health/ready</c>).</summary>
    public const string Ready = "ready";

    public static IServiceCollection AddHostHealthChecks(this IServiceCollection services)
    {
        services.AddSingleton<KeyOperations>();
        services.AddSingleton<MembershipObserver>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHealthChecks()
            .AddCheck("process", () => HealthCheckResult.Healthy("The process is up and serving HTTP."), [Live])
            .AddCheck<MembershipHealthCheck>("membership", tags: [Ready])
            .AddCheck<RingHealthCheck>("ring", tags: [Ready])
            .AddCheck<OperationsHealthCheck>("operations", tags: [Ready]);
        return services;
    }

    private static void TryAddSingleton<T>(this IServiceCollection services, T instance) where T : class
    {
        if (!services.Any(d => d.ServiceType == typeof(T)))
        {
            services.AddSingleton(instance);
        }
    }
}

/// <summary>
/// Healthy when the cluster's membership store answers (read now, not the silo's cached view) and lists this silo
/// as active. With localhost clustering the store lives on the primary silo: when the primary is gone, the others
/// cannot detect failures or admit silos, and this check says so instead of repeating the last view.
/// </summary>
internal sealed class MembershipHealthCheck(MembershipObserver observer, ILocalSiloDetails local, IClusterMembershipService membership) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>
        {
            ["silo"] = local.SiloAddress.ToString(),
            ["cachedActiveSilos"] = membership.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active),
        };
        var reading = await observer.ReadAsync(cancellationToken);
        if (!reading.Reachable)
        {
            return HealthCheckResult.Unhealthy(
                $"The cluster's membership store did not answer within {MembershipObserver.ReadTimeout.TotalSeconds:0} s ({reading.Problem}); "
                + "failed silos cannot be detected and new ones cannot join. With localhost clustering this means the primary silo is gone.",
                data: data);
        }

        data["activeSilos"] = reading.Active;
        data["suspectedSilos"] = reading.Suspected.Count;
        if (reading.Suspected.Count > 0)
        {
            data["suspected"] = string.Join(", ", reading.Suspected);
        }

        data["status"] = reading.SelfStatus;
        if (reading.SelfStatus != nameof(SiloStatus.Active))
        {
            return HealthCheckResult.Unhealthy($"The membership store lists this silo as {reading.SelfStatus}, not Active.", data: data);
        }

        return reading.Suspected.Count > 0
            ? HealthCheckResult.Degraded($"This silo is active; {reading.Suspected.Count} active silo(s) have suspicion votes from others that have not expired: {string.Join(", ", reading.Suspected)}.", data: data)
            : HealthCheckResult.Healthy($"This silo is active among {reading.Active} active silo(s).", data);
    }
}

/// <summary>Healthy when this silo's ring node is started and storing (it owns and serves positions).</summary>
internal sealed class RingHealthCheck(ChordSiloNode silo) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>();
        if (!silo.IsStarted)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The ring node is not started (the silo is starting or stopping).", data: data));
        }

        var node = silo.Node;
        data["nodeId"] = node.Id;
        data["ringAddress"] = node.Mesh.Address.ToString();
        data["storing"] = !node.IsLeeching;
        data["storingMembers"] = node.Members.Count(m => m.IsStoring) + (node.IsLeeching ? 0 : 1);
        data["serving"] = node.IsServing;
        data["entries"] = node.StoredCount;
        return Task.FromResult(node.IsLeeching
            ? HealthCheckResult.Unhealthy("The ring node has not joined the ring as storing yet (it is leeching).", data: data)
            : node.IsServing
                ? HealthCheckResult.Healthy("The ring node is storing.", data)
                : HealthCheckResult.Degraded("The ring node has joined but does not serve its positions yet: its predecessor has not answered its fence (docs/DURABILITY.md#fencing).", data: data));
    }
}

/// <summary>
/// The recent key operations' outcome (<see cref="KeyOperations"/>): unhealthy when at least
/// <see cref="MinimumOperations"/> of them are in the window and at least half failed, degraded when some failed.
/// </summary>
internal sealed class OperationsHealthCheck(KeyOperations operations) : IHealthCheck
{
    /// <summary>Fewer operations than this in the window never make the check unhealthy (one failed request is not an outage).</summary>
    public const int MinimumOperations = 5;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (count, failed) = operations.Recent();
        var data = new Dictionary<string, object>
        {
            ["recentOperations"] = count,
            ["recentFailures"] = failed,
            ["successRate"] = count == 0 ? 1.0 : Math.Round((count - failed) / (double)count, 3),
        };
        var window = $"{failed} of the last {count} key operation(s) (at most {KeyOperations.WindowSize}, within {KeyOperations.WindowAge.TotalSeconds:0} s) failed with 5xx";
        var result = failed == 0
            ? HealthCheckResult.Healthy(count == 0 ? "No key operations in the window." : $"None of the last {count} key operation(s) failed.", data)
            : count >= MinimumOperations && failed * 2 >= count
                ? HealthCheckResult.Unhealthy(window + ": the ring is not serving keys through this silo.", data: data)
                : HealthCheckResult.Degraded(window + ".", data: data);
        return Task.FromResult(result);
    }
}
