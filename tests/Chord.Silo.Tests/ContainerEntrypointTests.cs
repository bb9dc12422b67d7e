using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Chord.Silo.Tests;

/// <summary>
/// deploy/entrypoint.sh, the container image's entry point, run by /bin/sh with stand-ins for <c>dotnet</c> (it
/// prints the arguments it gets, one a line) and <c>hostname</c> (it prints a container address): the arguments the
/// host would get, and that the host accepts them. The bare <c>docker run chord-silo</c> used to exit 2: the entry
/// point passed the container's IP as --address, which localhost clustering refuses.
/// </summary>
public sealed class ContainerEntrypointTests : IDisposable
{
    private const string ContainerIp = "10.1.2.3";
    private readonly string _stubs = Directory.CreateTempSubdirectory("chord-entrypoint-").FullName;

    public ContainerEntrypointTests()
    {
        Stub("dotnet", "for a in \"$@\"; do printf '%s\\n' \"$a\"; done");
        Stub("hostname", $"echo '{ContainerIp} fd00::3'");
    }

    [ShellFact]
    public async Task With_no_arguments_it_runs_one_localhost_silo_that_the_host_accepts()
    {
        var args = await RunAsync([]);

        Assert.Equal(["/app/Chord.Silo.dll", "--http-host", "0.0.0.0", "--ring-port", "4000"], args);
        await using var host = ChordHost.Create(args[1..], SiloHosts.QuietLogging); // threw HostConfigurationException (exit 2) before
        Assert.Equal("localhost", host.Options.Clustering);
        Assert.Equal("0.0.0.0", host.Options.HttpHost);
        Assert.Equal("127.0.0.1", host.Options.Address);
    }

    [ShellTheory]
    [InlineData("--clustering redis --redis redis:6379")]
    [InlineData("--clustering=redis --redis redis:6379")]
    [InlineData("--Silo:Clustering redis --redis=redis:6379")]
    [InlineData("--CLUSTERING=redis --data-dir /data --redis redis:6379")]
    public async Task With_redis_clustering_it_advertises_the_containers_address(string given)
    {
        var args = await RunAsync(given.Split(' '));

        Assert.Equal(["/app/Chord.Silo.dll", "--http-host", "0.0.0.0", "--ring-port", "4000", "--address", ContainerIp, .. given.Split(' ')], args);
        await using var host = ChordHost.Create(args[1..], SiloHosts.QuietLogging);
        Assert.Equal("redis", host.Options.Clustering);
        Assert.Equal(ContainerIp, host.Options.Address);
        Assert.Equal("redis:6379", host.Options.Redis);
    }

    [ShellTheory]
    [InlineData("Silo__Clustering", "redis")]
    [InlineData("SILO__CLUSTERING", "redis")]
    public async Task Redis_clustering_from_the_environment_counts_too(string variable, string value)
    {
        // .NET reads environment keys whatever their case; the entry point must see the key the same way.
        var args = await RunAsync([], (variable, value));
        Assert.Equal(["/app/Chord.Silo.dll", "--http-host", "0.0.0.0", "--ring-port", "4000", "--address", ContainerIp], args);
    }

    [ShellFact]
    public async Task Arguments_given_to_the_container_win_over_the_entry_points()
    {
        var args = await RunAsync(["--clustering", "redis", "--address", "192.168.7.7", "--ring-port", "4100"]);

        await using var host = ChordHost.Create(args[1..], SiloHosts.QuietLogging);
        Assert.Equal("192.168.7.7", host.Options.Address);
        Assert.Equal(4100, host.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Chord.Grains.Hosting.ChordOptions>>().Value.RingPort);
    }

    public void Dispose() => Directory.Delete(_stubs, recursive: true);

    private void Stub(string name, string body)
    {
        var path = Path.Combine(_stubs, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private async Task<string[]> RunAsync(string[] args, params (string Name, string Value)[] environment)
    {
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(MetricsTests.RepositoryRoot(), "deploy", "entrypoint.sh"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["PATH"] = _stubs + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
        foreach (var spelling in new[] { "Silo__Clustering", "SILO__CLUSTERING", "silo__clustering" })
        {
            info.Environment.Remove(spelling);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("/bin/sh did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(deadline.Token);
        Assert.True(process.ExitCode == 0, $"entrypoint.sh exited {process.ExitCode}: {await stderr}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}

/// <summary>A fact that needs /bin/sh: skipped on Windows, which has none.</summary>
public sealed class ShellFactAttribute : FactAttribute
{
    public ShellFactAttribute()
    {
        if (OperatingSystem.IsWindows() || !File.Exists("/bin/sh"))
        {
            Skip = "deploy/entrypoint.sh runs in a Linux container; this machine has no /bin/sh to run it.";
        }
    }
}

/// <summary>A theory that needs /bin/sh: skipped on Windows, which has none.</summary>
public sealed class ShellTheoryAttribute : TheoryAttribute
{
    public ShellTheoryAttribute()
    {
        if (OperatingSystem.IsWindows() || !File.Exists("/bin/sh"))
        {
            Skip = "deploy/entrypoint.sh runs in a Linux container; this machine has no /bin/sh to run it.";
        }
    }
}
