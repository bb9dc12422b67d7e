using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Chord.Testing;

/// <summary>
/// A throwaway <c>redis-server</c> child process for tests and benchmarks: 127.0.0.1, a free port, no persistence
/// (no RDB snapshots, no AOF). <see cref="StartAsync"/> returns once it answers PING; disposing it (or this process
/// exiting) kills it. Linked into the projects that need it (Chord.Silo.Tests, Chord.Bench).
/// </summary>
internal sealed class LocalRedisServer : IDisposable
{
    private readonly Process _process;
    private int _stopped;

    private LocalRedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
        AppDomain.CurrentDomain.ProcessExit += OnExit;
    }

    /// <summary>The port it listens on, on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>, as StackExchange.Redis and Orleans' Redis providers take it.</summary>
    public string Endpoint => $"127.0.0.1:{Port}";

    /// <summary>The <c>redis-server</c> executable on PATH (or in /usr/bin, /usr/local/bin), or null.</summary>
    public static string? FindExecutable() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Append("/usr/local/bin")
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// Installs the Debian package with apt-get (non-interactive, no stdin), refreshing the package lists first when
    /// the install alone fails (a fresh machine has none). Returns the executable.
    /// </summary>
    /// <exception cref="InvalidOperationException">apt-get failed; the message says how to install it by hand.</exception>
    public static async Task<string> InstallAsync(Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        log("redis-server is missing: apt-get install -y redis-server");
        var code = await AptGetAsync("install -y -q redis-server");
        if (code != 0)
        {
            log($"apt-get install exited {code}: apt-get update, then install again");
            code = await AptGetAsync("update -q");
            if (code == 0)
            {
                code = await AptGetAsync("install -y -q redis-server");
            }
        }

        return code == 0 && FindExecutable() is { } path
            ? path
            : throw new InvalidOperationException(
                $"Installing redis-server with apt-get failed (exit {code}); install it (apt-get install redis-server) and run again.");
    }

    /// <summary>Starts <paramref name="executable"/> and waits (up to 20 s) until it answers PING.</summary>
    /// <exception cref="InvalidOperationException">It exited at start.</exception>
    /// <exception cref="TimeoutException">It did not answer in time.</exception>
    public static async Task<LocalRedisServer> StartAsync(string executable)
    {
        ArgumentException.ThrowIfNullOrEmpty(executable);
        var port = FreePort();
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {executable}.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new LocalRedisServer(process, port);
        try
        {
            await server.WaitUntilAnsweringAsync(TimeSpan.FromSeconds(20));
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Kills the server and waits for it to exit.</summary>
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
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
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
            catch (Exception e) when (e is SocketException or IOException)
            {
                // Not listening yet.
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"redis-server did not answer PING on 127.0.0.1:{Port} within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(50); // polling a child process that has no readiness signal, with the deadline above
        }
    }

    private static async Task<int> AptGetAsync(string arguments)
    {
        var start = new ProcessStartInfo("apt-get", arguments) { UseShellExecute = false, RedirectStandardInput = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var apt = Process.Start(start) ?? throw new InvalidOperationException("Could not run apt-get.");
        apt.StandardInput.Close();
        await apt.WaitForExitAsync();
        return apt.ExitCode;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private void OnExit(object? sender, EventArgs e) => Dispose();
}
