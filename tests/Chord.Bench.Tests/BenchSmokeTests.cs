namespace Chord.Bench.Tests;

// Skeleton: the load generator's smoke test (`--quick ring`) is written with bench/Chord.Bench (issue 7).
internal static class BenchSmokeTests;
