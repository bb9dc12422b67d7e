namespace Chord.Silo;

/// <summary>
/// <c>Chord.Silo --probe URL</c>: one GET, exit 0 when it answers 200 and 1 otherwise, with one line saying which.
/// A container health check runs it with the host's own runtime (the ASP.NET Core image has no curl or wget);
/// it starts no silo.
/// </summary>
internal static class HostProbe
{
    /// <summary>How long the probe waits for the answer, connecting included.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>GETs <paramref name="url"/>; 0 when the answer is 200, 1 for any other answer or none.</summary>
    public static async Task<int> RunAsync(Uri url, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        using var http = new HttpClient { Timeout = Timeout };
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var status = (int)response.StatusCode;
            if (status == 200)
            {
                await output.WriteLineAsync($"Chord.Silo --probe: {url} answered 200 {response.ReasonPhrase}");
                return 0;
            }

            await error.WriteLineAsync($"Chord.Silo --probe: {url} answered {status} {response.ReasonPhrase} (200 expected)");
            return 1;
        }
        catch (HttpRequestException e)
        {
            await error.WriteLineAsync($"Chord.Silo --probe: {url} did not answer: {e.GetBaseException().Message}");
            return 1;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync($"Chord.Silo --probe: {url} did not answer within {Timeout.TotalSeconds:0} s");
            return 1;
        }
    }
}
