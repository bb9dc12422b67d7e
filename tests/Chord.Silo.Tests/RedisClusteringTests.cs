using System.Net;
using System.Text;
using Chord.Testing;

namespace Chord.Silo.Tests;

/// <summary>
/// Two hosts with --clustering redis form one cluster and one ring through a redis-server this test starts on
/// 127.0.0.1 (and stops). Without redis-server on PATH the test is skipped, except under CI=true, where it fails.
/// </summary>
public sealed class RedisClusteringTests
{
    [RedisFact]
    public async Task Two_hosts_with_redis_clustering_form_one_ring()
    {
        using var redis = await StartRedisAsync();
        await using var hosts = await SiloHosts.StartAsync(2, "--clustering", "redis", "--redis", redis.Endpoint);
        Assert.True(hosts.IsOneRing(out var divergence), divergence);

        using var first = hosts.Client(0);
        using var second = hosts.Client(1);
        var key = $"redis-{Guid.NewGuid():N}";
        using var put = await first.PutAsync($"kv/{key}", new StringContent("\"through redis membership\"", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal("\"through redis membership\"", await second.GetStringAsync($"kv/{key}"));
    }

    internal static string? FindRedisServer() => LocalRedisServer.FindExecutable();

    private static async Task<LocalRedisServer> StartRedisAsync() =>
        await LocalRedisServer.StartAsync(FindRedisServer()
            // Without redis-server, RedisFact skips the test, except under CI=true, where it runs and fails here.
            ?? throw new InvalidOperationException("redis-server is not on PATH, and CI=true requires the Redis clustering test to run (.ci/run installs redis-server)."));
}

/// <summary>A fact skipped when redis-server is not on PATH, unless CI=true: there the test runs, and fails without it.</summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        var ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (!ci && RedisClusteringTests.FindRedisServer() is null)
        {
            Skip = "redis-server is not on PATH; install it (apt-get install redis-server) to run the Redis clustering test.";
        }
    }
}
