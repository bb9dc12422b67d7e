using System.CommandLine;
using Chord.Dht.Mesh;
using Chord.Dht.Ring;

namespace Chord.Cli;

/// <summary><c>chord node</c>: a bare storing ring node, no Orleans, which py2p nodes and clients can join.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Where to listen, as host:port (port 0: any free port).",
            DefaultValueFactory = _ => "127.0.0.1:4444",
        };
        var join = new Option<string[]>("--join")
        {
            Description = "A node of an existing ring to join through, as host:port; may be repeated.",
            AllowMultipleArgumentsPerToken = false,
        };
        var salt = new Option<string?>("--salt")
        {
            Description = "The salt of the node id; the same salt and address give the same id after a restart (default: random, as py2p).",
        };
        var dataDir = new Option<string?>("--data-dir")
        {
            Description = "Keep this node's entries in this directory (SQLite), so they survive a stop; default: in memory only.",
        };
        var subnet = CliOptions.Subnet();
        var secret = CliOptions.ClusterSecret();
        var allowUnauthenticated = CliOptions.AllowUnauthenticatedPeers();
        var tlsCertificate = CliOptions.TlsCertificate();
        var tlsPassword = CliOptions.TlsCertificatePassword();
        var verbose = CliOptions.Verbose();
        var command = new Command("node", "Run a storing ring node until Ctrl+C, then unjoin (hand its data off) and stop.")
        {
            listen, join, salt, dataDir, subnet, secret, allowUnauthenticated, tlsCertificate, tlsPassword, verbose,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (CliOptions.ParseAddress(parse.GetValue(listen)!, "--listen", parse.InvocationConfiguration.Error) is not { } address)
            {
                return ExitCodes.Usage;
            }

            var seeds = new List<PeerAddress>();
            foreach (var text in parse.GetValue(join) ?? [])
            {
                if (CliOptions.ParseAddress(text, "--join", parse.InvocationConfiguration.Error) is not { } seed)
                {
                    return ExitCodes.Usage;
                }

                seeds.Add(seed);
            }

            using var logging = CliOptions.Logging(parse.GetValue(verbose));
            var options = new RingOptions();
            options.Mesh.ListenHost = address.Host;
            options.Mesh.ListenPort = address.Port;
            options.Mesh.Subnet = parse.GetValue(subnet)!;
            options.Mesh.Salt = parse.GetValue(salt);
            var directory = parse.GetValue(dataDir);
            if (directory is { Length: 0 })
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("chord: --data-dir is empty; give a directory path, or leave it out to keep entries in memory.");
                return ExitCodes.Usage;
            }

            options.DataDirectory = directory;

            if (CliOptions.ApplySecurity(options.Mesh, parse.GetValue(secret), parse.GetValue(allowUnauthenticated), parse.GetValue(tlsCertificate), parse.GetValue(tlsPassword)) is { } problem)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {problem}");
                return ExitCodes.Usage;
            }

            await using var node = new RingNode(options, logging);
            try
            {
                await node.StartAsync(cancellationToken);
                var reached = new List<string>();
                foreach (var seed in seeds)
                {
                    var peer = await node.ConnectAsync(seed, cancellationToken);
                    if (peer.Id is { } id)
                    {
                        reached.Add(id);
                    }
                }

                // Learn the directory from the seeds before taking a share, so the handoff goes to the right owners
                // and the confirmation below counts the ring's members; at most LearnWait.
                using (var learning = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    learning.CancelAfter(LearnWait);
                    while (!learning.IsCancellationRequested && reached.Any(id => node.Members.All(m => m.Id != id)))
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(20), CancellationToken.None);
                    }
                }

                await node.JoinAsync();
            }
            catch (Exception e) when (e is MeshConnectException or System.Net.Sockets.SocketException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: {e.Message}");
                return ExitCodes.RingError;
            }

            parse.InvocationConfiguration.Output.WriteLine($"node {node.Id}");
            parse.InvocationConfiguration.Output.WriteLine($"listening on {node.Mesh.Address}, storing (subnet '{options.Mesh.Subnet}'), entries {(directory is null ? "in memory only" : $"kept in {directory}")}");
            parse.InvocationConfiguration.Output.WriteLine(options.Mesh.ClusterSecret is null
                ? "warning: authenticating with the built-in development secret; give --cluster-secret (or $" + CliOptions.ClusterSecretVariable + ") for a real ring"
                : "authenticating peers with the cluster secret");
            if (options.Mesh.TlsCertificatePath is { } certificate)
            {
                parse.InvocationConfiguration.Output.WriteLine($"ring connections are TLS with the certificate in {certificate}; peers must present the same one");
            }

            if (options.Mesh.Security == MeshSecurity.AllowUnauthenticated)
            {
                parse.InvocationConfiguration.Output.WriteLine("warning: serving unauthenticated (py2p) peers too (--allow-unauthenticated-peers)");
            }

            if (seeds.Count > 0)
            {
                parse.InvocationConfiguration.Output.WriteLine(JoinOutcome(node, seeds));
            }
            parse.InvocationConfiguration.Output.WriteLine($"try: chord set hello world --ring {node.Mesh.Address}"
                + (options.Mesh.TlsCertificatePath is { } path ? $" --tls-certificate {path}" : string.Empty) + "   (Ctrl+C stops this node)");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C or SIGTERM.
            }

            if (!node.Members.Any(m => m.IsStoring))
            {
                // Nobody to hand the entries to: say what becomes of them rather than fail an unjoin.
                var entries = node.StoredCount;
                parse.InvocationConfiguration.Output.WriteLine(directory is null
                    ? $"stopping: this is the ring's only storing node, so its {entries} entries are lost (they were in memory only; use --data-dir to keep them, or start another node with --join first to hand them off)"
                    : $"stopping: this is the ring's only storing node; its {entries} entries stay in {directory} for its next start");
                parse.InvocationConfiguration.Output.WriteLine("stopped");
                return ExitCodes.Ok;
            }

            parse.InvocationConfiguration.Output.WriteLine("unjoining: handing entries to their new owners…");
            try
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await node.UnjoinAsync(deadline.Token);
            }
            catch (Exception e) when (e is ChordWriteException or OperationCanceledException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"chord: unjoin incomplete: {e.Message}");
                return ExitCodes.RingError;
            }

            parse.InvocationConfiguration.Output.WriteLine("stopped");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>How long the node waits to learn the ring's members from its seeds before it takes its share.</summary>
    private static readonly TimeSpan LearnWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether the node joined a ring through its seeds: it did when it knows another storing member. Otherwise it
    /// reached no ring (the seeds answered but are not storing, or told it of no storing member in time), and it
    /// stores alone: a ring of one.
    /// </summary>
    private static string JoinOutcome(RingNode node, List<PeerAddress> seeds)
    {
        var through = string.Join(", ", seeds);
        var others = node.Members.Count(m => m.IsStoring);
        if (others > 0)
        {
            return $"joined the ring through {through}: {others} other storing member{(others == 1 ? string.Empty : "s")}, "
                + $"{node.StoredCount} entries handed to this node so far";
        }

        var known = node.Members.Count;
        return $"did not reach the ring through {through}: no storing member was learned within {LearnWait.TotalSeconds:0} s "
            + $"({(known == 0 ? "no other node known" : $"{known} other node{(known == 1 ? string.Empty : "s")} known, none storing")}); "
            + "this node stores alone, a ring of one, until other nodes join it";
    }
}
