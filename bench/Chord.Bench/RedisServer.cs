using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Chord.Bench;

/// <summary>
/// A <c>redis-server</c> child process on 127.0.0.1 and a free port, with no persistence (no RDB snapshots, no AOF).
/// Installed with <c>apt-get install -y redis-server</c> when missing. Disposing kills it; so does this process's exit.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private readonly Process _process;
    private int _stopped;

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
        AppDomain.CurrentDomain.ProcessExit += OnExit;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync(Action<string> log)
    {
        var path = Find() ?? await InstallAsync(log);
        var port = FreePort();
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {path}.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new RedisServer(process, port);
        try
        {
            await server.WaitUntilAnsweringAsync(TimeSpan.FromSeconds(20));
            log($"redis-server {path} (pid {process.Id}) on 127.0.0.1:{port}, persistence off");
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private async Task WaitUntilAnsweringAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server exited at start with code {_process.ExitCode}.");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[16];
                var read = await stream.ReadAsync(buffer);
                if (Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (SocketException) when (clock.Elapsed < timeout)
            {
                // Not listening yet.
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"redis-server did not answer PING on 127.0.0.1:{Port} within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(50);
        }
    }

    private static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static async Task<string> InstallAsync(Action<string> log)
    {
        log("redis-server is missing: apt-get install -y redis-server");
        var install = Process.Start(new ProcessStartInfo("apt-get", "install -y redis-server") { UseShellExecute = false })
            ?? throw new InvalidOperationException("Could not run apt-get.");
        await install.WaitForExitAsync();
        return install.ExitCode == 0 && Find() is { } path
            ? path
            : throw new InvalidOperationException($"apt-get install -y redis-server failed (exit {install.ExitCode}); install it and run again.");
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private void OnExit(object? sender, EventArgs e) => Dispose();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnExit;
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }
}
