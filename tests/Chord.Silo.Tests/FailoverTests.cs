using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Chord.Testing;
using Xunit.Abstractions;

namespace Chord.Silo.Tests;

/// <summary>
/// No single point of failure with Redis clustering: three silo processes (the program, as a user runs it) share a
/// redis-server this test starts; any one of them (the first, the middle, the last) is killed (SIGKILL, no goodbye), and
/// within a deadline of Orleans' failure detection (as the host tunes it) plus the ring's repair, counted from the kill,
/// every value written before the crash is read back through the other two, and then every key is written and read
/// through them. Skipped without redis-server, except under CI=true.
/// </summary>
public sealed class FailoverTests(ITestOutputHelper output)
{
    private const int Keys = 24;

    /// <summary>
    /// How long the survivors may take, computed from the settings the silo processes run with (the host's
    /// <see cref="ChordHost.TuneMembership"/> and the ring's default <see cref="Chord.Grains.Hosting.ChordOptions.RequestTimeout"/>):
    /// <list type="bullet">
    /// <item>Failure detection: Orleans adapts each probe's period and timeout to the answers it sees, up to
    /// <c>MaxProbeTimeout</c> (4 × ProbeTimeout by default); a silo is suspected after <c>NumMissedProbesLimit</c>
    /// missed probes, and the kill can land just after a successful one, so (missed probes + 1) probe cycles of
    /// <c>MaxProbeTimeout</c> each. Both survivors probe the victim at once, so their two votes
    /// (<c>NumVotesForDeathDeclaration</c>) fall in the same window.</item>
    /// <item>Then one ring request timeout: a lookup or store that went to the dead silo's ring node before its
    /// connections were seen to close, and the repair of the positions it held.</item>
    /// <item>A margin of half that again for a loaded 2-core CI machine running three silos and the test (GC,
    /// thread-pool starvation stretch every probe and request).</item>
    /// </list>
    /// It is a liveness bound, not a speed assertion: a healthy run finishes in a few seconds (the output says how
    /// long), and only a failover that does not happen waits for the deadline.
    /// </summary>
    private static TimeSpan Deadline
    {
        get
        {
            var membership = new Orleans.Configuration.ClusterMembershipOptions();
            ChordHost.TuneMembership(membership);
            var detection = membership.MaxProbeTimeout * (membership.NumMissedProbesLimit + 1);
            var ring = new Chord.Grains.Hosting.ChordOptions().RequestTimeout;
            return (detection + ring) * 1.5;
        }
    }

    [RedisTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Killing_any_silo_leaves_every_key_readable_and_writable_through_the_survivors(int victim)
    {
        using var redis = await LocalRedisServer.StartAsync(LocalRedisServer.FindExecutable()
            ?? throw new InvalidOperationException("redis-server is not on PATH, and CI=true requires the Redis failover test to run (.ci/run installs redis-server)."));
        var cluster = $"failover-{Guid.NewGuid():N}";
        var silos = new List<SiloProcess>();
        try
        {
            silos.Add(await SiloProcess.StartAsync(cluster, redis.Endpoint));
            silos.AddRange(await Task.WhenAll(SiloProcess.StartAsync(cluster, redis.Endpoint), SiloProcess.StartAsync(cluster, redis.Endpoint)));
            await Task.WhenAll(silos.Select(s => s.WaitReadyAsync(3)));

            var keys = Enumerable.Range(0, Keys).Select(i => $"failover-{victim}-{i}").ToList();
            for (var i = 0; i < keys.Count; i++)
            {
                await PutAsync(silos[i % 3].Http!, keys[i], $"before-{i}");
            }

            var survivors = silos.Where((_, i) => i != victim).ToList();
            var clock = Stopwatch.StartNew();
            silos[victim].Kill();

            // First the values written before the crash: each is read back, through either survivor, as it was
            // written. A failure is thrown, so the deadline's message carries the last one.
            var readRounds = 0;
            await Eventually.UntilAsync(async () =>
            {
                readRounds++;
                for (var i = 0; i < keys.Count; i++)
                {
                    var reader = survivors[(i + readRounds) % 2].Http!;
                    using var get = await reader.GetAsync($"kv/{keys[i]}");
                    var body = await get.Content.ReadAsStringAsync();
                    if (get.StatusCode != HttpStatusCode.OK || body != JsonSerializer.Serialize($"before-{i}"))
                    {
                        throw new InvalidOperationException($"GET {keys[i]} through {reader.BaseAddress}: {(int)get.StatusCode} {body}, expected the value written before the crash");
                    }
                }

                return true;
            }, Deadline, $"every value written before silo {victim} was killed is read back through the survivors");
            output.WriteLine($"silo {victim} killed: every value written before the crash read back after {clock.Elapsed.TotalSeconds:0.0} s ({readRounds} rounds)");

            // Then new values: each key is written through one survivor and read through the other, within what
            // is left of the same deadline (counted from the kill).
            var round = 0;
            await Eventually.UntilAsync(async () =>
            {
                round++;
                for (var i = 0; i < keys.Count; i++)
                {
                    var writer = survivors[(i + round) % 2].Http!;
                    var reader = survivors[(i + round + 1) % 2].Http!;
                    var value = $"after-{round}-{i}";
                    using (var put = await writer.PutAsync($"kv/{keys[i]}", Json(value)))
                    {
                        if (put.StatusCode != HttpStatusCode.NoContent)
                        {
                            throw new InvalidOperationException($"PUT {keys[i]} through {writer.BaseAddress}: {(int)put.StatusCode} {await put.Content.ReadAsStringAsync()}");
                        }
                    }

                    using var get = await reader.GetAsync($"kv/{keys[i]}");
                    var body = await get.Content.ReadAsStringAsync();
                    if (get.StatusCode != HttpStatusCode.OK || body != JsonSerializer.Serialize(value))
                    {
                        throw new InvalidOperationException($"GET {keys[i]} through {reader.BaseAddress}: {(int)get.StatusCode} {body}, expected {value}");
                    }
                }

                return true;
            }, Remaining(clock), $"every key is written and read through the survivors of silo {victim}");
            output.WriteLine($"silo {victim} killed: every key readable and writable through the survivors after {clock.Elapsed.TotalSeconds:0.0} s ({round} rounds; deadline {Deadline.TotalSeconds:0} s)");

            // The survivors logged the crash in lines with their causes, without stack traces.
            foreach (var survivor in survivors)
            {
                var frames = survivor.Output.Split('\n').Where(l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).ToList();
                Assert.True(frames.Count == 0, $"a survivor logged stack frames after the crash:{Environment.NewLine}{survivor.Output}");
            }

            // No silo measured the watchdog's unset timestamp against the machine's uptime (see ProcessClock).
            Assert.All(silos, s => Assert.DoesNotContain("Participant check thread has not completed", s.Output, StringComparison.Ordinal));

            // The survivors say so too: ready, two active silos, nothing suspected.
            foreach (var survivor in survivors)
            {
                await Eventually.UntilAsync(async () =>
                {
                    using var health = await survivor.Http!.GetAsync("health/ready");
                    using var document = JsonDocument.Parse(await health.Content.ReadAsStringAsync());
                    return health.StatusCode == HttpStatusCode.OK
                        && document.RootElement.GetProperty("checks").GetProperty("membership").GetProperty("data").GetProperty("activeSilos").GetInt32() == 2;
                }, Deadline, "each survivor's readiness says 200 with two active silos");
            }
        }
        catch
        {
            foreach (var silo in silos)
            {
                output.WriteLine($"--- silo {silo.Http?.BaseAddress} output ---{Environment.NewLine}{silo.Output}");
            }

            throw;
        }
        finally
        {
            foreach (var silo in silos)
            {
                silo.Dispose();
            }
        }
    }

    /// <summary>What is left of <see cref="Deadline"/> since the kill (none left: one more try).</summary>
    private static TimeSpan Remaining(Stopwatch sinceKill) => Deadline > sinceKill.Elapsed ? Deadline - sinceKill.Elapsed : TimeSpan.Zero;

    private static async Task PutAsync(HttpClient http, string key, string value)
    {
        using var put = await http.PutAsync($"kv/{key}", Json(value));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
    }

    private static StringContent Json(string value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}

/// <summary>A Chord.Silo program run as a child process (dotnet Chord.Silo.dll), so a test can kill it outright.</summary>
internal sealed partial class SiloProcess : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _http = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(Process process) => _process = process;

    /// <summary>A client of its HTTP API (null until it printed where the API listens).</summary>
    public HttpClient? Http { get; private set; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts one and waits until it prints its HTTP address (it binds port 0 for HTTP and the ring); a start that
    /// lost its silo or gateway port to another process in between is retried with new ports.
    /// </summary>
    public static async Task<SiloProcess> StartAsync(string clusterId, string redis)
    {
        for (var attempt = 1; ; attempt++)
        {
            var silo = Start(clusterId, redis);
            var exited = silo._process.WaitForExitAsync();
            var started = await Task.WhenAny(silo._http.Task, exited, Task.Delay(StartTimeout));
            if (started == silo._http.Task)
            {
                silo.Http = new HttpClient { BaseAddress = await silo._http.Task, Timeout = TimeSpan.FromSeconds(15) };
                return silo;
            }

            var output = silo.Output;
            silo.Dispose();
            if (started != exited || attempt == 3 || !output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"The silo did not start (attempt {attempt}):{Environment.NewLine}{output}");
            }
        }
    }

    private static SiloProcess Start(string clusterId, string redis)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])
                 [
                     Path.Combine(AppContext.BaseDirectory, "Chord.Silo.dll"),
                     "--clustering", "redis", "--redis", redis, "--cluster-id", clusterId,
                     "--silo-port", SiloHosts.FreePort().ToString(CultureInfo.InvariantCulture),
                     "--gateway-port", SiloHosts.FreePort().ToString(CultureInfo.InvariantCulture),
                     "--http-port", "0", "--ring-port", "0",
                     "--Chord:JoinTimeout=00:00:10",
                 ])
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var silo = new SiloProcess(process);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>Polls until its readiness is 200 and its ring has <paramref name="members"/> storing members; fails at once if it exits.</summary>
    public async Task WaitReadyAsync(int members)
    {
        var http = Http ?? throw new InvalidOperationException("Not started.");
        var deadline = DateTime.UtcNow + StartTimeout;
        var last = "no answer yet";
        while (true)
        {
            if (_process.HasExited)
            {
                Assert.Fail($"The silo at {http.BaseAddress} exited with {_process.ExitCode}:{Environment.NewLine}{Output}");
            }

            try
            {
                using var ready = await http.GetAsync("health/ready");
                last = $"ready: {(int)ready.StatusCode} {await ready.Content.ReadAsStringAsync()}";
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    using var ring = JsonDocument.Parse(await http.GetStringAsync("ring"));
                    var storing = ring.RootElement.GetProperty("members").EnumerateArray().Count(m => m.GetProperty("storing").GetBoolean());
                    last = $"{storing} storing members";
                    if (storing == members)
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                last = e.Message;
            }

            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"The silo at {http.BaseAddress} was not ready with {members} storing members within {StartTimeout.TotalSeconds:0} s ({last}).");
            }

            await Task.Delay(Eventually.PollInterval);
        }
    }

    /// <summary>Kills it outright (SIGKILL): no unjoin, no membership goodbye.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
        Http?.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (HttpLine().Match(line) is { Success: true } match)
        {
            _http.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*HTTP API\s+(http://\S+)")]
    private static partial System.Text.RegularExpressions.Regex HttpLine();
}

/// <summary>A theory skipped when redis-server is not on PATH, unless CI=true: there it runs, and fails without it.</summary>
public sealed class RedisTheoryAttribute : TheoryAttribute
{
    public RedisTheoryAttribute()
    {
        var ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (!ci && RedisClusteringTests.FindRedisServer() is null)
        {
            Skip = "redis-server is not on PATH; install it (apt-get install redis-server) to run the Redis failover test.";
        }
    }
}
