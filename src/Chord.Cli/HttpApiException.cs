using System.Net;

namespace Chord.Cli;

/// <summary>A silo's HTTP API answered with an error, or could not be reached (no status).</summary>
internal sealed class HttpApiException(HttpStatusCode? status, string message) : Exception(message)
{
    /// <summary>The status the silo answered with; null when it was not reached.</summary>
    public HttpStatusCode? Status { get; } = status;

    /// <summary>The exit code: 1 for not found, 2 for input the silo refused, 3 for anything the ring or the silo could not do.</summary>
    public int ExitCode => Status switch
    {
        HttpStatusCode.NotFound => ExitCodes.NotFound,
        HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnsupportedMediaType => ExitCodes.Usage,
        _ => ExitCodes.RingError,
    };
}
