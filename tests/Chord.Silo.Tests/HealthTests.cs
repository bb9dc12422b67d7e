using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Chord.Silo.Health;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;

namespace Chord.Silo.Tests;

/// <summary>The recent-operations window and the check that reads it, on a fake clock.</summary>
public sealed class OperationsHealthTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly ServiceProvider _services;
    private readonly KeyOperations _operations;

    public OperationsHealthTests()
    {
        _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        _operations = new KeyOperations(_services.GetRequiredService<IMeterFactory>(), _time);
    }

    public void Dispose()
    {
        _operations.Dispose();
        _services.Dispose();
    }

    [Theory]
    [InlineData(200, "ok")]
    [InlineData(204, "ok")]
    [InlineData(404, "not_found")]
    [InlineData(409, "conflict")]
    [InlineData(412, "conflict")]
    [InlineData(400, "bad_request")]
    [InlineData(413, "bad_request")]
    [InlineData(503, "unavailable")]
    [InlineData(500, "error")]
    public void Statuses_map_to_outcomes(int status, string outcome) => Assert.Equal(outcome, KeyOperations.Outcome(status));

    [Fact]
    public async Task No_operations_is_healthy()
    {
        var result = await CheckAsync();
        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal(0, result.Data["recentOperations"]);
    }

    [Fact]
    public async Task A_few_failures_among_successes_is_degraded_and_mostly_failures_is_unhealthy()
    {
        for (var i = 0; i < 8; i++)
        {
            _operations.Record("get", 200, TimeSpan.FromMilliseconds(1));
        }

        _operations.Record("put", 503, TimeSpan.FromMilliseconds(1));
        _operations.Record("get", 404, TimeSpan.FromMilliseconds(1)); // a miss is an answer, not a failure
        var degraded = await CheckAsync();
        Assert.Equal(HealthStatus.Degraded, degraded.Status);
        Assert.Equal(10, degraded.Data["recentOperations"]);
        Assert.Equal(1, degraded.Data["recentFailures"]);

        for (var i = 0; i < 10; i++)
        {
            _operations.Record("get", 503, TimeSpan.FromMilliseconds(1));
        }

        var unhealthy = await CheckAsync();
        Assert.Equal(HealthStatus.Unhealthy, unhealthy.Status);
        Assert.Contains("11 of the last 20", unhealthy.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fewer_than_the_minimum_operations_never_make_it_unhealthy()
    {
        for (var i = 0; i < OperationsHealthCheck.MinimumOperations - 1; i++)
        {
            _operations.Record("get", 503, TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal(HealthStatus.Degraded, (await CheckAsync()).Status);
    }

    [Fact]
    public async Task Failures_age_out_of_the_window_and_are_pushed_out_by_newer_operations()
    {
        for (var i = 0; i < 10; i++)
        {
            _operations.Record("get", 503, TimeSpan.FromMilliseconds(1));
        }

        Assert.Equal(HealthStatus.Unhealthy, (await CheckAsync()).Status);
        _time.Advance(KeyOperations.WindowAge + TimeSpan.FromSeconds(1));
        var aged = await CheckAsync();
        Assert.Equal(HealthStatus.Healthy, aged.Status);
        Assert.Equal(0, aged.Data["recentOperations"]);

        for (var i = 0; i < 10; i++)
        {
            _operations.Record("get", 503, TimeSpan.FromMilliseconds(1));
        }

        for (var i = 0; i < KeyOperations.WindowSize; i++)
        {
            _operations.Record("get", 200, TimeSpan.FromMilliseconds(1));
        }

        var pushed = await CheckAsync();
        Assert.Equal(HealthStatus.Healthy, pushed.Status);
        Assert.Equal(KeyOperations.WindowSize, pushed.Data["recentOperations"]);
    }

    private Task<HealthCheckResult> CheckAsync() => new OperationsHealthCheck(_operations).CheckHealthAsync(new HealthCheckContext());
}

/// <summary>/health, /health/live and /health/ready on the shared three hosts.</summary>
[Collection("hosts")]
public sealed class HealthEndpointTests(HostsFixture fixture) : IDisposable
{
    private readonly HttpClient _http = fixture.Hosts.Client(1);

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Live_is_200_with_only_the_process_check()
    {
        using var response = await _http.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("healthy", document.RootElement.GetProperty("status").GetString());
        Assert.Equal(["process"], document.RootElement.GetProperty("checks").EnumerateObject().Select(c => c.Name));
    }

    [Theory]
    [InlineData("health/ready")]
    [InlineData("health")]
    public async Task Ready_and_health_report_membership_ring_and_operations(string path)
    {
        using var put = await _http.PutAsync($"kv/health-{Guid.NewGuid():N}", new StringContent("1", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);

        using var response = await _http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = document.RootElement;
        Assert.Equal("healthy", root.GetProperty("status").GetString());
        var checks = root.GetProperty("checks");
        Assert.Equal(["membership", "operations", "ring"], checks.EnumerateObject().Select(c => c.Name).Order(StringComparer.Ordinal));

        var membership = checks.GetProperty("membership");
        Assert.Equal("healthy", membership.GetProperty("status").GetString());
        Assert.Equal(3, membership.GetProperty("data").GetProperty("activeSilos").GetInt32());
        Assert.Equal(0, membership.GetProperty("data").GetProperty("suspectedSilos").GetInt32());
        Assert.Equal("Active", membership.GetProperty("data").GetProperty("status").GetString());

        var ring = checks.GetProperty("ring").GetProperty("data");
        Assert.Equal(fixture.Hosts[1].RingNode.Node.Id, ring.GetProperty("nodeId").GetString());
        Assert.True(ring.GetProperty("storing").GetBoolean());

        var operations = checks.GetProperty("operations").GetProperty("data");
        Assert.True(operations.GetProperty("recentOperations").GetInt32() >= 1);
        Assert.Equal(0, operations.GetProperty("recentFailures").GetInt32());
    }
}

/// <summary>
/// With localhost clustering the membership store lives on the primary: once it is gone, a survivor's readiness
/// says so (503 naming the membership store) instead of the stale "3 active silos" of its cached view.
/// </summary>
public sealed class MembershipHealthTests
{
    [Fact]
    public async Task A_survivor_of_the_primary_is_not_ready_and_says_why()
    {
        await using var hosts = await SiloHosts.StartAsync(2);
        using var survivor = hosts.Client(1);
        using (var before = await survivor.GetAsync("health/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await hosts[0].StopAsync(deadline.Token);
        }

        string body = string.Empty;
        await Eventually.UntilAsync(async () =>
        {
            using var response = await survivor.GetAsync("health/ready");
            body = await response.Content.ReadAsStringAsync();
            return response.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(60), "the survivor's readiness turns 503 without the primary");

        using var document = JsonDocument.Parse(body);
        var membership = document.RootElement.GetProperty("checks").GetProperty("membership");
        Assert.Equal("unhealthy", membership.GetProperty("status").GetString());
        Assert.Contains("membership store", membership.GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Contains("membership:", document.RootElement.GetProperty("problem").GetString(), StringComparison.Ordinal);

        using var live = await survivor.GetAsync("health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }
}
