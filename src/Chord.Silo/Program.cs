using Chord.Silo;

return await ChordHost.RunAsync(args, Console.Out, Console.Error);
