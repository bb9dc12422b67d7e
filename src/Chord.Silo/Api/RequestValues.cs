using System.Globalization;
using System.Text;
using System.Text.Json;
using Chord.Dht.Wire;
using Chord.Interfaces;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Chord.Silo.Api;

/// <summary>Reads keys, values and paging arguments from requests; each bad input becomes a 400 saying what is allowed.</summary>
internal static class RequestValues
{
    public const string OctetStream = "application/octet-stream";

    public const int DefaultPage = 100;

    public const int MaxPage = 10_000;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>
    /// The key: the path segment after <c>/kv/</c>, percent-decoded from the raw request target, so a key may hold
    /// any character (a '/' is sent as %2F) and decodes exactly once.
    /// </summary>
    public static string? Key(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? string.Empty;
        var query = raw.IndexOfAny(['?', '#']);
        var path = query >= 0 ? raw[..query] : raw;
        var start = path.IndexOf("/kv/", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        var segment = path[(start + 4)..];
        var slash = segment.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            segment = segment[..slash];
        }

        return segment.Length == 0 ? null : Uri.UnescapeDataString(segment);
    }

    /// <summary>The 400 for a missing key, or one of whitespace only (Orleans cannot name a grain by it).</summary>
    public static IResult EmptyKey(string? key = null) => key is { Length: > 0 }
        ? Problems.BadRequest($"The key is only whitespace ({key.Length} character{(key.Length == 1 ? string.Empty : "s")}: '{Uri.EscapeDataString(key)}' encoded); a key needs at least one other character (for example /kv/greeting, or /kv/a%20b for 'a b').")
        : Problems.BadRequest("The key is empty. Put the key in the path, percent-encoded: /kv/{key} (for example /kv/greeting, or /kv/a%2Fb for 'a/b').");

    /// <summary>
    /// The value of a PUT: raw bytes (a bin) with <c>application/octet-stream</c>, UTF-8 text (a str) with
    /// <c>text/plain</c>, and JSON otherwise (curl's -d default form type included).
    /// </summary>
    public static async Task<(ChordValue? Value, IResult? Problem)> ReadValueAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        var (body, tooLarge) = await ReadBodyAsync(request, maxBytes, cancellationToken);
        if (tooLarge is not null)
        {
            return (null, tooLarge);
        }

        var mediaType = MediaType(request);
        if (mediaType == OctetStream)
        {
            return (ChordValue.From(body), null);
        }

        if (mediaType == "text/plain")
        {
            try
            {
                return (ChordValue.From(StrictUtf8.GetString(body)), null);
            }
            catch (DecoderFallbackException)
            {
                return (null, Problems.BadRequest("The text/plain body is not valid UTF-8; send raw bytes with Content-Type: application/octet-stream instead."));
            }
        }

        var (value, problem) = ParseJson(body, "value");
        if (problem is not null)
        {
            return (null, problem);
        }

        return value!.IsNil
            ? (null, Problems.BadRequest("The value is JSON null, which means 'no value' on the ring; to remove the key, send DELETE /kv/{key}."))
            : (ChordValue.From(value), null);
    }

    /// <summary>The JSON object of a delta; anything else is a 400.</summary>
    public static async Task<(ChordValue? Delta, IResult? Problem)> ReadDeltaAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        var (body, tooLarge) = await ReadBodyAsync(request, maxBytes, cancellationToken);
        if (tooLarge is not null)
        {
            return (null, tooLarge);
        }

        var (value, problem) = ParseJson(body, "delta");
        if (problem is not null)
        {
            return (null, problem);
        }

        return value!.Kind != MsgKind.Map
            ? (null, Problems.BadRequest($"A delta must be a JSON object, whose entries are merged into the map stored at the key; got {Describe(value)}. Example: {{\"retries\": 3}}."))
            : (ChordValue.From(value), null);
    }

    /// <summary>
    /// The version a conditional write expects: <c>If-Match: "counter@writer"</c> (the ETag of a GET), or
    /// <see cref="ChordVersion.None"/> for <c>If-None-Match: *</c> (only when the key has no value); null for an
    /// unconditional write.
    /// </summary>
    public static (ChordVersion? Expected, IResult? Problem) Precondition(HttpRequest request)
    {
        var ifMatch = request.Headers.IfMatch.ToString();
        var ifNoneMatch = request.Headers.IfNoneMatch.ToString();
        if (ifMatch.Length > 0 && ifNoneMatch.Length > 0)
        {
            return (null, Problems.BadRequest("Give If-Match or If-None-Match, not both."));
        }

        if (ifNoneMatch.Length > 0)
        {
            return ifNoneMatch.Trim() == "*"
                ? (ChordVersion.None, null)
                : (null, Problems.BadRequest($"If-None-Match is '{ifNoneMatch}'; allowed: * (write only when the key has no value)."));
        }

        if (ifMatch.Length == 0)
        {
            return (null, null);
        }

        var tag = ifMatch.Trim();
        if (tag.StartsWith("W/", StringComparison.Ordinal))
        {
            tag = tag[2..];
        }

        try
        {
            return (ChordVersion.Parse(tag.Trim('"')), null);
        }
        catch (FormatException)
        {
            return (null, Problems.BadRequest($"If-Match is '{ifMatch}'; allowed: one ETag as GET /kv/{{key}} returns it, \"counter@writer\"."));
        }
    }

    /// <summary>The limit of GET /keys: 1 to <see cref="MaxPage"/>, <see cref="DefaultPage"/> when absent.</summary>
    public static (int Limit, IResult? Problem) Limit(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return (DefaultPage, null);
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit is >= 1 and <= MaxPage
            ? (limit, null)
            : (0, Problems.BadRequest($"limit is '{text}'; allowed: a whole number from 1 to {MaxPage} (default {DefaultPage})."));
    }

    private static (MsgValue? Value, IResult? Problem) ParseJson(byte[] body, string what)
    {
        if (body.Length == 0)
        {
            return (null, Problems.BadRequest(what == "delta"
                ? "The body is empty; send a JSON object to merge, for example {\"retries\": 3}."
                : "The body is empty; send a JSON value (for example \"hello\", 42 or {\"a\": 1}), or raw bytes with Content-Type: application/octet-stream."));
        }

        try
        {
            return (MsgValueJson.Parse(StrictUtf8.GetString(body)), null);
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or InvalidOperationException)
        {
            return (null, Problems.BadRequest($"The {what} is not valid JSON: {e.Message} Send JSON (bytes as {{\"$bin\": \"base64\"}}), or raw bytes with Content-Type: application/octet-stream."));
        }
        catch (FormatException e)
        {
            return (null, Problems.BadRequest($"The {what} has a {{\"$bin\": ...}} whose text is not base64: {e.Message}"));
        }
    }

    private static async Task<(byte[] Body, IResult? Problem)> ReadBodyAsync(HttpRequest request, int maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            return ([], Problems.TooLarge(request.ContentLength.Value, maxBytes));
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                return ([], Problems.TooLarge(buffer.Length + read, maxBytes));
            }

            buffer.Write(chunk, 0, read);
        }

        return (buffer.ToArray(), null);
    }

    private static string? MediaType(HttpRequest request) =>
        MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) ? parsed.MediaType.Value?.ToLowerInvariant() : null;

    private static string Describe(MsgValue value) => value.Kind switch
    {
        MsgKind.Array => "an array",
        MsgKind.Str => "a string",
        MsgKind.Int or MsgKind.Float => "a number",
        MsgKind.Bool => "a boolean",
        MsgKind.Nil => "null",
        MsgKind.Bin => "bytes ({\"$bin\": ...})",
        _ => value.Kind.ToString().ToLowerInvariant(),
    };
}
