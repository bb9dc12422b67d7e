using BenchmarkDotNet.Running;

namespace Chord.Bench.Micro;

/// <summary>
/// Entry point. Run in Release, for example:
/// <c>dotnet run -c Release --project bench/Chord.Bench.Micro -- --filter '*' --job short</c>.
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
