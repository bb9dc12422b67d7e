using System.CommandLine;
using System.Text;
using System.Text.Json;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Cli;

/// <summary>
/// <c>chord get|set|del|keys</c>: with <c>--ring</c>, each joins the ring as a leeching client (it stores nothing),
/// does one operation, prints the result and leaves; with <c>--http</c>, each makes one call to a silo's HTTP API.
/// </summary>
internal static class KeyCommands
{
    public static Command Get()
    {
        var key = new Argument<string>("key") { Description = "The key (its UTF-8 bytes)." };
        return Verb("get", "Print a key's value: a string as it is, anything else as JSON.", [key], [], async (parse, node, ct) =>
        {
            Print(parse, await node.GetAsync(parse.GetValue(key)!, ct));
            return ExitCodes.Ok;
        },
        async (parse, api, ct) =>
        {
            using var response = await api.SendAsync(HttpMethod.Get, HttpApi.KeyPath(parse.GetValue(key)!), null, ct);
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            Print(parse, response.Content.Headers.ContentType?.MediaType == "application/octet-stream"
                ? MsgValue.Bin(bytes)
                : MsgValueJson.Parse(Encoding.UTF8.GetString(bytes)));
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
        async (parse, api, ct) =>
        {
            using var body = HttpApi.Json(MsgValueJson.ToJson(stored!));
            using var response = await api.SendAsync(HttpMethod.Put, HttpApi.KeyPath(parse.GetValue(key)!), body, ct);
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
        },
        async (parse, api, ct) =>
        {
            using var response = await api.SendAsync(HttpMethod.Delete, HttpApi.KeyPath(parse.GetValue(key)!), null, ct);
            parse.InvocationConfiguration.Output.WriteLine("deleted");
            return ExitCodes.Ok;
        });
    }

    public static Command Keys() =>
        Verb("keys", "List the keys: with --ring those the ring announced (notify broadcasts), with --http those the silos store.", [], [], (parse, node, _) =>
        {
            foreach (var key in node.Keys.Select(Render).Order(StringComparer.Ordinal))
            {
                parse.InvocationConfiguration.Output.WriteLine(key);
            }

            return Task.FromResult(ExitCodes.Ok);
        },
        async (parse, api, ct) =>
        {
            // Page through GET /keys until the silo says there is no next page.
            string? after = null;
            do
            {
                var path = $"keys?limit={KeysPage}" + (after is null ? string.Empty : $"&after={Uri.EscapeDataString(after)}");
                using var page = await api.GetJsonAsync(path, ct);
                foreach (var key in page.RootElement.GetProperty("keys").EnumerateArray())
                {
                    parse.InvocationConfiguration.Output.WriteLine(key.GetString());
                }

                after = page.RootElement.TryGetProperty("next", out var next) && next.ValueKind == JsonValueKind.String ? next.GetString() : null;
            }
            while (after is not null);
            return ExitCodes.Ok;
        });

    private const int KeysPage = 1000;

    private static void Print(ParseResult parse, MsgValue value) =>
        parse.InvocationConfiguration.Output.WriteLine(value.Kind == MsgKind.Str ? value.AsString() : MsgValueJson.ToJson(value));

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
        Func<ParseResult, RingNode, CancellationToken, Task<int>> operation,
        Func<ParseResult, HttpApi, CancellationToken, Task<int>> httpOperation,
        Func<ParseResult, string?>? validate = null)
    {
        var ring = CliOptions.Ring();
        var http = CliOptions.Http();
        var timeout = CliOptions.Timeout();
        var subnet = CliOptions.Subnet();
        var secret = CliOptions.ClusterSecret();
        var allowUnauthenticated = CliOptions.AllowUnauthenticatedPeers();
        var tlsCertificate = CliOptions.TlsCertificate();
        var tlsPassword = CliOptions.TlsCertificatePassword();
        var verbose = CliOptions.Verbose();
        var command = new Command(name, description);
        foreach (var argument in arguments)
        {
            command.Arguments.Add(argument);
        }

        foreach (var option in extra.Append(ring).Append(http).Append(timeout).Append(subnet).Append(secret).Append(allowUnauthenticated)
                     .Append(tlsCertificate).Append(tlsPassword).Append(verbose))
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parse, cancellationToken) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var ringText = parse.GetValue(ring);
            var httpText = parse.GetValue(http);
            if ((ringText is null) == (httpText is null))
            {
                await error.WriteLineAsync($"chord: {name} needs exactly one of --ring host:port (join the ring as a client) or --http URL (go through a silo's HTTP API, for example --http http://127.0.0.1:8080).");
                return ExitCodes.Usage;
            }

            PeerAddress? seed = null;
            Uri? api = null;
            if (ringText is not null && (seed = CliOptions.ParseAddress(ringText, "--ring", error)) is null)
            {
                return ExitCodes.Usage;
            }

            if (httpText is not null && (api = HttpApi.ParseBase(httpText, out var badUrl)) is null)
            {
                await error.WriteLineAsync($"chord: {badUrl}");
                return ExitCodes.Usage;
            }

            if (validate?.Invoke(parse) is { } problem)
            {
                await error.WriteLineAsync($"chord: {problem}");
                return ExitCodes.Usage;
            }

            var seconds = parse.GetValue(timeout);
            var mesh = new MeshOptions();
            if (CliOptions.ApplySecurity(mesh, parse.GetValue(secret), parse.GetValue(allowUnauthenticated), parse.GetValue(tlsCertificate), parse.GetValue(tlsPassword)) is { } insecure)
            {
                await error.WriteLineAsync($"chord: {insecure}");
                return ExitCodes.Usage;
            }

            return api is not null
                ? await RunHttpAsync(parse, api, TimeSpan.FromSeconds(seconds), httpOperation, cancellationToken)
                : await RunRingAsync(parse, seed!.Value, seconds, parse.GetValue(subnet)!, parse.GetValue(verbose), mesh, operation, cancellationToken);
        });
        return command;
    }

    /// <summary>Runs an HTTP operation; the silo's problem details become the message, its status the exit code.</summary>
    internal static async Task<int> RunHttpAsync(ParseResult parse, Uri address, TimeSpan timeout,
        Func<ParseResult, HttpApi, CancellationToken, Task<int>> operation, CancellationToken cancellationToken)
    {
        using var api = new HttpApi(address, timeout);
        try
        {
            return await operation(parse, api, cancellationToken);
        }
        catch (HttpApiException e)
        {
            await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {e.Message}");
            return e.ExitCode;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: the silo at {address} answered in an unexpected form: {e.Message}");
            return ExitCodes.RingError;
        }
    }

    private static async Task<int> RunRingAsync(ParseResult parse, PeerAddress seed, double seconds, string subnet, bool verbose, MeshOptions mesh,
        Func<ParseResult, RingNode, CancellationToken, Task<int>> operation, CancellationToken cancellationToken)
    {
        using var logging = CliOptions.Logging(verbose);
        var options = new RingOptions { RequestTimeout = TimeSpan.FromSeconds(seconds), Mesh = mesh };
        options.Mesh.Subnet = subnet;
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

            var code = await operation(parse, node, cancellationToken);

            // A write's notify broadcast is queued after its acknowledgement; the seed reads a connection in order,
            // so its pong means it has the broadcast too, and 'keys' through it lists the key at once.
            using var flush = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            flush.CancelAfter(options.RequestTimeout);
            try
            {
                await peer.PingAsync(flush.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or MeshConnectException or IOException or ObjectDisposedException)
            {
                // The operation is done; only 'keys' through this seed may miss the key.
            }

            return code;
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
    }
}
