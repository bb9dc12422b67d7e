using System.Text;
using Chord.Cli;

namespace Chord.Silo.Tests;

/// <summary>The chord command end to end against the running hosts: the verbs with --http, and chord ring.</summary>
[Collection("hosts")]
public sealed class CliHttpTests(HostsFixture fixture)
{
    private string Http(int host) => fixture.Hosts[host].HttpAddress.ToString();

    [Fact]
    public async Task Set_through_one_silo_then_get_through_another_prints_the_string()
    {
        var key = $"greeting-{Guid.NewGuid():N}";
        var set = await RunAsync("set", key, "hello world", "--http", Http(0));
        Assert.Equal((ExitCodes.Ok, "ok"), (set.Code, set.Output.Trim()));
        var get = await RunAsync("get", key, "--http", Http(1));
        Assert.Equal(ExitCodes.Ok, get.Code);
        Assert.Equal("hello world", get.Output.Trim());
    }

    [Fact]
    public async Task Json_values_round_trip_and_print_as_json()
    {
        var key = $"cfg-{Guid.NewGuid():N}";
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", key, """{"retries": 3, "tags": ["a"]}""", "--json", "--http", Http(2))).Code);
        var get = await RunAsync("get", key, "--http", Http(0));
        Assert.Equal("""{"retries":3,"tags":["a"]}""", get.Output.Trim());
    }

    [Fact]
    public async Task A_bin_value_prints_as_json_bytes_as_it_does_through_the_ring()
    {
        var key = $"bytes-{Guid.NewGuid():N}";
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", key, """{"$bin": "AAEC"}""", "--json", "--http", Http(0))).Code);
        var viaHttp = await RunAsync("get", key, "--http", Http(1));
        var viaRing = await RunAsync("get", key, "--ring", fixture.Hosts[2].RingNode.Node.Mesh.Address.ToString());
        Assert.Equal("""{"$bin":"AAEC"}""", viaHttp.Output.Trim());
        Assert.Equal(viaRing.Output, viaHttp.Output);
    }

    [Fact]
    public async Task Del_removes_the_key_then_get_and_del_exit_1()
    {
        var key = $"doomed-{Guid.NewGuid():N}";
        await RunAsync("set", key, "x", "--http", Http(0));
        var del = await RunAsync("del", key, "--http", Http(1));
        Assert.Equal((ExitCodes.Ok, "deleted"), (del.Code, del.Output.Trim()));
        var get = await RunAsync("get", key, "--http", Http(2));
        Assert.Equal(ExitCodes.NotFound, get.Code);
        Assert.Contains("has no value", get.Error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("del", key, "--http", Http(0))).Code);
    }

    [Fact]
    public async Task Keys_lists_every_key_across_pages()
    {
        var prefix = $"cli-keys-{Guid.NewGuid():N}-";
        var keys = Enumerable.Range(0, 5).Select(i => $"{prefix}{i}").ToList();
        foreach (var key in keys)
        {
            Assert.Equal(ExitCodes.Ok, (await RunAsync("set", key, "v", "--http", Http(0))).Code);
        }

        var listed = await RunAsync("keys", "--http", Http(1));
        Assert.Equal(ExitCodes.Ok, listed.Code);
        var lines = listed.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(keys, lines.Where(l => l.StartsWith(prefix, StringComparison.Ordinal)));
        Assert.Equal(lines.Order(StringComparer.Ordinal), lines);
    }

    [Fact]
    public async Task Ring_prints_a_table_with_every_member()
    {
        var ring = await RunAsync("ring", "--http", Http(0));
        Assert.Equal(ExitCodes.Ok, ring.Code);
        var lines = ring.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd()).ToList();
        Assert.Matches(@"^NODE ID\s+ADDRESS\s+SILO\s+STORING\s+OWNED\s+HELD\s+SHARE$", lines[0]);
        foreach (var host in fixture.Hosts.Hosts)
        {
            var row = Assert.Single(lines, l => l.StartsWith(host.RingNode.Node.Id, StringComparison.Ordinal));
            Assert.Contains(host.RingNode.Node.Mesh.Address.ToString(), row, StringComparison.Ordinal);
            Assert.Contains(host.SiloAddress.ToParsableString(), row, StringComparison.Ordinal);
            Assert.Matches(@"\syes\s+\d+\s+\d+\s+\d+\.\d%$", row);
        }

        Assert.StartsWith("OWNED: entries at the positions a member owns", lines[^3], StringComparison.Ordinal);
        Assert.StartsWith("3 members, 3 storing", lines[^2], StringComparison.Ordinal);
        Assert.Equal("health of the observing silo: healthy", lines[^1]);
    }

    [Theory]
    [InlineData("get", "k")]                                                   // neither --ring nor --http
    [InlineData("get", "k", "--ring", "127.0.0.1:1", "--http", "http://127.0.0.1:1")] // both
    [InlineData("get", "k", "--http", "not a url")]
    [InlineData("get", "k", "--http", "ftp://127.0.0.1:21")]
    [InlineData("ring")]
    [InlineData("ring", "--ring", "127.0.0.1:1")]
    public async Task Bad_usage_exits_2_with_a_message(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.StartsWith("chord:", result.Error, StringComparison.Ordinal);
        Assert.Contains("--http", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Input_the_silo_refuses_exits_2_with_its_detail()
    {
        var result = await RunAsync("get", "", "--http", Http(0));
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.Contains("key is empty", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_silo_exits_3()
    {
        var port = SiloHosts.FreePort();
        var result = await RunAsync("get", "k", "--http", $"http://127.0.0.1:{port}", "--timeout", "5");
        Assert.Equal(ExitCodes.RingError, result.Code);
        Assert.Contains($"127.0.0.1:{port}", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_set_with_the_cli_through_the_ring_is_read_through_a_silo()
    {
        var key = $"bare-{Guid.NewGuid():N}";
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", key, "from a bare client", "--ring", fixture.Hosts[1].RingNode.Node.Mesh.Address.ToString())).Code);
        var get = await RunAsync("get", key, "--http", Http(2));
        Assert.Equal("from a bare client", get.Output.Trim());
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter(new StringBuilder());
        var error = new StringWriter(new StringBuilder());
        var code = await ChordCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
