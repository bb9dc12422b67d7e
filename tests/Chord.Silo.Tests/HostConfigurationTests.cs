using Microsoft.Extensions.DependencyInjection;
using Chord.Grains.Hosting;
using Microsoft.Extensions.Options;

namespace Chord.Silo.Tests;

/// <summary>The host's flags, their precedence over the environment and appsettings.json, and bad values (exit 2, nothing started).</summary>
public sealed class HostConfigurationTests
{
    [Theory]
    [InlineData("--silo-port abc", "--silo-port (Silo:SiloPort) is 'abc'", "1 to 65535")]
    [InlineData("--gateway-port 70000", "--gateway-port (Silo:GatewayPort) is '70000'", "1 to 65535")]
    [InlineData("--http-port -1", "--http-port", "0 to 65535")]
    [InlineData("--ring-port x", "--ring-port (Chord:RingPort) is 'x'", "0 to 65535")]
    [InlineData("--primary nowhere", "--primary (Silo:Primary) is 'nowhere'", "host:port")]
    [InlineData("--seed 127.0.0.1", "--seed (Chord:Seeds:0) is '127.0.0.1'", "host:port")]
    [InlineData("--clustering zookeeper", "--clustering (Silo:Clustering) is 'zookeeper'", "localhost")]
    [InlineData("--clustering redis --primary 127.0.0.1:11111", "--primary", "localhost clustering only")]
    [InlineData("--address 10.1.2.3", "--address", "--clustering redis")]
    [InlineData("--http-host somewhere", "--http-host", "an IP address")]
    [InlineData("--cluster-id", "--cluster-id needs a value", "NAME")]
    [InlineData("--frobnicate 1", "Unknown argument '--frobnicate'", "--silo-port")]
    [InlineData("--Chord:WriteQuorum=9", "Chord:WriteQuorum is '9'", "1 to 5")]
    [InlineData("--Chord:RequestTimeout=soon", "Chord:RequestTimeout", "hh:mm:ss")]
    [InlineData("--Silo:Metrics=maybe", "Silo:Metrics is 'maybe'", "true")]
    [InlineData("--Chord:ClusterSecret=short", "Chord:ClusterSecret is '(5 bytes, not shown)'", "at least 16 bytes")]
    [InlineData("--Chord:AllowUnauthenticatedPeers=maybe", "Chord:AllowUnauthenticatedPeers is 'maybe'", "true or false")]
    [InlineData("--Chord:WriteQuorom=4", "Chord:WriteQuorom is not a ring setting", "ChordOptions: AllowUnauthenticatedPeers, ")]
    [InlineData("--Chord:KeepPlacementCopies=sometimes", "Chord:KeepPlacementCopies is 'sometimes'", "true or false")]
    [InlineData("--Chord:Seeds=127.0.0.1:4444", "Chord:Seeds is '127.0.0.1:4444', but it is a list", "Chord:Seeds:0, Chord:Seeds:1")]
    [InlineData("--Chord:RingPort:Value=4444", "Chord:RingPort:Value is not a ring setting", "Chord:RingPort=value")]
    [InlineData("--Chord:HandshakeTimeout=00:10:00", "Chord:HandshakeTimeout is '00:10:00'", "a positive time of at most 00:05:00")]
    [InlineData("--Chord:TlsCertificatePath=/nonexistent/ring.pfx --Chord:AllowUnauthenticatedPeers=true",
        "Chord:AllowUnauthenticatedPeers is 'true' while Chord:TlsCertificatePath is set ('/nonexistent/ring.pfx')", "allowed: one of the two")]
    [InlineData("--Silo:Membership:ProbeTimeout=soon", "Silo:Membership:ProbeTimeout is 'soon'", "hh:mm:ss")]
    [InlineData("--Silo:Membership:NumMissedProbesLimit=three", "Silo:Membership:NumMissedProbesLimit is 'three'", "a whole number")]
    [InlineData("--Silo:Membership:LivenessEnabled=perhaps", "Silo:Membership:LivenessEnabled is 'perhaps'", "true or false")]
    [InlineData("--Silo:Membership:ProbeTimout=00:00:05", "Silo:Membership:ProbeTimout is not a membership setting", "ProbeTimeout, ")]
    [InlineData("--Silo:Membership:ProbeTimeout=-00:00:01", "Silo:Membership:ProbeTimeout is '-00:00:01'", "greater than 0")]
    [InlineData("--Silo:Membership:NumVotesForDeathDeclaration=0", "Silo:Membership:NumVotesForDeathDeclaration is '0'", "from 1 to NumProbedSilos (10)")]
    [InlineData("--Silo:Membership:MaxProbeTimeout=00:00:01", "Silo:Membership:MaxProbeTimeout is '00:00:01'", "MinProbeTimeout <= ProbeTimeout <= MaxProbeTimeout")]
    public async Task A_bad_setting_exits_2_naming_it_and_what_is_allowed(string args, string named, string allowed)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ChordHost.RunAsync(args.Split(' '), output, error);
        Assert.Equal(2, code);
        Assert.Contains(named, error.ToString(), StringComparison.Ordinal);
        Assert.Contains(allowed, error.ToString(), StringComparison.Ordinal);
        Assert.Empty(output.ToString());
    }

    [Fact]
    public async Task A_TLS_certificate_that_does_not_load_exits_2_naming_its_path_and_the_cause()
    {
        // It exists (File.Exists alone let it through, and the ring node failed later with exit 1 and no path).
        var path = Path.Combine(Path.GetTempPath(), $"chord-garbage-{Guid.NewGuid():N}.pfx");
        await File.WriteAllBytesAsync(path, [.. Enumerable.Range(0, 512).Select(i => (byte)(i * 37))]);
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await ChordHost.RunAsync(["--http-port", "0", $"--Chord:TlsCertificatePath={path}"], output, error);

            Assert.Equal(2, code);
            Assert.Matches($"Chord.Silo: Chord:TlsCertificatePath is '{System.Text.RegularExpressions.Regex.Escape(path)}', which could not be loaded as the cluster certificate: [^;]*[A-Za-z][^;]*; allowed: a PKCS#12", error.ToString());
            Assert.Empty(output.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Failure_detection_is_tuned_and_can_be_overridden()
    {
        await using (var tuned = ChordHost.Create([], SiloHosts.QuietLogging))
        {
            var membership = tuned.App.Services.GetRequiredService<IOptions<Orleans.Configuration.ClusterMembershipOptions>>().Value;
            Assert.Equal(TimeSpan.FromSeconds(2), membership.ProbeTimeout);
            Assert.Equal(3, membership.NumMissedProbesLimit);
            Assert.Equal(TimeSpan.FromDays(1), membership.DefunctSiloExpiration);
        }

        await using var overridden = ChordHost.Create(
            ["--Silo:Membership:ProbeTimeout=00:00:07", "--Silo:Membership:NumVotesForDeathDeclaration=1", "--Silo:Membership:maxdefunctsiloentries="],
            SiloHosts.QuietLogging);
        var options = overridden.App.Services.GetRequiredService<IOptions<Orleans.Configuration.ClusterMembershipOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(7), options.ProbeTimeout);
        Assert.Equal(1, options.NumVotesForDeathDeclaration);
        Assert.Null(options.MaxDefunctSiloEntries); // a name in any case; empty is "no limit" for a nullable setting
    }

    [Fact]
    public async Task A_membership_value_only_Orleans_checks_at_start_exits_2_naming_the_setting()
    {
        // Orleans' validator refuses it as the silo starts (a rule the host does not check first): the same exit
        // code and a message naming the setting, not "could not start".
        var output = new StringWriter();
        var error = new StringWriter();
        string[] args =
        [
            "--silo-port", SiloHosts.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--gateway-port", SiloHosts.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--http-port", "0", "--ring-port", "0", "--cluster-id", $"refused-{Guid.NewGuid():N}",
            "--Silo:Membership:TableRefreshTimeout=10000000.00:00:00",
        ];
        Assert.Equal(2, await ChordHost.RunAsync(args, output, error));
        Assert.Contains("Silo:Membership:TableRefreshTimeout (10000000.00:00:00) must not exceed", error.ToString(), StringComparison.Ordinal);
        // Only the start-up line, printed before Orleans refused: the settings checked before it were fine.
        var line = Assert.Single(output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("Chord silo starting in cluster 'refused-", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_host_says_at_once_that_it_is_starting_and_with_which_settings()
    {
        // Orleans refuses this membership value as the silo starts, so nothing after the start-up line is printed:
        // the line comes before the (slow) start, not with the banner.
        var output = new StringWriter();
        var siloPort = SiloHosts.FreePort();
        var gatewayPort = SiloHosts.FreePort();
        string[] args =
        [
            "--silo-port", siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--gateway-port", gatewayPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--http-port", "0", "--ring-port", "4999", "--cluster-id", "starting-line",
            "--Silo:Membership:TableRefreshTimeout=10000000.00:00:00",
        ];
        Assert.Equal(2, await ChordHost.RunAsync(args, output, new StringWriter()));

        Assert.Equal(
            $"Chord silo starting in cluster 'starting-line' (localhost clustering, this is the primary silo; silo port {siloPort}, gateway port {gatewayPort}, "
            + "HTTP API 127.0.0.1:0 (any free port), ring port 4999)..." + Environment.NewLine,
            output.ToString());
    }

    [Theory]
    [InlineData("127.0.0.1:6379,password=hunter2", "127.0.0.1:6379")]
    [InlineData("redis.internal:6380,password=hunter2,ssl=true,abortConnect=false", "redis.internal:6380")]
    public void The_redis_connection_the_console_shows_has_no_password(string connection, string shown)
    {
        var text = ChordHost.WithoutPassword(connection);
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
        Assert.StartsWith(shown, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_banner_of_a_localhost_silo_says_it_is_for_development_and_points_at_redis_clustering()
    {
        var output = new SynchronizedWriter();
        using var stop = new CancellationTokenSource();
        string[] args =
        [
            "--silo-port", SiloHosts.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--gateway-port", SiloHosts.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--http-port", "0", "--ring-port", "0", "--cluster-id", $"banner-{Guid.NewGuid():N}",
        ];
        var run = Task.Run(() => ChordHost.RunAsync(args, output, new SynchronizedWriter(), stop.Token));
        await Eventually.UntilAsync(() => run.IsCompleted || output.Text.Contains("Ctrl+C stops the silo", StringComparison.Ordinal), TimeSpan.FromSeconds(90), "the silo to print its banner");
        await stop.CancelAsync();
        Assert.Equal(0, await run);

        var banner = output.Text;
        var lines = banner.Split(Environment.NewLine);
        Assert.StartsWith("Chord silo starting in cluster 'banner-", lines[0], StringComparison.Ordinal); // first, then the banner
        Assert.Matches(@"^Chord silo \S+ in cluster 'banner-", lines[1]);
        Assert.Contains("localhost clustering is for development only", banner, StringComparison.Ordinal);
        Assert.Contains("single point of failure", banner, StringComparison.Ordinal);
        Assert.Contains("--clustering redis", banner, StringComparison.Ordinal);
        Assert.Contains("another silo:", banner, StringComparison.Ordinal);
        Assert.True(banner.IndexOf("--clustering redis", StringComparison.Ordinal) < banner.IndexOf("--primary", StringComparison.Ordinal), banner);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once()
    {
        var error = new StringWriter();
        Assert.Equal(2, await ChordHost.RunAsync(["--silo-port", "0", "--clustering", "etcd"], new StringWriter(), error));
        Assert.Contains("--silo-port", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("--clustering", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_flag_and_its_configuration_key()
    {
        var output = new StringWriter();
        Assert.Equal(0, await ChordHost.RunAsync(["--help"], output, new StringWriter()));
        foreach (var flag in new[] { "--silo-port", "--gateway-port", "--ring-port", "--http-port", "--primary", "--seed", "--cluster-id", "--data-dir", "--clustering", "--redis" })
        {
            Assert.Contains(flag, output.ToString(), StringComparison.Ordinal);
        }

        Assert.Contains("Silo:SiloPort", output.ToString(), StringComparison.Ordinal);
        // and points at the ring node's own settings and the host's others.
        foreach (var setting in new[] { "--Chord:Name=value", "WriteQuorum", "RequestTimeout", "--Silo:Metrics=false", "--Silo:Membership:Name=value", "README.md", "--probe URL" })
        {
            Assert.Contains(setting, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Help_lists_exactly_the_ring_settings_the_host_binds()
    {
        // The names under "They are:", one group a line ("  ring: A, B (note), C"); a name the help gives that
        // ChordOptions lacks would be ignored at start (the host refuses it now), and one it leaves out is undocumented.
        var output = new StringWriter();
        Assert.Equal(0, await ChordHost.RunAsync(["--help"], output, new StringWriter()));
        var help = output.ToString();
        var start = help.IndexOf("(ChordOptions)", StringComparison.Ordinal);
        var end = help.IndexOf("The host's:", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, help);
        var listed = help[start..end].Split('\n')
            .Where(line => line.StartsWith("  ", StringComparison.Ordinal))
            .Select(line => System.Text.RegularExpressions.Regex.Replace(line, @"\([^)]*\)", string.Empty))
            .Select(line => line.Contains(':', StringComparison.Ordinal) ? line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..] : line)
            .SelectMany(line => line.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();

        var bound = typeof(ChordOptions).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
            .Where(p => p.SetMethod is { IsPublic: true })
            .Select(p => p.Name)
            .ToList();
        Assert.Empty(listed.Except(bound, StringComparer.Ordinal));
        Assert.Empty(bound.Except(listed, StringComparer.Ordinal));
        Assert.Equal(listed.Count, listed.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void The_readme_limits_table_names_real_ring_settings_with_their_defaults()
    {
        var readme = File.ReadAllText(Path.Combine(MetricsTests.RepositoryRoot(), "README.md"));
        var rows = System.Text.RegularExpressions.Regex.Matches(readme, @"^\| `Chord:(\w+)` \| ([^|]+) \|", System.Text.RegularExpressions.RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.Trim(), StringComparer.Ordinal);
        string[] limits =
        [
            nameof(ChordOptions.MaxConnections), nameof(ChordOptions.MaxConnectionsPerAddress), nameof(ChordOptions.MaxPreAuthFrameLength),
            nameof(ChordOptions.MaxPreAuthBytes), nameof(ChordOptions.MaxUnauthenticatedFrameLength), nameof(ChordOptions.HandshakeTimeout),
            nameof(ChordOptions.MaxFrameLength), nameof(ChordOptions.TlsCertificatePath), nameof(ChordOptions.TlsCertificatePassword),
        ];
        Assert.Empty(limits.Except(rows.Keys, StringComparer.Ordinal));

        var defaults = new ChordOptions();
        foreach (var (name, documented) in rows)
        {
            var property = typeof(ChordOptions).GetProperty(name);
            Assert.True(property is not null, $"README.md's table names Chord:{name}, which is not a ChordOptions setting");
            var value = property.GetValue(defaults);
            var expected = value is null ? "unset" : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!;
            Assert.True(documented.Split(' ')[0].TrimEnd(':') == expected, // "1024", "4096 (4 KiB)", "00:00:10", "unset: plaintext"
                $"README.md gives Chord:{name} the default '{documented}'; ChordOptions' default is {expected}");
        }
    }

    [Fact]
    public async Task Ring_settings_bind_in_any_case_and_KeepPlacementCopies_reaches_the_ring_node()
    {
        await using (var host = ChordHost.Create(["--http-port", "0", "--chord:writequorum=4", "--CHORD:READQUORUM=2"], SiloHosts.QuietLogging))
        {
            var chord = host.App.Services.GetRequiredService<IOptions<ChordOptions>>().Value;
            Assert.Equal(4, chord.WriteQuorum);
            Assert.Equal(2, chord.ReadQuorum);
            Assert.True(chord.KeepPlacementCopies); // the default
        }

        await using var hosts = await SiloHosts.StartAsync(1, "--Chord:KeepPlacementCopies=false");
        Assert.False(hosts[0].RingNode.Node.Options.KeepPlacementCopies);
    }

    [Fact]
    public async Task Flags_bind_to_the_host_and_ring_options()
    {
        await using var host = ChordHost.Create(
            ["--silo-port", "12001", "--gateway-port=31001", "--http-port", "0", "--ring-port", "4555", "--primary", "localhost:12000",
             "--seed", "127.0.0.1:4444", "--seed", "py2p.example:4445", "--cluster-id", "blue", "--data-dir", "/tmp/chord-a"],
            SiloHosts.QuietLogging);
        Assert.Equal(12001, host.Options.SiloPort);
        Assert.Equal(31001, host.Options.GatewayPort);
        Assert.Equal(0, host.Options.HttpPort);
        Assert.Equal("localhost:12000", host.Options.Primary);
        Assert.Equal("blue", host.Options.ClusterId);
        var chord = host.App.Services.GetRequiredService<IOptions<ChordOptions>>().Value;
        Assert.Equal(4555, chord.RingPort);
        Assert.Equal(["127.0.0.1:4444", "py2p.example:4445"], chord.Seeds);
        Assert.Equal("/tmp/chord-a", chord.DataDirectory);
        Assert.Null(chord.ClusterSecret);            // no setting: the development secret, with a warning at start
        Assert.False(chord.AllowUnauthenticatedPeers); // authenticated peers only by default
    }

    [Fact]
    public async Task The_cluster_secret_and_the_py2p_opt_in_bind_from_configuration()
    {
        await using var host = ChordHost.Create(
            ["--http-port", "0", "--Chord:ClusterSecret=a-secret-of-at-least-16-bytes", "--Chord:AllowUnauthenticatedPeers=true"],
            SiloHosts.QuietLogging);
        var chord = host.App.Services.GetRequiredService<IOptions<ChordOptions>>().Value;
        Assert.Equal("a-secret-of-at-least-16-bytes", chord.ClusterSecret);
        Assert.True(chord.AllowUnauthenticatedPeers);
    }

    [Fact]
    public async Task The_command_line_wins_over_the_environment_which_wins_over_appsettings()
    {
        // Every other host in these tests passes --cluster-id and --gateway-port, so these variables reach only this one.
        Environment.SetEnvironmentVariable("Silo__ClusterId", "from-environment");
        Environment.SetEnvironmentVariable("Silo__GatewayPort", "31999");
        try
        {
            await using var host = ChordHost.Create(["--cluster-id", "from-flag", "--http-port", "0"], SiloHosts.QuietLogging);
            Assert.Equal("from-flag", host.Options.ClusterId);
            Assert.Equal(31999, host.Options.GatewayPort);   // appsettings.json says 30000
            Assert.Equal(11111, host.Options.SiloPort);      // appsettings.json
        }
        finally
        {
            Environment.SetEnvironmentVariable("Silo__ClusterId", null);
            Environment.SetEnvironmentVariable("Silo__GatewayPort", null);
        }
    }
}
