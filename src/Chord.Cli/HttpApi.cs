using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Chord.Cli;

/// <summary>
/// A client of a silo's HTTP API (the Chord.Silo host), for the verbs given <c>--http</c>. It knows the API's
/// routes and JSON shapes, nothing of Orleans.
/// </summary>
internal sealed class HttpApi : IDisposable
{
    private readonly HttpClient _client;

    public HttpApi(Uri baseAddress, TimeSpan timeout)
    {
        BaseAddress = baseAddress;
        _client = new HttpClient { BaseAddress = baseAddress, Timeout = timeout };
        _client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/octet-stream"));
        _client.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/problem+json"));
    }

    public Uri BaseAddress { get; }

    /// <summary>The path of a key's route, the key percent-encoded as one segment.</summary>
    public static string KeyPath(string key, string? suffix = null) => $"kv/{Uri.EscapeDataString(key)}{(suffix is null ? string.Empty : "/" + suffix)}";

    /// <summary>Parses --http: an absolute http or https URL; null (and the reason) otherwise.</summary>
    public static Uri? ParseBase(string text, out string? problem)
    {
        problem = null;
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.Query.Length == 0)
        {
            return new Uri(uri.ToString().TrimEnd('/') + "/");
        }

        problem = $"--http: '{text}' is not a silo's HTTP address; give an http:// or https:// URL, for example http://127.0.0.1:8080.";
        return null;
    }

    /// <summary>Sends one request; a failure status becomes an <see cref="HttpApiException"/> carrying the problem's detail.</summary>
    /// <exception cref="HttpApiException">The silo answered with an error, or could not be reached.</exception>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        HttpResponseMessage response;
        try
        {
            response = await _client.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new HttpApiException(null, $"the silo at {BaseAddress} could not be reached: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpApiException(null, $"the silo at {BaseAddress} did not answer within {_client.Timeout.TotalSeconds:0.#} s");
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new HttpApiException(response.StatusCode, $"{Detail(body) ?? response.ReasonPhrase} ({(int)response.StatusCode} from {method} {new Uri(BaseAddress, path)})");
        }
    }

    /// <summary>GET a JSON document.</summary>
    public async Task<JsonDocument> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, path, null, cancellationToken);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        try
        {
            return await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken);
        }
        catch (JsonException e)
        {
            throw new HttpApiException(HttpStatusCode.BadGateway, $"the silo at {BaseAddress} answered {path} with something that is not JSON: {e.Message}");
        }
    }

    /// <summary>GET /health: the silo's health report, which it sends with 200 (healthy, degraded) or 503 (unhealthy).</summary>
    /// <exception cref="HttpApiException">The silo could not be reached, or answered with another status or something else than JSON.</exception>
    public async Task<JsonDocument> GetHealthAsync(CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _client.GetAsync("health", cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new HttpApiException(null, $"the silo at {BaseAddress} could not be reached: {e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpApiException(null, $"the silo at {BaseAddress} did not answer within {_client.Timeout.TotalSeconds:0.#} s");
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable))
            {
                throw new HttpApiException(response.StatusCode, $"{Detail(body) ?? response.ReasonPhrase} ({(int)response.StatusCode} from GET {new Uri(BaseAddress, "health")})");
            }

            try
            {
                return JsonDocument.Parse(body);
            }
            catch (JsonException e)
            {
                throw new HttpApiException(HttpStatusCode.BadGateway, $"the silo at {BaseAddress} answered health with something that is not JSON: {e.Message}");
            }
        }
    }

    /// <summary>A JSON body.</summary>
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public void Dispose() => _client.Dispose();

    /// <summary>The problem details' detail (or title), when the body is one.</summary>
    private static string? Detail(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var name in (string[])["detail", "title"])
                {
                    if (document.RootElement.TryGetProperty(name, out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        return text.GetString();
                    }
                }
            }
        }
        catch (JsonException)
        {
        }

        return string.IsNullOrWhiteSpace(body) ? null : body.Trim();
    }
}
