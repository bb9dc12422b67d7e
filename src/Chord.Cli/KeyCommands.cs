using System.CommandLine;
using System.Text;
using System.Text.Json;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Cli;

/// <summary>
/// <c>chord get|set|del|keys</c>: each joins the ring as a leeching client (it stores nothing), does one operation,
/// prints the result and leaves.
/// </summary>
internal static class KeyCommands
{
    public static Command Get()
    {
        var key = new Argument<string>("key") { Description = "The key (its UTF-8 bytes)." };
        return Verb("get", "Print a key's value: a string as it is, anything else as JSON.", [key], [], async (parse, node, ct) =>
        {
            var value = await node.GetAsync(parse.GetValue(key)!, ct);
            parse.InvocationConfiguration.Output.WriteLine(value.Kind == MsgKind.Str ? value.AsString() : MsgValueJson.ToJson(value));
            return ExitCodes.Ok;
        });
    }

    public static Command Set()
    {
        var key = new Argument<string>("key") { Description = "The key (its UTF-8 bytes)." };
        var value = new Argument<string>("value") { Description = "The value: stored as a string unless --json." };
        var json = new Option<bool>("--json") { Description = "Parse the value as JSON (objects become maps, numbers ints or floats)." };
        MsgValue? stored = null;
        return Verb("set", "Store a value at a key (acknowledged by 3 of its 5 owners).", [key, value], [json], async (parse, node, ct) =>
        {
            await node.SetAsync(parse.GetValue(key)!, stored!, ct);
            parse.InvocationConfiguration.Output.WriteLine("ok");
            return ExitCodes.Ok;
        },
        validate: parse =>
        {
            // Checked before any connection is made: a bad value is a usage error whatever the ring's state.
            try
            {
                stored = parse.GetValue(json) ? MsgValueJson.Parse(parse.GetValue(value)!) : MsgValue.Str(parse.GetValue(value)!);
            }
            catch (JsonException e)
            {
                return $"the value is not JSON: {e.Message}";
            }

            return stored.IsNil ? "a JSON null deletes on the ring; use 'chord del' to delete a key." : null;
        });
    }

    public static Command Delete()
    {
        var key = new Argument<string>("key") { Description = "The key (its UTF-8 bytes)." };
        return Verb("del", "Delete a key.", [key], [], async (parse, node, ct) =>
        {
            await node.DeleteAsync(parse.GetValue(key)!, ct);
            parse.InvocationConfiguration.Output.WriteLine("deleted");
            return ExitCodes.Ok;
        });
    }

    public static Command Keys() =>
        Verb("keys", "List the keys the ring knows of (from its notify broadcasts).", [], [], (parse, node, _) =>
        {
            foreach (var key in node.Keys.Select(Render).Order(StringComparer.Ordinal))
            {
                parse.InvocationConfiguration.Output.WriteLine(key);
            }

            return Task.FromResult(ExitCodes.Ok);
        });

    private static string Render(byte[] key)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(key);
        }
        catch (DecoderFallbackException)
        {
            return "0x" + Convert.ToHexStringLower(key);
        }
    }

    private static Command Verb(string name, string description, Argument[] arguments, Option[] extra,
        Func<ParseResult, RingNode, CancellationToken, Task<int>> operation, Func<ParseResult, string?>? validate = null)
    {
        var ring = CliOptions.Ring();
        var timeout = CliOptions.Timeout();
        var subnet = CliOptions.Subnet();
        var verbose = CliOptions.Verbose();
        var command = new Command(name, description);
        foreach (var argument in arguments)
        {
            command.Arguments.Add(argument);
        }

        foreach (var option in extra.Append(ring).Append(timeout).Append(subnet).Append(verbose))
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            if (CliOptions.ParseAddress(parse.GetValue(ring)!, "--ring", parse.InvocationConfiguration.Error) is not { } seed)
            {
                return ExitCodes.Usage;
            }

            if (validate?.Invoke(parse) is { } problem)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {problem}");
                return ExitCodes.Usage;
            }

            var seconds = parse.GetValue(timeout);
            if (seconds is <= 0 or > 3600)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: --timeout {seconds} is out of range: give 0 < seconds <= 3600.");
                return ExitCodes.Usage;
            }

            using var logging = CliOptions.Logging(parse.GetValue(verbose));
            var options = new RingOptions { RequestTimeout = TimeSpan.FromSeconds(seconds) };
            options.Mesh.Subnet = parse.GetValue(subnet)!;
            options.Mesh.MaxOutgoing = 0; // a one-shot client talks through its seed
            await using var node = new RingNode(options, logging);
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(options.RequestTimeout);
                await node.StartAsync(deadline.Token);
                var peer = await node.ConnectAsync(seed, deadline.Token);

                // The seed sends its directory, chord meta and known keys before it reads our ping, so once the pong
                // is here we know the ring as the seed does.
                await peer.PingAsync(deadline.Token);
                if (node.Members.All(m => !m.IsStoring))
                {
                    await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: the ring at {seed} has no storing node yet.");
                    return ExitCodes.RingError;
                }

                return await operation(parse, node, cancellationToken);
            }
            catch (ChordKeyNotFoundException e)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {e.Message}");
                return ExitCodes.NotFound;
            }
            catch (Exception e) when (e is ChordTimeoutException or ChordNoMajorityException or ChordWriteException or MeshConnectException
                or OperationCanceledException or System.Net.Sockets.SocketException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {(e is OperationCanceledException ? $"the ring at {seed} did not answer within {seconds} s" : e.Message)}");
                return ExitCodes.RingError;
            }
        });
        return command;
    }
}
