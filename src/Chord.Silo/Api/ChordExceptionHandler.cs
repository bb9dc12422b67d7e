using Chord.Dht.Ring;
using Chord.Silo.Logging;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Orleans.Serialization;

namespace Chord.Silo.Api;

/// <summary>
/// Turns what the ring and Orleans throw into problem details: a disagreement of the key's positions is 409, too
/// few positions in time (reads, writes, Orleans call timeouts, silos going away) is 503, bad input is 400.
/// </summary>
internal sealed partial class ChordExceptionHandler(IProblemDetailsService problems, ILogger<ChordExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (status, title, detail) = Classify(exception);
        if (status >= 500)
        {
            // One line with the cause; the stack trace only at Debug (a ring short of owners is expected while a peer is down).
            Log.RingUnavailable(logger, httpContext.Request.Method, httpContext.Request.Path, status, OneLineConsoleFormatter.Cause(exception));
            Log.RingUnavailableDetail(logger, exception, httpContext.Request.Method, httpContext.Request.Path);
        }

        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            httpContext.Response.Headers.RetryAfter = "1";
        }

        httpContext.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails { Status = status, Title = title, Detail = detail },
        });
    }

    /// <summary>The status, title and detail for an exception, looking through Orleans' wrapping of exception types it could not rebuild.</summary>
    internal static (int Status, string Title, string Detail) Classify(Exception exception)
    {
        var type = exception is UnavailableExceptionFallbackException fallback ? fallback.ExceptionType ?? string.Empty : exception.GetType().FullName ?? string.Empty;
        // Orleans puts an inner exception's stack trace into some messages; the first line is what a client needs.
        var message = exception.Message.Split('\n', 2)[0].TrimEnd();
        if (Is<ChordKeyNotFoundException>(exception, type))
        {
            return (StatusCodes.Status404NotFound, "Not found", message);
        }

        if (Is<ChordNoMajorityException>(exception, type))
        {
            return (StatusCodes.Status409Conflict, "No majority",
                $"{message} The positions disagree (py2p owners without versions); GET /kv/{{key}}/inspect shows what each holds, and a new PUT settles it.");
        }

        if (Is<ChordWriteException>(exception, type))
        {
            // An owner refusing the write (a delta into a value that is not a map) is a conflict with what is stored;
            // so is another client's write of the key that overtook this one (it may or may not have landed: a read
            // tells); too few acknowledgements is the ring being short of owners, which may pass.
            if (message.Contains(ChordWriteException.MetConcurrentWrite, StringComparison.Ordinal))
            {
                return (StatusCodes.Status409Conflict, "Concurrent write", $"{message} Read the key (GET) and write again if it still needs to change.");
            }

            return message.Contains("refused", StringComparison.Ordinal)
                ? (StatusCodes.Status409Conflict, "Write refused", message)
                : (StatusCodes.Status503ServiceUnavailable, "Write not acknowledged", $"{message} Retry when the ring has recovered its owners.");
        }

        if (Is<ChordTimeoutException>(exception, type))
        {
            return (StatusCodes.Status503ServiceUnavailable, "Ring timeout", $"{message} Retry when the ring has recovered its owners.");
        }

        if (exception is TimeoutException)
        {
            return (StatusCodes.Status503ServiceUnavailable, "Timeout", $"The silo did not answer in time: {message}");
        }

        if (exception is SiloUnavailableException or OrleansMessageRejectionException or OperationCanceledException)
        {
            return (StatusCodes.Status503ServiceUnavailable, "Silo unavailable", $"The call could not be completed: {message}");
        }

        if (exception is BadHttpRequestException bad)
        {
            return (bad.StatusCode, "Bad request", message);
        }

        if (exception is ArgumentException || type.EndsWith(nameof(ArgumentException), StringComparison.Ordinal))
        {
            return (StatusCodes.Status400BadRequest, "Bad request", message);
        }

        return (StatusCodes.Status500InternalServerError, "Internal error", $"An unexpected {exception.GetType().Name}: {message}");
    }

    private static bool Is<T>(Exception exception, string type) where T : Exception =>
        exception is T || type == typeof(T).FullName;

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Method} {Path} failed with {Status}: {Cause}")]
        public static partial void RingUnavailable(ILogger logger, string method, string path, int status, string cause);

        [LoggerMessage(2, LogLevel.Debug, "{Method} {Path}: the exception")]
        public static partial void RingUnavailableDetail(ILogger logger, Exception exception, string method, string path);
    }
}
