namespace Chord.Silo;

/// <summary>A setting of the host (a flag, an environment variable or appsettings.json) is wrong; the message names it and says what is allowed.</summary>
public sealed class HostConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public HostConfigurationException(string message) : base(message) { }

    /// <summary>Creates the exception with every problem found.</summary>
    public HostConfigurationException(IReadOnlyList<string> problems)
        : base(string.Join(Environment.NewLine, problems)) => Problems = problems;

    /// <summary>Every problem found, one sentence each.</summary>
    public IReadOnlyList<string> Problems { get; } = [];
}
