using System.Net;
using Chord.Grains;
using Chord.Grains.Hosting;
using Chord.Silo.Api;
using Chord.Silo.Logging;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OpenTelemetry.Metrics;

namespace Chord.Silo;

/// <summary>
/// The Chord silo host: an Orleans silo (localhost or Redis clustering) running a ring node (<c>AddChord</c>),
/// with the HTTP API in the same process. The program runs one; tests start several in-process.
/// </summary>
public sealed class ChordHost : IAsyncDisposable
{
    private ChordHost(WebApplication app, SiloHostOptions options)
    {
        App = app;
        Options = options;
    }

    /// <summary>The web application: the silo, its ring node and the HTTP API.</summary>
    public WebApplication App { get; }

    /// <summary>The host settings in effect.</summary>
    public SiloHostOptions Options { get; }

    /// <summary>The Prometheus scrape endpoint's path (when <see cref="SiloHostOptions.Metrics"/> is on).</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>The meters exported at <see cref="MetricsPath"/>: every <c>Chord.*</c> meter and Orleans' own.</summary>
    public static readonly IReadOnlyList<string> ExportedMeters = ["Chord.*", "Microsoft.Orleans"];

    /// <summary>Where the HTTP API listens (with the port bound); available once started.</summary>
    public Uri HttpAddress
    {
        get
        {
            var addresses = App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
            var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("The host is not started: it has no HTTP address yet.");
            return new Uri(first.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "[::1]", StringComparison.Ordinal));
        }
    }

    /// <summary>This silo's ring node.</summary>
    public ChordSiloNode RingNode => App.Services.GetRequiredService<ChordSiloNode>();

    /// <summary>The Orleans silo's address.</summary>
    public SiloAddress SiloAddress => App.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;

    /// <summary>
    /// Builds the host from command-line arguments (see <see cref="HostCommandLine.Flags"/>), the environment and
    /// appsettings.json, in that order of precedence.
    /// </summary>
    /// <param name="args">The command line.</param>
    /// <param name="configure">Last changes to the builder (tests add configuration or logging here).</param>
    /// <exception cref="HostConfigurationException">A setting is wrong; the message names it and what is allowed.</exception>
    public static ChordHost Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = HostCommandLine.Translate(args),
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Defaults below appsettings.json: the host's own log lines, and only warnings from the frameworks.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Information",
                ["Logging:LogLevel:Microsoft"] = "Warning",
                ["Logging:LogLevel:Orleans"] = "Warning",
                ["Logging:LogLevel:Polly"] = "Warning",
                ["Logging:LogLevel:Chord.Dht"] = "Warning",
                ["Logging:LogLevel:Chord.Grains.ChordSiloService"] = "Warning",
                // A peer's crash: the connection layer reports every reset and refused reconnect; membership's
                // probe failures (SiloHealthMonitor, one line each) and the silo being declared dead say what matters.
                ["Logging:LogLevel:Orleans.Runtime.Messaging"] = "Error",
                ["Logging:LogLevel:Orleans.Networking"] = "Error",
                ["Logging:LogLevel:Microsoft.AspNetCore.Server.Kestrel"] = "Error",
                ["Logging:Console:FormatterName"] = OneLineConsoleFormatter.Name,
            },
        });
        builder.Logging.AddConsoleFormatter<OneLineConsoleFormatter, Microsoft.Extensions.Logging.Console.ConsoleFormatterOptions>();
        // The membership clock counts from its first reading rather than from boot (see ProcessClock).
        builder.Services.AddKeyedSingleton<TimeProvider>(TimeProviderNames.Membership, new ProcessClock());
        configure?.Invoke(builder);

        HostCommandLine.Validate(builder.Configuration);
        var options = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();

        var httpIp = HostCommandLine.ParseIp(options.HttpHost)!;
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(httpIp, options.HttpPort));
        builder.UseOrleans(silo => ConfigureSilo(silo, builder.Configuration, options));
        builder.Services.AddChordApi();
        var meterScope = new MeterScope();
        if (options.Metrics)
        {
            AddMetrics(builder.Services, meterScope);
        }

        var app = builder.Build();
        meterScope.Factory = app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        CheckRingOptions(app.Services);
        app.MapChordApi();
        if (options.Metrics)
        {
            _ = app.Services.GetRequiredService<Health.MembershipObserver>(); // its gauges exist from the start
            app.MapPrometheusScrapingEndpoint(MetricsPath);
        }
        return new ChordHost(app, options);
    }

    /// <summary>Starts the silo (it joins the cluster and its ring node joins the ring) and the HTTP API.</summary>
    /// <exception cref="HostConfigurationException">A ring setting is wrong (ChordOptions validation), or Orleans refused its configuration.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await App.StartAsync(cancellationToken);
        }
        catch (OptionsValidationException e)
        {
            throw new HostConfigurationException([.. e.Failures.Select(NameFlag)]);
        }
        catch (OrleansConfigurationException e)
        {
            // Orleans' validators run as the silo starts; MembershipSettings checks their membership rules before
            // that, so this is a rule it does not repeat.
            throw new HostConfigurationException(MembershipSettings.Describe(e));
        }
    }

    /// <summary>Stops the HTTP API and the silo; the ring node unjoins first, handing its entries off.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => App.DisposeAsync();

    /// <summary>
    /// The program: builds and starts a host, prints where it listens and what to try, and runs until Ctrl+C or
    /// SIGTERM. Returns 0 after a clean stop, 2 for a bad setting, 1 when the silo could not start. With
    /// <c>--probe URL</c> it starts no silo and runs <see cref="HostProbe"/> instead.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Any(a => a is "--help" or "-h" or "-?"))
        {
            await output.WriteLineAsync(HostCommandLine.Usage);
            return 0;
        }

        if (HostCommandLine.TryGetProbe(args, out var probe, out var problem))
        {
            if (probe is null)
            {
                await error.WriteLineAsync($"Chord.Silo: {problem}");
                return 2;
            }

            return await HostProbe.RunAsync(probe, output, error, cancellationToken);
        }

        ChordHost host;
        try
        {
            host = Create(args);
        }
        catch (HostConfigurationException e)
        {
            await WriteConfigurationErrorAsync(error, e);
            return 2;
        }

        await using (host)
        {
            // Orleans takes seconds to start (longer on a loaded machine, or with Redis slow to answer): say so at once.
            await output.WriteLineAsync(host.StartingLine());
            try
            {
                await host.StartAsync(cancellationToken);
            }
            catch (HostConfigurationException e)
            {
                await WriteConfigurationErrorAsync(error, e);
                return 2;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await error.WriteLineAsync($"Chord.Silo: the silo could not start: {e.GetBaseException().Message}");
                return 1;
            }

            await host.WriteBannerAsync(output);
            await host.App.WaitForShutdownAsync(cancellationToken);
            await output.WriteLineAsync("stopped.");
            return 0;
        }
    }

    private static async Task WriteConfigurationErrorAsync(TextWriter error, HostConfigurationException e)
    {
        foreach (var line in e.Message.Split(Environment.NewLine))
        {
            await error.WriteLineAsync($"Chord.Silo: {line}");
        }

        await error.WriteLineAsync("Run with --help for the flags.");
    }

    /// <summary>How this silo finds the others, as the start-up line and the banner say it.</summary>
    private string Clustering => Options.Clustering == "redis"
        ? $"redis clustering through {WithoutPassword(Options.Redis)}"
        : Options.Primary is { Length: > 0 } primary ? $"localhost clustering, primary silo {primary}" : "localhost clustering, this is the primary silo";

    /// <summary>A Redis connection string as the console may show it: without its password.</summary>
    internal static string WithoutPassword(string connection)
    {
        try
        {
            return StackExchange.Redis.ConfigurationOptions.Parse(connection).ToString(includePassword: false);
        }
        catch (ArgumentException)
        {
            return "(the configured Redis connection string)";
        }
    }

    /// <summary>The line printed before the silo starts: what it was asked to do, before Orleans has bound anything.</summary>
    internal string StartingLine()
    {
        static string Port(int port) => port == 0 ? "0 (any free port)" : port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var ringPort = App.Services.GetRequiredService<IOptions<ChordOptions>>().Value.RingPort;
        return $"Chord silo starting in cluster '{Options.ClusterId}' ({Clustering}; silo port {Options.SiloPort}, gateway port {Options.GatewayPort}, "
            + $"HTTP API {Options.HttpHost}:{Port(Options.HttpPort)}, ring port {Port(ringPort)})...";
    }

    private async Task WriteBannerAsync(TextWriter output)
    {
        var node = RingNode.Node;
        var http = HttpAddress.ToString().TrimEnd('/');
        await output.WriteLineAsync($"Chord silo {SiloAddress} in cluster '{Options.ClusterId}' ({Clustering})");
        await output.WriteLineAsync($"  HTTP API    {http}");
        await output.WriteLineAsync($"  ring node   {node.Id} on {node.Mesh.Address} ({(node.IsLeeching ? "leeching" : "storing")}, {node.StoringPeers.Count} other storing members)");
        await output.WriteLineAsync($"  silo port   {Options.SiloPort}, gateway port {Options.GatewayPort}");
        await output.WriteLineAsync("try:");
        await output.WriteLineAsync($"  curl -X PUT {http}/kv/greeting -H 'Content-Type: application/json' -d '\"hello\"'");
        await output.WriteLineAsync($"  curl {http}/kv/greeting");
        await output.WriteLineAsync($"  dotnet run --project src/Chord.Cli -- ring --http {http}");
        if (Options.Clustering != "redis")
        {
            await output.WriteLineAsync("note: localhost clustering is for development only: the first silo holds the cluster's membership, so it is a");
            await output.WriteLineAsync("  single point of failure; for several silos in earnest use --clustering redis --redis HOST:PORT (README.md,");
            await output.WriteLineAsync("  'Several silos: Redis clustering'). For development:");
            await output.WriteLineAsync($"  another silo: dotnet run --project src/Chord.Silo -- --silo-port {Options.SiloPort + 1} --gateway-port {Options.GatewayPort + 1} --http-port {(Options.HttpPort == 0 ? 0 : Options.HttpPort + 1)} --primary 127.0.0.1:{(Options.Primary is { Length: > 0 } p ? p.Split(':')[^1] : Options.SiloPort.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
        }

        await output.WriteLineAsync("Ctrl+C stops the silo (its ring node hands its entries to the others first).");
    }

    private static void AddMetrics(IServiceCollection services, MeterScope scope) =>
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter([.. ExportedMeters])
            // Orleans' meters and the host's own come from this host's IMeterFactory; with several hosts in one
            // process (the tests) another host's meter of the same name would otherwise be exported here too.
            .AddView(instrument => instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, scope.Factory) ? null : MetricStreamConfiguration.Drop)
            // Hops per lookup are small integers (about half log2 N): buckets that tell 1 from 2 from 3.
            .AddView("chord.ring.lookup_hops", new ExplicitBucketHistogramConfiguration { Boundaries = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32] })
            // Every scrape reads the meters now (the exporter's default keeps a response for 300 ms).
            .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));

    /// <summary>Where Orleans' ClusterMembershipOptions may be overridden (<c>--Silo:Membership:ProbeTimeout=00:00:05</c>).</summary>
    public const string MembershipSection = "Silo:Membership";

    /// <summary>
    /// The host's failure detection, faster than Orleans' defaults (5 s probe timeout): a silo that stops answering
    /// is declared dead after 3 missed probes and 2 votes, and its keys are served again by the others (the failover
    /// test measures it). 2 s is the initial probe timeout, not a fixed period: Orleans adapts each monitored
    /// silo's timeout to its answers within MinProbeTimeout and MaxProbeTimeout (half and 4 × ProbeTimeout: 1 to
    /// 8 s) and starts the next probe one such timeout after the last one started, so on a loaded machine the bound
    /// is (3 + 1) × 8 s; the failover test's deadline is computed from these values. Dead entries leave the membership table after
    /// a day (Orleans: a week), checked hourly, so a Redis table does not grow with every restart.
    /// </summary>
    internal static void TuneMembership(ClusterMembershipOptions membership)
    {
        membership.ProbeTimeout = TimeSpan.FromSeconds(2);
        membership.NumMissedProbesLimit = 3;
        membership.NumVotesForDeathDeclaration = 2;
        membership.DefunctSiloExpiration = TimeSpan.FromDays(1);
        membership.DefunctSiloCleanupPeriod = TimeSpan.FromHours(1);
    }

    private static void ConfigureSilo(ISiloBuilder silo, IConfiguration configuration, SiloHostOptions options)
    {
        if (options.Clustering == "redis")
        {
            silo.UseRedisClustering(redis => redis.ConfigurationOptions = StackExchange.Redis.ConfigurationOptions.Parse(options.Redis));
            silo.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = options.ClusterId;
                cluster.ServiceId = options.ServiceId;
            });
            silo.ConfigureEndpoints(HostCommandLine.ParseIp(options.Address)!, options.SiloPort, options.GatewayPort);
        }
        else
        {
            IPEndPoint? primary = null;
            if (options.Primary is { Length: > 0 } text && HostCommandLine.TryParseEndpoint(text, out var endpoint))
            {
                primary = endpoint;
            }

            silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, primary, options.ServiceId, options.ClusterId);
        }

        silo.Configure<ClusterMembershipOptions>(membership =>
        {
            TuneMembership(membership);
            configuration.GetSection(MembershipSection).Bind(membership);
        });
        silo.AddChord(chord => chord.Bind(configuration.GetSection(ChordOptions.SectionName)));
    }

    /// <summary>Binds and validates ChordOptions now, so a bad ring setting is reported before anything starts.</summary>
    private static void CheckRingOptions(IServiceProvider services)
    {
        try
        {
            _ = services.GetRequiredService<IOptions<ChordOptions>>().Value;
        }
        catch (OptionsValidationException e)
        {
            throw new HostConfigurationException([.. e.Failures.Select(NameFlag)]);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase))
        {
            // The binder's "Failed to convert configuration value at 'Chord:RequestTimeout' to type ...".
            throw new HostConfigurationException($"{e.Message} Allowed: see ChordOptions (times as hh:mm:ss, numbers as digits).");
        }
    }

    /// <summary>"Chord:RingPort is ..." with the flag that sets it, where there is one.</summary>
    private static string NameFlag(string failure)
    {
        foreach (var (flag, key, _) in HostCommandLine.Flags)
        {
            if (failure.StartsWith(key + " ", StringComparison.Ordinal))
            {
                return $"{flag} ({key}){failure[key.Length..]}";
            }
        }

        return failure;
    }

    /// <summary>This host's meter factory, known once the app is built (before the meter provider starts).</summary>
    private sealed class MeterScope
    {
        public object? Factory { get; set; }
    }
}
