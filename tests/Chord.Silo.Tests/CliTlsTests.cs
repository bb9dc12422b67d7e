using System.Text.RegularExpressions;
using Chord.Cli;
using Chord.Testing;

namespace Chord.Silo.Tests;

/// <summary>
/// <c>--tls-certificate</c> on the chord command: a <c>chord node</c> and <c>--ring</c> clients with the ring's
/// certificate talk over TLS; a client without it, or with another one, cannot; bad combinations are usage errors.
/// </summary>
public sealed partial class CliTlsTests : IDisposable
{
    /// <summary>The variable the CLI reads for the certificate's password (as its --help says).</summary>
    private const string PasswordVariable = "CHORD_TLS_CERTIFICATE_PASSWORD";

    private readonly string _directory = Directory.CreateTempSubdirectory("chord-cli-tls-").FullName;

    [Fact]
    public async Task A_node_and_a_client_with_the_rings_certificate_set_and_get_and_a_client_without_it_cannot()
    {
        var ring = CreateCertificate("ring", "ring-password");
        var other = CreateCertificate("other", "ring-password");
        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        var error = new SynchronizedWriter();
        var run = Task.Run(() => ChordCli.RunAsync(
            ["node", "--listen", "127.0.0.1:0", "--tls-certificate", ring, "--tls-certificate-password", "ring-password"], output, error, stop.Token));
        await Eventually.UntilAsync(() => run.IsCompleted || ListeningOn().IsMatch(output.Text), Eventually.Deadline, "the node to print its address");
        Assert.False(run.IsCompleted, $"the node exited: {error.Text}");
        var address = ListeningOn().Match(output.Text).Groups[1].Value;
        Assert.Contains($"ring connections are TLS with the certificate in {ring}", output.Text, StringComparison.Ordinal);

        var set = await RunAsync("set", "secret-greeting", "over tls", "--ring", address, "--tls-certificate", ring, "--tls-certificate-password", "ring-password");
        Assert.True(set.Code == ExitCodes.Ok, set.Error);
        var get = await RunAsync("get", "secret-greeting", "--ring", address, "--tls-certificate", ring, "--tls-certificate-password", "ring-password");
        Assert.True(get.Code == ExitCodes.Ok, get.Error);
        Assert.Equal("over tls", get.Output.Trim());

        // The password may come from the environment instead of the command line (only this class sets it).
        Environment.SetEnvironmentVariable(PasswordVariable, "ring-password");
        try
        {
            var fromEnvironment = await RunAsync("get", "secret-greeting", "--ring", address, "--tls-certificate", ring);
            Assert.True(fromEnvironment.Code == ExitCodes.Ok, fromEnvironment.Error);
            Assert.Equal("over tls", fromEnvironment.Output.Trim());
        }
        finally
        {
            Environment.SetEnvironmentVariable(PasswordVariable, null);
        }

        var plaintext = await RunAsync("get", "secret-greeting", "--ring", address, "--timeout", "5");
        Assert.Equal(ExitCodes.RingError, plaintext.Code);
        Assert.DoesNotContain("over tls", plaintext.Output, StringComparison.Ordinal);
        Assert.Contains(address, plaintext.Error, StringComparison.Ordinal);

        var otherCertificate = await RunAsync("get", "secret-greeting", "--ring", address, "--timeout", "5", "--tls-certificate", other, "--tls-certificate-password", "ring-password");
        Assert.Equal(ExitCodes.RingError, otherCertificate.Code);
        Assert.DoesNotContain("over tls", otherCertificate.Output, StringComparison.Ordinal);
        Assert.Contains("TLS", otherCertificate.Error, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
    }

    [Fact]
    public async Task A_TLS_client_cannot_reach_a_plaintext_ring()
    {
        var ring = CreateCertificate("ring", null);
        using var stop = new CancellationTokenSource();
        var output = new SynchronizedWriter();
        var run = Task.Run(() => ChordCli.RunAsync(["node", "--listen", "127.0.0.1:0"], output, new SynchronizedWriter(), stop.Token));
        await Eventually.UntilAsync(() => run.IsCompleted || ListeningOn().IsMatch(output.Text), Eventually.Deadline, "the node to print its address");
        var address = ListeningOn().Match(output.Text).Groups[1].Value;
        Assert.Equal(ExitCodes.Ok, (await RunAsync("set", "plain", "text", "--ring", address)).Code);

        var tls = await RunAsync("get", "plain", "--ring", address, "--timeout", "5", "--tls-certificate", ring);
        Assert.Equal(ExitCodes.RingError, tls.Code);
        Assert.Contains("TLS handshake", tls.Error, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run);
    }

    [Theory]
    [InlineData("node", "--listen", "127.0.0.1:0")]
    [InlineData("get", "k", "--ring", "127.0.0.1:1")]
    public async Task TLS_and_allow_unauthenticated_peers_are_a_usage_error(params string[] args)
    {
        var ring = CreateCertificate("ring", null);
        var result = await RunAsync([.. args, "--tls-certificate", ring, "--allow-unauthenticated-peers"]);
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.Contains("--tls-certificate and --allow-unauthenticated-peers exclude each other", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_that_does_not_load_is_a_usage_error_naming_it()
    {
        var garbage = Path.Combine(_directory, "garbage.pfx");
        await File.WriteAllBytesAsync(garbage, [.. Enumerable.Range(0, 512).Select(i => (byte)(i * 37))]);
        var result = await RunAsync("get", "k", "--ring", "127.0.0.1:1", "--tls-certificate", garbage);
        Assert.Equal(ExitCodes.Usage, result.Code);
        Assert.StartsWith($"chord: --tls-certificate: The TLS certificate '{garbage}' could not be loaded (", result.Error, StringComparison.Ordinal);

        var protectedFile = CreateCertificate("protected", "right");
        var wrongPassword = await RunAsync("node", "--listen", "127.0.0.1:0", "--tls-certificate", protectedFile, "--tls-certificate-password", "wrong");
        Assert.Equal(ExitCodes.Usage, wrongPassword.Code);
        Assert.Contains(protectedFile, wrongPassword.Error, StringComparison.Ordinal);

        var missing = await RunAsync("get", "k", "--ring", "127.0.0.1:1", "--tls-certificate", Path.Combine(_directory, "missing.pfx"));
        Assert.Equal(ExitCodes.Usage, missing.Code);
        Assert.Contains("missing.pfx' does not exist", missing.Error, StringComparison.Ordinal);

        var passwordAlone = await RunAsync("get", "k", "--ring", "127.0.0.1:1", "--tls-certificate-password", "right");
        Assert.Equal(ExitCodes.Usage, passwordAlone.Code);
        Assert.Contains("give --tls-certificate PATH (or $CHORD_TLS_CERTIFICATE) too", passwordAlone.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_of_node_and_the_key_commands_lists_the_TLS_options()
    {
        foreach (var command in (string[])["node", "get", "set", "del", "keys"])
        {
            var help = await RunAsync(command, "--help");
            Assert.Contains("--tls-certificate <PATH>", help.Output, StringComparison.Ordinal);
            Assert.Contains("--tls-certificate-password <PASSWORD>", help.Output, StringComparison.Ordinal);
            Assert.Contains(PasswordVariable, help.Output, StringComparison.Ordinal);
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string CreateCertificate(string name, string? password) => TestCertificates.Create(_directory, name, password);

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await ChordCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [GeneratedRegex(@"listening on (127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
