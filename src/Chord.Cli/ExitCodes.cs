namespace Chord.Cli;

/// <summary>The exit codes of the chord command: 0 ok, 1 not found, 2 bad usage, 3 ring error.</summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;
    /// <summary>The key has no value.</summary>
    public const int NotFound = 1;
    /// <summary>The command line is wrong.</summary>
    public const int Usage = 2;
    /// <summary>The ring could not be reached or did not answer.</summary>
    public const int RingError = 3;
}
