using System.CommandLine;

namespace Chord.Cli;

/// <summary>The chord command as a callable: the program's entry point, and what tests run in-process.</summary>
public static class ChordCli
{
    /// <summary>Parses and runs one command line; returns its exit code (<see cref="ExitCodes"/>).</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="output">Where results go (stdout for the program).</param>
    /// <param name="error">Where errors go (stderr for the program).</param>
    /// <param name="cancellationToken">Stops a running node as Ctrl+C does.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("chord: a node of the py2p-compatible chord ring, and a client for it.")
        {
            NodeCommand.Create(),
            KeyCommands.Get(),
            KeyCommands.Set(),
            KeyCommands.Delete(),
            KeyCommands.Keys(),
            RingCommand.Create(),
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            if (parsed.CommandResult.Command == root && parsed.UnmatchedTokens.Count > 0)
            {
                // "chord frob": one error naming the word and the commands, not "no command" beside "unrecognized".
                await error.WriteLineAsync($"chord: unknown command '{parsed.UnmatchedTokens[0]}'; the commands are {string.Join(", ", root.Subcommands.Select(c => c.Name))}. Run 'chord --help' for usage.");
                return ExitCodes.Usage;
            }

            foreach (var problem in parsed.Errors)
            {
                await error.WriteLineAsync($"chord: {problem.Message}");
            }

            await error.WriteLineAsync("Run 'chord --help' for usage.");
            return ExitCodes.Usage;
        }

        // Ctrl+C and SIGTERM cancel the action's token; a node then needs time to hand its data off.
        var configuration = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            ProcessTerminationTimeout = TimeSpan.FromSeconds(40),
        };
        return await parsed.InvokeAsync(configuration, cancellationToken);
    }
}
