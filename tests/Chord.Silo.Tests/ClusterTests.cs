using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Chord.Silo.Tests;

/// <summary>Three hosts on one machine (the later two with --primary) are one Orleans cluster and one ring.</summary>
[Collection("hosts")]
public sealed class ClusterTests(HostsFixture fixture)
{
    [Fact]
    public void The_three_hosts_are_one_cluster()
    {
        var silos = fixture.Hosts.Hosts.Select(h => h.SiloAddress).ToList();
        Assert.Equal(3, silos.Distinct().Count());
        foreach (var host in fixture.Hosts.Hosts)
        {
            var membership = host.App.Services.GetRequiredService<IClusterMembershipService>();
            var active = membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).ToHashSet();
            Assert.True(active.SetEquals(silos), $"{host.SiloAddress} sees [{string.Join(", ", active)}]");
        }
    }

    [Fact]
    public void The_three_ring_nodes_are_one_ring()
    {
        Assert.True(fixture.Hosts.IsOneRing(out var divergence), divergence);
    }

    [Fact]
    public async Task A_value_put_through_one_host_is_read_and_deleted_through_the_others()
    {
        using var first = fixture.Hosts.Client(0);
        using var second = fixture.Hosts.Client(1);
        using var third = fixture.Hosts.Client(2);
        var key = $"shared-{Guid.NewGuid():N}";

        using var put = await first.PutAsync($"kv/{key}", new StringContent("""{"from": "host 0"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal("""{"from":"host 0"}""", await second.GetStringAsync($"kv/{key}"));
        Assert.Equal("""{"from":"host 0"}""", await third.GetStringAsync($"kv/{key}"));

        using var delete = await third.DeleteAsync($"kv/{key}");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using var gone = await first.GetAsync($"kv/{key}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Every_host_reports_the_same_ring()
    {
        var views = new List<string[]>();
        for (var i = 0; i < 3; i++)
        {
            using var client = fixture.Hosts.Client(i);
            using var ring = JsonDocument.Parse(await client.GetStringAsync("ring"));
            views.Add([.. ring.RootElement.GetProperty("members").EnumerateArray()
                .Select(m => $"{m.GetProperty("nodeId").GetString()} {m.GetProperty("address").GetString()} {m.GetProperty("silo").GetString()}")]);
        }

        Assert.Equal(3, views[0].Length);
        Assert.Equal(views[0], views[1]);
        Assert.Equal(views[0], views[2]);
    }
}
