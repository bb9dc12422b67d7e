using System.Text.RegularExpressions;
using Chord.Cli;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Silo.Tests;

/// <summary>The chord command, run in-process against a ring of two storing nodes on loopback.</summary>
public sealed partial class CliTests : IAsyncLifetime
{
    private readonly List<RingNode> _nodes = [];

    private string Ring => _nodes[0].Mesh.Address.ToString();

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 2; i++)
        {
            var node = new RingNode(new RingOptions());
            await node.StartAsync();
            if (_nodes.Count > 0)
            {
                await node.ConnectAsync(_nodes[0].Mesh.Address);
            }

            await node.JoinAsync();
            _nodes.Add(node);
        }

        await WaitAsync(() => _nodes.All(n => n.StoringPeers.Count == 1), "both nodes to see each other storing");
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    [Fact]
    public async Task Set_then_get_prints_a_string_value_as_it_is()
    {
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", "greeting", "hello world", "--ring", Ring)).Code);
        var get = await RunAsync("get", "greeting", "--ring", Ring);
        Assert.Equal(ExitCodes.Ok, get.Code);
        Assert.Equal("hello world", get.Output.Trim());
        Assert.Equal(MsgValue.Str("hello world"), await _nodes[1].GetAsync("greeting"));
    }

    [Fact]
    public async Task Json_values_are_stored_as_maps_and_printed_as_json()
    {
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", "cfg", """{"retries": 3, "ratio": 0.5, "tags": ["a", "b"]}""", "--json", "--ring", Ring)).Code);
        var stored = await _nodes[0].GetAsync("cfg");
        Assert.Equal(MsgKind.Map, stored.Kind);
        Assert.True(stored.TryGetValue("retries", out var retries));
        Assert.Equal(3, retries.AsInt64());

        var get = await RunAsync("get", "cfg", "--ring", Ring);
        Assert.Equal("""{"retries":3,"ratio":0.5,"tags":["a","b"]}""", get.Output.Trim());
    }

    [Fact]
    public async Task Get_of_a_missing_key_exits_1()
    {
        var get = await RunAsync("get", "never-set", "--ring", Ring);
        Assert.Equal(ExitCodes.NotFound, get.Code);
        Assert.Contains("has no value", get.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Del_removes_the_key_and_keys_lists_what_the_ring_knows()
    {
        await RunAsync("set", "a", "1", "--ring", Ring);
        await RunAsync("set", "b", "2", "--ring", Ring);

        // A write's notify broadcast reaches the seed after the write is acknowledged; keys lists what the seed knows.
        await WaitAsync(() => _nodes[0].Keys.Count >= 2, "the seed to learn both keys from their notify broadcasts");
        var keys = await RunAsync("keys", "--ring", Ring);
        Assert.Equal(ExitCodes.Ok, keys.Code);
        Assert.Equal(["a", "b"], keys.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        Assert.Equal(ExitCodes.Ok, (await RunAsync("del", "a", "--ring", Ring)).Code);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("get", "a", "--ring", Ring)).Code);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("del", "a", "--ring", Ring)).Code);
    }

    [Theory]
    [InlineData("get")]                                   // no key, no --ring
    [InlineData("get", "k", "--ring", "nonsense")]        // not host:port
    [InlineData("set", "k", "{", "--json", "--ring", "127.0.0.1:1")] // not JSON
    [InlineData("frobnicate")]
    public async Task Bad_usage_exits_2_with_a_message(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.StartsWith("chord:", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("get", "k", "--ring", "127.0.0.1:1", "--timeout", "0")]
    [InlineData("keys", "--ring", "127.0.0.1:1", "--timeout", "-2")]
    [InlineData("ring", "--http", "http://127.0.0.1:1", "--timeout", "3601")]
    public async Task A_timeout_out_of_range_exits_2_naming_the_range(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.Contains($"--timeout {args[^1]} is out of range: give 0 < seconds <= 3600.", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_ring_exits_3()
    {
        var result = await RunAsync("get", "k", "--ring", "127.0.0.1:1", "--timeout", "5");
        Assert.Equal(ExitCodes.RingError, result.Code);
        Assert.Contains("127.0.0.1:1", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_joins_the_ring_serves_and_unjoins_with_its_data_on_stop()
    {
        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        var error = new SynchronizedWriter();
        var run = Task.Run(() => ChordCli.RunAsync(["node", "--listen", "127.0.0.1:0", "--join", Ring], output, error, stop.Token));

        await WaitAsync(() => ListeningOn().IsMatch(output.Text), "the node to print its address");
        var address = ListeningOn().Match(output.Text).Groups[1].Value;
        await WaitAsync(() => output.Text.Contains("joined the ring", StringComparison.Ordinal), "the node to confirm it joined");
        Assert.True(Regex.IsMatch(output.Text, $@"joined the ring through {Regex.Escape(Ring)}: [12] other storing members?, \d+ entries handed to this node so far"), output.Text);
        await WaitAsync(() => _nodes.All(n => n.StoringPeers.Count == 2), "the ring to see the new node storing");

        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(ExitCodes.Ok, (await RunAsync("set", $"k{i}", $"v{i}", "--ring", address)).Code);
        }

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
        Assert.Contains("stopped", output.Text, StringComparison.Ordinal);
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(MsgValue.Str($"v{i}"), await _nodes[0].GetAsync($"k{i}"));
        }
    }

    [Fact]
    public async Task Node_joining_through_a_node_that_does_not_store_says_it_did_not_reach_the_ring()
    {
        // A seed that answers but has not joined (it leeches): there is no ring to join through it.
        await using var leecher = new RingNode(new RingOptions());
        await leecher.StartAsync();
        var seed = leecher.Mesh.Address.ToString();

        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        var run = Task.Run(() => ChordCli.RunAsync(["node", "--listen", "127.0.0.1:0", "--join", seed], output, new SynchronizedWriter(), stop.Token));
        await WaitAsync(() => output.Text.Contains("try: chord set", StringComparison.Ordinal), "the node to print its start-up lines");
        Assert.Contains($"did not reach the ring through {seed}: no storing member was learned", output.Text, StringComparison.Ordinal);
        Assert.Contains("1 other node known, none storing", output.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("joined the ring", output.Text, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
    }

    [Fact]
    public async Task A_lone_node_says_on_stop_that_its_entries_are_lost()
    {
        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        var run = Task.Run(() => ChordCli.RunAsync(["node", "--listen", "127.0.0.1:0"], output, new SynchronizedWriter(), stop.Token));
        await WaitAsync(() => ListeningOn().IsMatch(output.Text), "the node to print its address");
        Assert.Contains("entries in memory only", output.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("joined the ring", output.Text, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", "doomed", "v", "--ring", ListeningOn().Match(output.Text).Groups[1].Value)).Code);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
        Assert.Contains("this is the ring's only storing node, so its 5 entries are lost", output.Text, StringComparison.Ordinal);
        Assert.Contains("--data-dir", output.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("until a node joins", output.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lone_node_with_a_data_directory_keeps_its_entries_for_its_next_start()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"chord-node-{Guid.NewGuid():N}");
        try
        {
            for (var start = 0; start < 2; start++)
            {
                using var stop = new CancellationTokenSource();
                var output = new SynchronizedWriter();
                var run = Task.Run(() => ChordCli.RunAsync(["node", "--listen", "127.0.0.1:0", "--data-dir", directory, "--salt", "kept"], output, new SynchronizedWriter(), stop.Token));
                await WaitAsync(() => ListeningOn().IsMatch(output.Text), "the node to print its address");
                var address = ListeningOn().Match(output.Text).Groups[1].Value;
                if (start == 0)
                {
                    Assert.Equal(ExitCodes.Ok, (await RunAsync("set", "kept", "v", "--ring", address)).Code);
                }
                else
                {
                    var get = await RunAsync("get", "kept", "--ring", address);
                    Assert.Equal("v", get.Output.Trim());
                }

                await stop.CancelAsync();
                Assert.Equal(ExitCodes.Ok, await run);
                Assert.Contains($"stay in {directory} for its next start", output.Text, StringComparison.Ordinal);
            }
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Fact]
    public async Task An_unknown_command_is_one_error_naming_the_commands()
    {
        var result = await RunAsync("frob");
        Assert.Equal(ExitCodes.Usage, result.Code);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("chord: unknown command 'frob'; the commands are node, get, set, del", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_with_another_cluster_secret_is_refused_and_a_short_secret_is_a_usage_error()
    {
        var refused = await RunAsync("get", "greeting", "--ring", Ring, "--cluster-secret", "not-the-rings-secret-at-all", "--timeout", "5");
        Assert.Equal(ExitCodes.RingError, refused.Code);
        Assert.Contains("authentication", refused.Error, StringComparison.Ordinal);

        var shortSecret = await RunAsync("get", "greeting", "--ring", Ring, "--cluster-secret", "short");
        Assert.Equal(ExitCodes.Usage, shortSecret.Code);
        Assert.Contains("at least 16 bytes", shortSecret.Error, StringComparison.Ordinal);

        var node = await RunAsync("node", "--listen", "127.0.0.1:0", "--cluster-secret", "short");
        Assert.Equal(ExitCodes.Usage, node.Code);
        Assert.Contains("at least 16 bytes", node.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_py2p_style_peer_can_store_into_chord_node_only_with_allow_unauthenticated_peers(bool allow)
    {
        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        string[] args = allow ? ["node", "--listen", "127.0.0.1:0", "--allow-unauthenticated-peers"] : ["node", "--listen", "127.0.0.1:0"];
        var run = Task.Run(() => ChordCli.RunAsync(args, output, new SynchronizedWriter(), stop.Token));
        await WaitAsync(() => ListeningOn().IsMatch(output.Text), "the node to print its address");
        var address = ListeningOn().Match(output.Text).Groups[1].Value;
        Assert.Equal(allow, output.Text.Contains("serving unauthenticated (py2p) peers too", StringComparison.Ordinal));

        // A py2p stand-in (a mesh node that never authenticates, as py2p does not) stores a key as py2p's set does:
        // its value at each of the five positions, in py2p's four-packet form.
        await using var py2p = new Chord.Dht.Mesh.MeshNode(new Chord.Dht.Mesh.MeshOptions { Security = Chord.Dht.Mesh.MeshSecurity.Off });
        await py2p.StartAsync();
        const string key = "from-py2p";
        Chord.Dht.Mesh.MeshPeer? peer = null;
        try
        {
            peer = await py2p.ConnectAsync(Chord.Dht.Mesh.PeerAddress.Parse(address));
            foreach (var (position, method) in KeyHashes.All(System.Text.Encoding.UTF8.GetBytes(key)).Select((p, i) => (p, (HashMethod)i)))
            {
                await peer.WhisperAsync((long)SubFlag.Store, MsgValue.BinAscii(method.WireName()), MsgValue.BinAscii(position.ToBase58()), "py2p-value");
            }
        }
        catch (Chord.Dht.Mesh.MeshConnectException) when (!allow)
        {
            // Refused before its handshake completed here: the same outcome, sooner.
        }

        if (allow)
        {
            await Eventually.UntilAsync(async () => (await RunAsync("get", key, "--ring", address)).Output.Trim() == "py2p-value", Eventually.Deadline,
                "the py2p peer's value to be readable through the ring");
            Assert.False(peer!.IsClosed);
        }
        else
        {
            if (peer is not null)
            {
                await peer.Closed.WaitAsync(TimeSpan.FromSeconds(30));
            }

            var get = await RunAsync("get", key, "--ring", address);
            Assert.Equal(ExitCodes.NotFound, get.Code);
        }

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
    }

    [GeneratedRegex(@"listening on (127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ChordCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static async Task WaitAsync(Func<bool> condition, string because)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {because}");
            await Task.Delay(20);
        }
    }
}
