using System.Diagnostics;
using System.Net;

namespace Chord.Silo.Tests;

/// <summary>
/// <c>Chord.Silo --probe URL</c>, the container health check: exit 0 and one line when the URL answers 200, exit 1
/// and one line saying why otherwise, exit 2 for a bad URL; it starts no silo.
/// </summary>
public sealed class ProbeTests
{
    [Fact]
    public async Task Probing_a_live_hosts_readiness_exits_0_with_one_line()
    {
        await using var hosts = await SiloHosts.StartAsync(1);
        var ready = new Uri(hosts[0].HttpAddress, "health/ready");
        using (var http = hosts.Client(0))
        {
            await Eventually.UntilAsync(async () => (await http.GetAsync("health/ready")).StatusCode == HttpStatusCode.OK, Eventually.Deadline, "the host is ready");
        }

        // As the container runs it: the program itself, not the in-process entry point.
        var (code, stdout, stderr) = await RunProgramAsync("--probe", ready.ToString());
        Assert.True(code == 0, $"exit {code}; stdout: {stdout}; stderr: {stderr}");
        var line = Assert.Single(Lines(stdout));
        Assert.Contains(ready.ToString(), line, StringComparison.Ordinal);
        Assert.Contains("200", line, StringComparison.Ordinal);
        Assert.Empty(Lines(stderr));
    }

    [Fact]
    public async Task Probing_a_closed_port_exits_1_saying_it_did_not_answer()
    {
        var url = $"http://127.0.0.1:{SiloHosts.FreePort()}/health/ready";
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(1, await ChordHost.RunAsync(["--probe", url], output, error));
        Assert.Empty(Lines(output.ToString()));
        var line = Assert.Single(Lines(error.ToString()));
        Assert.Contains(url, line, StringComparison.Ordinal);
        Assert.Contains("did not answer", line, StringComparison.Ordinal);
        Assert.Contains("refused", line, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("--probe", "needs a value")]
    [InlineData("--probe ftp://127.0.0.1/x", "allowed: an absolute http:// or https:// URL")]
    [InlineData("--probe=not-a-url", "allowed: an absolute http:// or https:// URL")]
    [InlineData("--probe http://127.0.0.1:1/health/ready --http-port 1", "takes no other arguments")]
    public async Task A_bad_probe_exits_2_naming_the_problem(string args, string problem)
    {
        var error = new StringWriter();
        Assert.Equal(2, await ChordHost.RunAsync(args.Split(' '), new StringWriter(), error));
        Assert.Contains(problem, Assert.Single(Lines(error.ToString())), StringComparison.Ordinal);
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static async Task<(int Code, string Stdout, string Stderr)> RunProgramAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Chord.Silo.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
