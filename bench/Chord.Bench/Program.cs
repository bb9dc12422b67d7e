using Chord.Bench;

return await BenchRunner.RunAsync(args, Console.Out);
