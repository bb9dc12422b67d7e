using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Chord.Cli;

/// <summary><c>chord ring --http URL</c>: the ring as a silo sees it, one member a row.</summary>
internal static class RingCommand
{
    public static Command Create()
    {
        var http = CliOptions.Http();
        var ring = CliOptions.Ring();
        var timeout = CliOptions.Timeout();
        var command = new Command("ring", "Print the ring's members as a silo sees them (node id, address, silo, storing, entries owned and held, share of the ring), then that silo's health.")
        {
            http, ring, timeout,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(ring) is not null || parse.GetValue(http) is not { } text)
            {
                await error.WriteLineAsync("chord: ring needs --http URL (a silo's HTTP API, for example --http http://127.0.0.1:8080): only a silo knows each member's silo and key count.");
                return ExitCodes.Usage;
            }

            if (HttpApi.ParseBase(text, out var problem) is not { } address)
            {
                await error.WriteLineAsync($"chord: {problem}");
                return ExitCodes.Usage;
            }

            var seconds = parse.GetValue(timeout);

            return await KeyCommands.RunHttpAsync(parse, address, TimeSpan.FromSeconds(seconds), async (p, api, ct) =>
            {
                using var status = await api.GetJsonAsync("ring", ct);
                Print(p.InvocationConfiguration.Output, status.RootElement);
                using var health = await api.GetHealthAsync(ct);
                PrintHealth(p.InvocationConfiguration.Output, health.RootElement);
                return ExitCodes.Ok;
            }, cancellationToken);
        });
        return command;
    }

    /// <summary>Writes the observing silo's health: its status, and what each check that is not healthy found.</summary>
    internal static void PrintHealth(TextWriter output, JsonElement health)
    {
        var status = health.GetProperty("status").GetString() ?? "?";
        output.WriteLine($"health of the observing silo: {status}");
        if (health.TryGetProperty("checks", out var checks) && checks.ValueKind == JsonValueKind.Object)
        {
            foreach (var check in checks.EnumerateObject())
            {
                var checkStatus = check.Value.GetProperty("status").GetString();
                if (checkStatus != "healthy" || status != "healthy")
                {
                    var description = check.Value.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                    output.WriteLine($"  {check.Name}: {checkStatus}{(description is null ? string.Empty : " - " + description)}");
                }
            }
        }
    }

    /// <summary>Writes the members as an aligned table, then who observed it.</summary>
    internal static void Print(TextWriter output, JsonElement status)
    {
        string[] header = ["NODE ID", "ADDRESS", "SILO", "STORING", "OWNED", "HELD", "SHARE"];
        var rows = new List<string[]> { header };
        foreach (var member in status.GetProperty("members").EnumerateArray())
        {
            rows.Add([
                member.GetProperty("nodeId").GetString() ?? "?",
                member.GetProperty("address").GetString() ?? "?",
                member.TryGetProperty("silo", out var silo) && silo.ValueKind == JsonValueKind.String ? silo.GetString()! : "-",
                (member.GetProperty("storing").GetBoolean() ? "yes" : "no")
                    + (member.TryGetProperty("suspect", out var suspect) && suspect.ValueKind == JsonValueKind.True ? " (suspect)" : string.Empty),
                member.TryGetProperty("ownedKeys", out var owned) && owned.ValueKind == JsonValueKind.Number ? owned.GetInt32().ToString(CultureInfo.InvariantCulture) : "-",
                member.TryGetProperty("keys", out var keys) && keys.ValueKind == JsonValueKind.Number ? keys.GetInt32().ToString(CultureInfo.InvariantCulture) : "-",
                (member.GetProperty("share").GetDouble() * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%",
            ]);
        }

        var widths = Enumerable.Range(0, header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((cell, c) => c >= 4 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
        }

        var storing = rows.Count(r => r[3] == "yes");
        output.WriteLine("OWNED: entries at the positions a member owns (a key has five, spread over the ring); HELD: all it stores, placement copies included");
        output.WriteLine($"{rows.Count - 1} members, {storing} storing; observed by {status.GetProperty("observedBy").GetString()}");
    }
}
