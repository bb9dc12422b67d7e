using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

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
        using var redis = RedisServer.Start();
        await using var hosts = await SiloHosts.StartAsync(2, "--clustering", "redis", "--redis", redis.Endpoint);
        Assert.True(hosts.IsOneRing(out var divergence), divergence);

        using var first = hosts.Client(0);
        using var second = hosts.Client(1);
        var key = $"redis-{Guid.NewGuid():N}";
        using var put = await first.PutAsync($"kv/{key}", new StringContent("\"through redis membership\"", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal("\"through redis membership\"", await second.GetStringAsync($"kv/{key}"));
    }

    internal static string? FindRedisServer() => RedisServer.FindOnPath("redis-server");

    /// <summary>A redis-server child process on a free loopback port, with no persistence.</summary>
    private sealed class RedisServer : IDisposable
    {
        private readonly Process _process;

        private RedisServer(Process process, int port)
        {
            _process = process;
            Endpoint = $"127.0.0.1:{port}";
        }

        public string Endpoint { get; }

        public static RedisServer Start()
        {
            // Without redis-server, RedisFact skips the test, except under CI=true, where it runs and fails here.
            var executable = FindOnPath("redis-server")
                ?? throw new InvalidOperationException("redis-server is not on PATH, and CI=true requires the Redis clustering test to run (.ci/run installs redis-server).");

            var port = SiloHosts.FreePort();
            var start = new ProcessStartInfo(executable)
            {
                ArgumentList = { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no" },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new RedisServer(process, port);
            try
            {
                Eventually.UntilAsync(() => Accepts(port) || process.HasExited, TimeSpan.FromSeconds(20), $"redis-server accepts connections on port {port}")
                    .GetAwaiter().GetResult();
                Assert.False(process.HasExited, $"redis-server exited with code {(process.HasExited ? process.ExitCode : 0)}.");
            }
            catch
            {
                server.Dispose();
                throw;
            }

            return server;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }

            _process.Dispose();
        }

        private static bool Accepts(int port)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        internal static string? FindOnPath(string name) =>
            (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Select(dir => Path.Combine(dir, name))
                .FirstOrDefault(File.Exists);
    }
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
