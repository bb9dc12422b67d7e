using System.Globalization;
using System.Net;
using System.Reflection;
using Chord.Grains.Hosting;

namespace Chord.Silo;

/// <summary>
/// The host's flags, translated into configuration keys so that one model (command line over environment over
/// appsettings.json) holds every setting, and the checks that give each bad value a message naming its flag.
/// </summary>
internal static class HostCommandLine
{
    /// <summary>Each flag, its configuration key, and what it takes.</summary>
    public static readonly IReadOnlyList<(string Flag, string Key, string Help)> Flags =
    [
        ("--silo-port", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.SiloPort)}", "PORT   the port silos talk to each other on (default 11111)"),
        ("--gateway-port", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.GatewayPort)}", "PORT   the port Orleans clients connect to (default 30000)"),
        ("--ring-port", $"{ChordOptions.SectionName}:{nameof(ChordOptions.RingPort)}", "PORT   the ring node's TCP port, for py2p nodes and chord clients (default 0: any free port)"),
        ("--http-port", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.HttpPort)}", "PORT   the HTTP API's port (default 8080; 0: any free port)"),
        ("--http-host", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.HttpHost)}", "IP     the address the HTTP API listens on (default 127.0.0.1)"),
        ("--address", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.Address)}", "IP     the address the silo and its ring node listen on and advertise (redis clustering; default 127.0.0.1)"),
        ("--primary", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.Primary)}", "HOST:PORT  the first silo's silo port, for several silos on one machine (localhost clustering)"),
        ("--seed", $"{ChordOptions.SectionName}:{nameof(ChordOptions.Seeds)}", "HOST:PORT  an extra ring node to connect to (a py2p node, a chord node); repeatable"),
        ("--cluster-id", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.ClusterId)}", "NAME   the Orleans cluster id (default chord)"),
        ("--data-dir", $"{ChordOptions.SectionName}:{nameof(ChordOptions.DataDirectory)}", "DIR    keep the ring node's entries in this directory (default: in memory); one per silo"),
        ("--clustering", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.Clustering)}", "localhost|redis  how silos find each other (default localhost)"),
        ("--redis", $"{SiloHostOptions.SectionName}:{nameof(SiloHostOptions.Redis)}", "HOST:PORT  the Redis server for --clustering redis (default 127.0.0.1:6379)"),
    ];

    /// <summary>The usage text.</summary>
    public static string Usage => "usage: Chord.Silo [flags]   (each flag may also be set as an environment variable or in appsettings.json,"
        + Environment.NewLine + "       under the configuration key shown; any other key may be given as --Section:Key=value)"
        + Environment.NewLine + Environment.NewLine
        + string.Join(Environment.NewLine, Flags.Select(f => $"  {f.Flag,-15} {f.Help}{Environment.NewLine}  {string.Empty,-15} ({f.Key})"))
        + Environment.NewLine + Environment.NewLine
        + "The ring node's own settings (ChordOptions) are --Chord:Name=value (environment: Chord__Name=value); any other name under" + Environment.NewLine
        + "Chord: is refused. They are:" + Environment.NewLine
        + "  ring:      WriteQuorum, ReadQuorum (of 5 positions, default 3), RequestTimeout, ReadHedgeAfter, JoinTimeout," + Environment.NewLine
        + "             KeepPlacementCopies (default true; the same on every silo)" + Environment.NewLine
        + "  network:   RingPort (--ring-port), ListenHost, OutwardAddress, Seeds (--seed), Subnet, Compression, DataDirectory (--data-dir)," + Environment.NewLine
        + "             NodeIdSalt (with a fixed RingPort: the same ring id on every start)" + Environment.NewLine
        + "  security:  ClusterSecret, AllowUnauthenticatedPeers, TlsCertificatePath, TlsCertificatePassword (give secrets by environment)" + Environment.NewLine
        + "  limits:    MaxConnections, MaxConnectionsPerAddress, MaxFrameLength, MaxPreAuthFrameLength, MaxPreAuthBytes," + Environment.NewLine
        + "             MaxUnauthenticatedFrameLength, HandshakeTimeout" + Environment.NewLine
        + "The host's: --Silo:Metrics=false (no /metrics), --Silo:Membership:Name=value (Orleans' ClusterMembershipOptions, e.g." + Environment.NewLine
        + "ProbeTimeout=00:00:05). README.md, 'Configuring the silo host', describes each; a bad value names itself and what is allowed."
        + Environment.NewLine + Environment.NewLine
        + $"usage: Chord.Silo {ProbeFlag} URL   starts no silo: GETs URL (e.g. http://127.0.0.1:8080/health/ready), prints one line and" + Environment.NewLine
        + "       exits 0 when it answers 200, 1 otherwise (a container health check without curl or wget).";

    /// <summary>The flag that runs the health probe (<see cref="HostProbe"/>) instead of a silo.</summary>
    public const string ProbeFlag = "--probe";

    /// <summary>
    /// Whether the command line asks for the probe: <c>--probe URL</c> or <c>--probe=URL</c>, alone. Returns false
    /// when it does not mention --probe; true with the URL, or with null and <paramref name="problem"/> when the
    /// URL is missing or not an absolute http(s) URL, or other arguments come with it.
    /// </summary>
    public static bool TryGetProbe(IReadOnlyList<string> args, out Uri? url, out string? problem)
    {
        url = null;
        problem = null;
        var index = -1;
        for (var i = 0; i < args.Count; i++)
        {
            if (string.Equals(args[i], ProbeFlag, StringComparison.OrdinalIgnoreCase)
                || args[i].StartsWith(ProbeFlag + "=", StringComparison.OrdinalIgnoreCase))
            {
                index = i;
                break;
            }
        }

        if (index < 0)
        {
            return false;
        }

        var inline = args[index].Length > ProbeFlag.Length;
        var text = inline ? args[index][(ProbeFlag.Length + 1)..] : index + 1 < args.Count ? args[index + 1] : null;
        var used = inline ? 1 : 2;
        if (text is null || text.Length == 0)
        {
            problem = $"{ProbeFlag} needs a value: {ProbeFlag} URL, for example {ProbeFlag} http://127.0.0.1:8080/health/ready.";
        }
        else if (!Uri.TryCreate(text, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
        {
            problem = $"{ProbeFlag} is '{text}'; allowed: an absolute http:// or https:// URL, for example http://127.0.0.1:8080/health/ready.";
        }
        else if (args.Count != used)
        {
            problem = $"{ProbeFlag} takes no other arguments (it starts no silo); got: {string.Join(' ', args)}.";
        }
        else
        {
            url = parsed;
        }

        return true;
    }

    /// <summary>
    /// Rewrites the flags as <c>--Section:Key=value</c> arguments (seeds as <c>Chord:Seeds:0</c>, <c>:1</c>, ...).
    /// Arguments that already name a configuration key (<c>--Chord:WriteQuorum=3</c>) pass through.
    /// </summary>
    /// <exception cref="HostConfigurationException">An unknown flag, or a flag without its value.</exception>
    public static string[] Translate(IReadOnlyList<string> args)
    {
        var result = new List<string>();
        var seeds = 0;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            var name = equals > 0 ? arg[..equals] : arg;
            if (name.StartsWith("--", StringComparison.Ordinal) && name.Contains(':', StringComparison.Ordinal))
            {
                result.Add(arg);
                if (equals < 0 && i + 1 < args.Count)
                {
                    result.Add(args[++i]);
                }

                continue;
            }

            var flag = Flags.FirstOrDefault(f => string.Equals(f.Flag, name, StringComparison.OrdinalIgnoreCase));
            if (flag.Flag is null)
            {
                throw new HostConfigurationException(
                    $"Unknown argument '{arg}'. Allowed flags: {string.Join(", ", Flags.Select(f => f.Flag))} (or --Section:Key=value); --help lists them.");
            }

            string value;
            if (equals > 0)
            {
                value = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }
            else
            {
                throw new HostConfigurationException($"{flag.Flag} needs a value: {flag.Flag} {flag.Help.Split("  ")[0].Trim()}.");
            }

            var key = flag.Flag == "--seed" ? $"{flag.Key}:{seeds++}" : flag.Key;
            result.Add($"--{key}={value}");
        }

        return [.. result];
    }

    /// <summary>Checks the raw values (before binding, so a word where a number belongs is named, not a binder error).</summary>
    /// <exception cref="HostConfigurationException">Every problem found.</exception>
    public static void Validate(IConfiguration configuration)
    {
        var problems = new List<string>();
        string Name(string key) => Flags.FirstOrDefault(f => f.Key == key) is { Flag: not null } f ? $"{f.Flag} ({key})" : key;
        void Port(string key, int min)
        {
            if (configuration[key] is { } text && !(int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port >= min && port <= 65535))
            {
                problems.Add($"{Name(key)} is '{text}'; allowed: a port number from {min} to 65535{(min == 0 ? " (0: any free port)" : string.Empty)}.");
            }
        }

        void Endpoint(string key, string what)
        {
            if (configuration[key] is { Length: > 0 } text && !TryParseEndpoint(text, out _))
            {
                problems.Add($"{Name(key)} is '{text}'; allowed: {what} as host:port, an IP address or localhost and a port from 1 to 65535.");
            }
        }

        void Bool(string key)
        {
            if (configuration[key] is { } text && !bool.TryParse(text, out _))
            {
                problems.Add($"{Name(key)} is '{text}'; allowed: true or false.");
            }
        }

        Bool($"{ChordOptions.SectionName}:{nameof(ChordOptions.AllowUnauthenticatedPeers)}");
        Bool($"{ChordOptions.SectionName}:{nameof(ChordOptions.KeepPlacementCopies)}");

        void Ip(string key)
        {
            if (configuration[key] is { } text && ParseIp(text) is null)
            {
                problems.Add($"{Name(key)} is '{text}'; allowed: an IP address (for example 127.0.0.1, or 0.0.0.0 for every interface) or localhost.");
            }
        }

        var silo = SiloHostOptions.SectionName;
        var chord = ChordOptions.SectionName;
        Port($"{silo}:{nameof(SiloHostOptions.SiloPort)}", 1);
        Port($"{silo}:{nameof(SiloHostOptions.GatewayPort)}", 1);
        Port($"{silo}:{nameof(SiloHostOptions.HttpPort)}", 0);
        Port($"{chord}:{nameof(ChordOptions.RingPort)}", 0);
        Ip($"{silo}:{nameof(SiloHostOptions.HttpHost)}");
        Ip($"{silo}:{nameof(SiloHostOptions.Address)}");
        Endpoint($"{silo}:{nameof(SiloHostOptions.Primary)}", "the first silo's silo endpoint");
        foreach (var seed in configuration.GetSection($"{chord}:{nameof(ChordOptions.Seeds)}").GetChildren())
        {
            if (seed.Value is { } text && !TryParseHostPort(text))
            {
                problems.Add($"--seed ({seed.Path}) is '{text}'; allowed: a ring node as host:port with a port from 1 to 65535.");
            }
        }

        var clusteringKey = $"{silo}:{nameof(SiloHostOptions.Clustering)}";
        var clustering = configuration[clusteringKey] ?? "localhost";
        if (clustering is not ("localhost" or "redis"))
        {
            problems.Add($"{Name(clusteringKey)} is '{clustering}'; allowed: localhost (silos on this machine, through --primary) or redis (silos anywhere, through --redis).");
        }

        var redisKey = $"{silo}:{nameof(SiloHostOptions.Redis)}";
        if (clustering == "redis" && configuration[redisKey] is { } redis && string.IsNullOrWhiteSpace(redis))
        {
            problems.Add($"{Name(redisKey)} is empty; allowed: the Redis server as host:port, for example 127.0.0.1:6379.");
        }

        var addressKey = $"{silo}:{nameof(SiloHostOptions.Address)}";
        if (clustering == "localhost" && configuration[addressKey] is { } address && ParseIp(address) is { } ip && !IPAddress.IsLoopback(ip))
        {
            problems.Add($"{Name(addressKey)} is '{address}', but localhost clustering listens on 127.0.0.1 only; use --clustering redis for silos on several machines.");
        }

        if (clustering == "redis" && configuration[$"{silo}:{nameof(SiloHostOptions.Primary)}"] is { Length: > 0 })
        {
            problems.Add($"{Name($"{silo}:{nameof(SiloHostOptions.Primary)}")} applies to localhost clustering only; with --clustering redis, silos find each other through Redis.");
        }

        var metricsKey = $"{silo}:{nameof(SiloHostOptions.Metrics)}";
        if (configuration[metricsKey] is { } metrics && !bool.TryParse(metrics, out _))
        {
            problems.Add($"{metricsKey} is '{metrics}'; allowed: true (export the meters at /metrics) or false (no /metrics).");
        }

        var clusterIdKey = $"{silo}:{nameof(SiloHostOptions.ClusterId)}";
        if (configuration[clusterIdKey] is { } clusterId && string.IsNullOrWhiteSpace(clusterId))
        {
            problems.Add($"{Name(clusterIdKey)} is empty; allowed: a non-empty name shared by the silos of one cluster.");
        }

        problems.AddRange(UnboundChordKeys(configuration));
        problems.AddRange(MembershipSettings.Problems(configuration));
        if (problems.Count > 0)
        {
            throw new HostConfigurationException(problems);
        }
    }

    /// <summary>The names the host binds under <c>Chord:</c>: <see cref="ChordOptions"/>' public settable properties.</summary>
    internal static readonly IReadOnlyList<PropertyInfo> ChordSettings = [.. typeof(ChordOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.SetMethod is { IsPublic: true })
        .OrderBy(p => p.Name, StringComparer.Ordinal)];

    /// <summary>
    /// The <c>Chord:</c> keys the binder would ignore without a word: a name that is no <see cref="ChordOptions"/>
    /// property (a typo, a setting of another layer), a sub-key of a single value, and a single value given to a list.
    /// Names compare as the binder compares them, ignoring case.
    /// </summary>
    private static IEnumerable<string> UnboundChordKeys(IConfiguration configuration)
    {
        foreach (var child in configuration.GetSection(ChordOptions.SectionName).GetChildren())
        {
            var property = ChordSettings.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            var isList = property is not null && property.PropertyType != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(property.PropertyType);
            var parts = child.GetChildren().ToList();
            if (property is null)
            {
                yield return $"{child.Path} is not a ring setting; allowed: a property of ChordOptions: {string.Join(", ", ChordSettings.Select(p => p.Name))} "
                    + "(--help describes them).";
            }
            else if (!isList && parts.Count > 0)
            {
                yield return $"{parts[0].Path} is not a ring setting: {child.Path} is a single value; allowed: {child.Path}=value.";
            }
            else if (isList && parts.Count == 0 && child.Value is { Length: > 0 } single)
            {
                yield return $"{child.Path} is '{single}', but it is a list; allowed: one key per entry, {child.Path}:0, {child.Path}:1, ..."
                    + (property!.Name == nameof(ChordOptions.Seeds) ? " (or --seed HOST:PORT, repeated)." : ".");
            }
        }
    }

    /// <summary>An IP address, or localhost as 127.0.0.1; null otherwise.</summary>
    public static IPAddress? ParseIp(string text) =>
        string.Equals(text, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.TryParse(text, out var ip) ? ip : null;

    /// <summary>host:port with any host name and a port from 1 to 65535.</summary>
    public static bool TryParseHostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && text[..colon].Trim('[', ']').Length > 0
            && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 1 and <= 65535;
    }

    /// <summary>host:port with an IP address or localhost; [v6]:port for IPv6.</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = null!;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        var host = text[..colon].Trim('[', ']');
        if (ParseIp(host) is not { } ip)
        {
            return false;
        }

        endpoint = new IPEndPoint(ip, port);
        return true;
    }
}
