using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Chord.Silo.Tests;

/// <summary>The Prometheus scrape endpoint /metrics and the Grafana dashboard that reads it.</summary>
[Collection("hosts")]
public sealed partial class MetricsTests(HostsFixture fixture) : IDisposable
{
    private readonly HttpClient _http = fixture.Hosts.Client(0);

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Counters_move_after_a_few_key_operations()
    {
        var before = await Scrape.TakeAsync(_http);
        var key = $"metrics-{Guid.NewGuid():N}";
        for (var i = 0; i < 5; i++)
        {
            using var put = await _http.PutAsync($"kv/{key}", new StringContent(i.ToString(CultureInfo.InvariantCulture), Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
            using var get = await _http.GetAsync($"kv/{key}");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        using (var miss = await _http.GetAsync($"kv/{key}-absent"))
        {
            Assert.Equal(HttpStatusCode.NotFound, miss.StatusCode);
        }

        var after = await Scrape.TakeAsync(_http);
        void Moved(string name, double by, params (string, string)[] labels) =>
            Assert.True(after.Sum(name, labels) >= before.Sum(name, labels) + by,
                $"{name}{{{string.Join(",", labels.Select(l => $"{l.Item1}={l.Item2}"))}}} did not move by {by}: {before.Sum(name, labels)} then {after.Sum(name, labels)}");
        Moved("chord_kv_operations_total", 5, ("operation", "put"), ("outcome", "ok"));
        Moved("chord_kv_operations_total", 5, ("operation", "get"), ("outcome", "ok"));
        Moved("chord_kv_operations_total", 1, ("operation", "get"), ("outcome", "not_found"));
        Moved("chord_kv_duration_seconds_count", 5, ("operation", "put"));
        foreach (var moved in (string[])["chord_ring_requests_total", "chord_mesh_frames_out_total", "chord_mesh_frames_in_total", "chord_ring_lookup_hops_count"])
        {
            Assert.True(after.Sum(moved) > before.Sum(moved), $"{moved} did not move: {before.Sum(moved)} then {after.Sum(moved)}");
        }

        Assert.Contains("orleans_catalog_activations", after.Names);
        Assert.True(after.SumCounters("orleans_") > before.SumCounters("orleans_"), "Orleans' own counters are exported and moved");
        // The membership gauges report the last read of the membership store; a scrape starts one when it is old.
        await Eventually.UntilAsync(async () => (await Scrape.TakeAsync(_http)).Sum("chord_silo_active_silos") == 3, Eventually.Deadline, "the active-silos gauge says 3");
    }

    [Fact]
    public async Task Every_metric_the_dashboard_uses_is_exported()
    {
        // Produce a little of everything a running ring records, then compare the dashboard against the scrape.
        var key = $"dashboard-{Guid.NewGuid():N}";
        using (var put = await _http.PutAsync($"kv/{key}", new StringContent("1", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        }

        using (var get = await _http.GetAsync($"kv/{key}"))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        var scrape = await Scrape.TakeAsync(_http);
        // A counter nobody has added to yet (no crash, no repair in this run) is not in a scrape; it is exported
        // once it moves, under the name the exporter derives from the instrument, checked here against the scrape.
        var declared = DeclaredMetricNames(out var declaredInScrape);
        foreach (var (instrument, name) in declaredInScrape.Where(d => scrape.Names.Any(n => n.StartsWith(d.Instrument.Replace('.', '_').Replace('-', '_'), StringComparison.Ordinal))))
        {
            Assert.True(scrape.Names.Contains(name), $"the instrument {instrument} is exported as {name}, the name the dashboard test derives: scrape has [{string.Join(", ", scrape.Names.Where(n => n.StartsWith(instrument.Replace('.', '_').Replace('-', '_'), StringComparison.Ordinal)).Order(StringComparer.Ordinal))}]");
        }

        var used = DashboardMetricNames();
        Assert.NotEmpty(used);
        var missing = used.Where(n => !scrape.Names.Contains(n) && !declared.Contains(n)).ToList();
        Assert.True(missing.Count == 0, $"the dashboard uses metrics that are not exported: {string.Join(", ", missing)}");
        foreach (var required in (string[])["chord_kv_operations_total", "chord_kv_duration_seconds_bucket", "chord_ring_lookup_hops_bucket", "chord_ring_crash_repairs_total",
                     "chord_silo_suspected_silos", "chord_mesh_frames_in_total", "chord_mesh_bytes_in_bytes_total",
                     "chord_ring_suspected_total", "chord_ring_suspect_skips_total", "chord_ring_refused_inputs_total"])
        {
            Assert.Contains(required, used);
        }

        // The labels the panels select on, group by and name in their legends exist on the series too (a panel
        // grouping by a label the series lack shows one unnamed line, or nothing). instance and job are not the
        // host's: Prometheus adds them to every series it scrapes.
        var problems = new List<string>();
        var uses = DashboardLabelUses();
        Assert.Contains(uses, u => u.Metrics.Contains("chord_kv_operations_total") && u.Labels.Contains("operation") && u.Labels.Contains("outcome"));
        foreach (var (expression, metrics, labels) in uses)
        {
            foreach (var metric in metrics)
            {
                if (scrape.Names.Contains(metric))
                {
                    var exported = scrape.LabelNames(metric);
                    problems.AddRange(labels.Where(l => !exported.Contains(l)).Select(l =>
                        $"{metric} has no label '{l}' (it has [{string.Join(", ", exported.Order(StringComparer.Ordinal))}]) in: {expression}"));
                }
                else if (labels.Count > 0)
                {
                    problems.Add($"{metric} did not appear in this scrape, so its labels [{string.Join(", ", labels)}] cannot be checked; make the test produce it: {expression}");
                }
            }
        }

        Assert.True(problems.Count == 0, $"the dashboard uses labels the exported series do not have:{Environment.NewLine}{string.Join(Environment.NewLine, problems)}");
    }

    [Fact]
    public void Every_chord_metric_is_in_the_readme_metrics_table()
    {
        // The hosts of the fixture run ring nodes and the HTTP API, so every Chord.Dht and Chord.Silo instrument has
        // been published. The hosts use no grain storage: its instruments are published by running their class's
        // initializer (internal to Chord.Grains), which records nothing.
        var storageMetrics = typeof(Chord.Grains.Hosting.ChordOptions).Assembly.GetType("Chord.Grains.Storage.ChordStorageMetrics", throwOnError: true)!;
        System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(storageMetrics.TypeHandle);
        var published = PublishedInstruments().Where(i => i.Meter.Name.StartsWith("Chord.", StringComparison.Ordinal)).Select(i => ExportedName(i).Series).ToList();
        Assert.Contains("chord_ring_suspected_total", published);
        Assert.Contains("chord_mesh_frames_in_total", published);
        Assert.Contains("chord_kv_operations_total", published);
        Assert.Contains("chord_storage_operations_total", published);
        Assert.Contains("chord_storage_duration_milliseconds", published);

        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var start = readme.IndexOf("### Metrics and the dashboard", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has a section '### Metrics and the dashboard'");
        var end = readme.IndexOf("\n#", start + 1, StringComparison.Ordinal);
        var documented = MetricName().Matches(readme[start..(end < 0 ? readme.Length : end)]).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        var missing = published.Where(n => !documented.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"README.md's metrics table leaves out: {string.Join(", ", missing)}");
    }

    /// <summary>Labels Prometheus adds to every scraped series (from the scrape target), not exported by the host.</summary>
    private static readonly string[] TargetLabels = ["instance", "job"];

    /// <summary>
    /// Each query of the dashboard: the metrics it reads and the label names it uses, from its selectors
    /// (<c>{outcome=~"..."}</c>), its <c>by (...)</c> / <c>without (...)</c> clauses and its legend
    /// (<c>{{operation}}</c>), less <see cref="TargetLabels"/>. Every label of a query is taken to apply to each of
    /// its metrics, which holds for the dashboard's queries (one metric, or a ratio of two with the same labels).
    /// </summary>
    internal static List<(string Expression, List<string> Metrics, List<string> Labels)> DashboardLabelUses()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "grafana-dashboard.json")));
        var uses = new List<(string, List<string>, List<string>)>();
        foreach (var panel in document.RootElement.GetProperty("panels").EnumerateArray())
        {
            if (!panel.TryGetProperty("targets", out var targets))
            {
                continue;
            }

            foreach (var target in targets.EnumerateArray())
            {
                var expression = target.GetProperty("expr").GetString() ?? string.Empty;
                var labels = new SortedSet<string>(StringComparer.Ordinal);
                foreach (Match selector in Selector().Matches(expression))
                {
                    labels.UnionWith(SelectorLabel().Matches(selector.Groups[1].Value).Select(m => m.Groups[1].Value));
                }

                foreach (Match grouping in Grouping().Matches(expression))
                {
                    labels.UnionWith(grouping.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                }

                if (target.TryGetProperty("legendFormat", out var legend))
                {
                    labels.UnionWith(LegendLabel().Matches(legend.GetString() ?? string.Empty).Select(m => m.Groups[1].Value));
                }

                labels.ExceptWith(TargetLabels);
                var metrics = MetricName().Matches(expression).Select(m => m.Value).Distinct(StringComparer.Ordinal).ToList();
                uses.Add((expression, metrics, [.. labels]));
            }
        }

        return uses;
    }

    [GeneratedRegex(@"\b(?:chord|orleans)_[a-z0-9_]+\{([^}]*)\}")]
    private static partial Regex Selector();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")]
    private static partial Regex SelectorLabel();

    [GeneratedRegex(@"\b(?:by|without)\s*\(([^)]*)\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")]
    private static partial Regex LegendLabel();

    /// <summary>The metric names in every panel's queries of docs/grafana-dashboard.json.</summary>
    internal static HashSet<string> DashboardMetricNames()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "grafana-dashboard.json")));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var panel in document.RootElement.GetProperty("panels").EnumerateArray())
        {
            if (!panel.TryGetProperty("targets", out var targets))
            {
                continue;
            }

            foreach (var target in targets.EnumerateArray())
            {
                foreach (Match match in MetricName().Matches(target.GetProperty("expr").GetString() ?? string.Empty))
                {
                    names.Add(match.Value);
                }
            }
        }

        return names;
    }

    /// <summary>
    /// The Prometheus names of every instrument the exported meters have published so far (the exporter's rule:
    /// dots to underscores, the unit appended unless it is a {annotation} or 1, _total on counters, and
    /// _bucket/_sum/_count on histograms); <paramref name="inScrapeForm"/> pairs each instrument with its base series name.
    /// </summary>
    private static HashSet<string> DeclaredMetricNames(out List<(string Instrument, string Name)> inScrapeForm)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        inScrapeForm = [];
        foreach (var instrument in PublishedInstruments())
        {
            var (name, histogram) = ExportedName(instrument);
            if (histogram)
            {
                names.UnionWith([name + "_bucket", name + "_sum", name + "_count"]);
                inScrapeForm.Add((instrument.Name, name + "_count"));
            }
            else
            {
                names.Add(name);
                inScrapeForm.Add((instrument.Name, name));
            }
        }

        return names;
    }

    /// <summary>The instruments of the exported meters (<c>Chord.*</c>, Orleans') published so far in this process, one per name.</summary>
    private static List<Instrument> PublishedInstruments()
    {
        var instruments = new List<Instrument>();
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name.StartsWith("Chord.", StringComparison.Ordinal) || instrument.Meter.Name == "Microsoft.Orleans")
                {
                    lock (instruments)
                    {
                        instruments.Add(instrument);
                    }
                }
            };
            listener.Start();
        }

        return [.. instruments.DistinctBy(i => i.Name)];
    }

    /// <summary>
    /// The series name the exporter gives <paramref name="instrument"/>: dots to underscores, the unit appended
    /// unless it is a {annotation} or 1, _total on counters; a histogram's base name (its series add _bucket, _sum, _count).
    /// </summary>
    private static (string Series, bool Histogram) ExportedName(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_').Replace('-', '_');
        var unit = instrument.Unit switch
        {
            null or "" or "1" => null,
            { } u when u.StartsWith('{') => null,
            "By" => "bytes",
            "s" => "seconds",
            "ms" => "milliseconds",
            "MB" => "megabytes",
            { } u => u,
        };
        if (unit is not null && !name.EndsWith("_" + unit, StringComparison.Ordinal))
        {
            name += "_" + unit;
        }

        var type = instrument.GetType().Name;
        if (type.StartsWith("Histogram", StringComparison.Ordinal))
        {
            return (name, true);
        }

        return type.StartsWith("Counter", StringComparison.Ordinal) || type.StartsWith("ObservableCounter", StringComparison.Ordinal)
            ? (name + "_total", false)
            : (name, false);
    }

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Chord.Orleans.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Chord.Orleans.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex(@"\b(?:chord|orleans)_[a-z0-9_]+\b")]
    private static partial Regex MetricName();
}

/// <summary>A host started with metrics off has no /metrics.</summary>
public sealed class MetricsOffTests
{
    [Fact]
    public async Task With_Silo_Metrics_false_there_is_no_metrics_endpoint()
    {
        await using var hosts = await SiloHosts.StartAsync(1, "--Silo:Metrics=false");
        using var http = hosts.Client(0);
        using var metrics = await http.GetAsync("metrics");
        Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
        using var health = await http.GetAsync("health/ready");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}

/// <summary>One scrape of /metrics in the Prometheus text format: each series with its labels and value.</summary>
internal sealed class Scrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _series = [];

    public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

    public static async Task<Scrape> TakeAsync(HttpClient http)
    {
        using var response = await http.GetAsync("metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var scrape = new Scrape();
        foreach (var raw in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var name = brace >= 0 && brace < space ? line[..brace] : line[..space];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var rest = line[name.Length..];
            if (rest.StartsWith('{'))
            {
                var close = rest.LastIndexOf('}');
                foreach (Match label in Regex.Matches(rest[1..close], "([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\""))
                {
                    labels[label.Groups[1].Value] = label.Groups[2].Value;
                }

                rest = rest[(close + 1)..];
            }

            var value = rest.Trim().Split(' ')[0];
            scrape._series.Add((name, labels, value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            }));
            scrape.Names.Add(name);
        }

        return scrape;
    }

    /// <summary>The label names on any series of <paramref name="name"/>.</summary>
    public HashSet<string> LabelNames(string name) =>
        _series.Where(s => s.Name == name).SelectMany(s => s.Labels.Keys).ToHashSet(StringComparer.Ordinal);

    /// <summary>The sum of every counter (a <c>_total</c> series) whose name starts with <paramref name="prefix"/>.</summary>
    public double SumCounters(string prefix) =>
        _series.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal) && s.Name.EndsWith("_total", StringComparison.Ordinal)).Sum(s => s.Value);

    /// <summary>The sum of a metric's series whose labels include <paramref name="labels"/>; 0 when there is none.</summary>
    public double Sum(string name, params (string Name, string Value)[] labels) =>
        _series.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value)).Sum(s => s.Value);
}
