using Chord.Cli;

return await ChordCli.RunAsync(args, Console.Out, Console.Error);
