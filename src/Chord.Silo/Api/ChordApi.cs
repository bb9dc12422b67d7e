using System.Text.Json;
using Chord.Grains.Hosting;
using Chord.Interfaces;
using Chord.Silo.Health;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Chord.Silo.Api;

/// <summary>
/// The HTTP API: minimal-API routes that call the key and ring grains through this silo's grain factory.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>PUT /kv/{key}</c>: a JSON body, raw bytes (<c>application/octet-stream</c>) or text (<c>text/plain</c>); 204.
/// With <c>If-Match: "version"</c> (or <c>If-None-Match: *</c>) it is a compare-and-set: 412 when the key is at another version.</item>
/// <item><c>GET /kv/{key}</c>: 200 with the value as JSON (a bin as raw bytes, octet-stream) and its version as ETag; 404.</item>
/// <item><c>DELETE /kv/{key}</c>: 204; 404 when the key had no value.</item>
/// <item><c>POST /kv/{key}/delta</c>: a JSON object merged into the stored map; 200 with the merged map.</item>
/// <item><c>GET /kv/{key}/inspect</c>: each of the five positions beside the decision.</item>
/// <item><c>GET /keys?after=&amp;limit=</c>: a page of keys in ordinal order and the next page's <c>after</c>.</item>
/// <item><c>GET /ring</c>: the members with silo, storing flag, key count and share.</item>
/// <item><c>GET /health/live</c>: 200 while the process is up. <c>GET /health/ready</c>: 200 when this silo can serve
/// keys (the membership store answers and lists it active, its ring node is storing, the recent key operations did
/// not mostly fail), 503 otherwise. <c>GET /health</c>: the same as ready, with every check's details in JSON.</item>
/// <item><c>GET /</c>: a status page (HTML) with the ring as a table.</item>
/// </list>
/// Errors are problem details (RFC 7807).
/// </remarks>
internal static class ChordApi
{
    private const int FrameOverhead = 64 * 1024;

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    public static IServiceCollection AddChordApi(this IServiceCollection services)
    {
        services.AddProblemDetails();
        services.AddExceptionHandler<ChordExceptionHandler>();
        services.AddHostHealthChecks();
        return services;
    }

    public static WebApplication MapChordApi(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();

        app.MapGet("/", StatusPage.RenderAsync);
        app.MapPut("/kv/{key?}", PutAsync).AddEndpointFilter(Measured("put"));
        app.MapGet("/kv/{key?}", GetAsync).AddEndpointFilter(Measured("get"));
        app.MapDelete("/kv/{key?}", DeleteAsync).AddEndpointFilter(Measured("delete"));
        app.MapPost("/kv/{key}/delta", DeltaAsync).AddEndpointFilter(Measured("delta"));
        app.MapGet("/kv/{key}/inspect", InspectAsync).AddEndpointFilter(Measured("inspect"));
        app.MapGet("/keys", KeysAsync);
        app.MapGet("/ring", RingAsync);
        app.MapHealthChecks("/health/live", HealthOptions(r => r.Tags.Contains(HostHealth.Live)));
        app.MapHealthChecks("/health/ready", HealthOptions(r => r.Tags.Contains(HostHealth.Ready)));
        app.MapHealthChecks("/health", HealthOptions(r => r.Tags.Contains(HostHealth.Ready)));
        return app;
    }

    private static HealthCheckOptions HealthOptions(Func<HealthCheckRegistration, bool> predicate) => new()
    {
        Predicate = predicate,
        ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
        },
        ResponseWriter = WriteHealthAsync,
    };

    /// <summary>Counts and times a key route's answers (<see cref="KeyOperations"/>), exceptions by the status they become.</summary>
    private static Func<EndpointFilterInvocationContext, EndpointFilterDelegate, ValueTask<object?>> Measured(string operation) => async (context, next) =>
    {
        var operations = context.HttpContext.RequestServices.GetRequiredService<KeyOperations>();
        var started = operations.Start();
        try
        {
            var result = await next(context);
            operations.Record(operation, (result as IStatusCodeHttpResult)?.StatusCode ?? StatusCodes.Status200OK, operations.Elapsed(started));
            return result;
        }
        catch (Exception e)
        {
            operations.Record(operation, ChordExceptionHandler.Classify(e).Status, operations.Elapsed(started));
            throw;
        }
    };

    private static async Task<IResult> PutAsync(HttpContext context, IGrainFactory grains, IOptions<ChordOptions> options)
    {
        if (RequestValues.Key(context) is not { } key || string.IsNullOrWhiteSpace(key))
        {
            return RequestValues.EmptyKey(RequestValues.Key(context));
        }

        var (value, problem) = await RequestValues.ReadValueAsync(context.Request, MaxValueBytes(options), context.RequestAborted);
        if (problem is not null)
        {
            return problem;
        }

        var (expected, badCondition) = RequestValues.Precondition(context.Request);
        if (badCondition is not null)
        {
            return badCondition;
        }

        var grain = grains.GetGrain<IChordKeyGrain>(key);
        if (expected is { } version)
        {
            return Conditional(context, key, version, await grain.SetIfVersion(value, version));
        }

        await grain.Set(value!);
        return Results.NoContent();
    }

    /// <summary>The answer to a version-checked write: 204 with the new ETag, or 412 with the version the key holds.</summary>
    private static IResult Conditional(HttpContext context, string key, ChordVersion expected, ChordCasResult result)
    {
        if (!result.Current.Version.IsNone)
        {
            context.Response.Headers.ETag = $"\"{result.Current.Version}\"";
        }

        return result.Succeeded
            ? Results.NoContent()
            : Results.Problem(
                detail: $"The key '{key}' is at version {(result.Current.Version.IsNone ? "none (no value)" : result.Current.Version.ToString())}, not {(expected.IsNone ? "none (If-None-Match: *)" : expected.ToString())}; nothing was written. GET it for the current ETag and retry.",
                statusCode: StatusCodes.Status412PreconditionFailed,
                title: "Version mismatch");
    }

    private static async Task<IResult> GetAsync(HttpContext context, IGrainFactory grains)
    {
        if (RequestValues.Key(context) is not { } key || string.IsNullOrWhiteSpace(key))
        {
            return RequestValues.EmptyKey(RequestValues.Key(context));
        }

        var read = await grains.GetGrain<IChordKeyGrain>(key).GetVersioned();
        if (read.Value is not { } value)
        {
            return Problems.NotFound($"The key '{key}' has no value.");
        }

        if (!read.Version.IsNone)
        {
            context.Response.Headers.ETag = $"\"{read.Version}\"";
        }

        return value.Kind == Dht.Wire.MsgKind.Bin
            ? Results.Bytes(value.AsBytes(), RequestValues.OctetStream)
            : Results.Text(value.ToJson(), "application/json");
    }

    private static async Task<IResult> DeleteAsync(HttpContext context, IGrainFactory grains)
    {
        if (RequestValues.Key(context) is not { } key || string.IsNullOrWhiteSpace(key))
        {
            return RequestValues.EmptyKey(RequestValues.Key(context));
        }

        var (expected, badCondition) = RequestValues.Precondition(context.Request);
        if (badCondition is not null)
        {
            return badCondition;
        }

        if (expected is { } version)
        {
            return Conditional(context, key, version, await grains.GetGrain<IChordKeyGrain>(key).SetIfVersion(null, version));
        }

        return await grains.GetGrain<IChordKeyGrain>(key).Delete()
            ? Results.NoContent()
            : Problems.NotFound($"The key '{key}' has no value; nothing was deleted.");
    }

    private static async Task<IResult> DeltaAsync(HttpContext context, IGrainFactory grains, IOptions<ChordOptions> options)
    {
        if (RequestValues.Key(context) is not { } key || string.IsNullOrWhiteSpace(key))
        {
            return RequestValues.EmptyKey(RequestValues.Key(context));
        }

        var (delta, problem) = await RequestValues.ReadDeltaAsync(context.Request, MaxValueBytes(options), context.RequestAborted);
        if (problem is not null)
        {
            return problem;
        }

        var merged = await grains.GetGrain<IChordKeyGrain>(key).ApplyDelta(delta!);
        return Results.Text(merged.ToJson(), "application/json");
    }

    private static async Task<IResult> InspectAsync(HttpContext context, IGrainFactory grains)
    {
        if (RequestValues.Key(context) is not { } key || string.IsNullOrWhiteSpace(key))
        {
            return RequestValues.EmptyKey(RequestValues.Key(context));
        }

        var inspection = await grains.GetGrain<IChordKeyGrain>(key).Inspect();
        return Results.Json(ApiViews.Inspection(inspection), Web);
    }

    private static async Task<IResult> KeysAsync(HttpContext context, IGrainFactory grains)
    {
        var (limit, problem) = RequestValues.Limit(context.Request.Query["limit"]);
        if (problem is not null)
        {
            return problem;
        }

        var after = context.Request.Query["after"].ToString();
        var page = await grains.GetGrain<IChordRingGrain>(0).ListKeys(string.IsNullOrEmpty(after) ? null : after, limit);
        return Results.Json(new KeyPageView(page.Keys, page.Next), Web);
    }

    private static async Task<IResult> RingAsync(IGrainFactory grains) =>
        Results.Json(ApiViews.Ring(await grains.GetGrain<IChordRingGrain>(0).GetStatus()), Web);

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        static string Status(HealthStatus status) => status switch
        {
            HealthStatus.Healthy => "healthy",
            HealthStatus.Degraded => "degraded",
            _ => "unhealthy",
        };

        object? Data(string check, string name) =>
            report.Entries.TryGetValue(check, out var entry) ? entry.Data.GetValueOrDefault(name) : null;
        var problems = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy)
            .Select(e => $"{e.Key}: {e.Value.Description ?? e.Value.Exception?.Message}")
            .ToList();
        var view = new HealthView(
            Status(report.Status),
            Data("ring", "nodeId") as string,
            Data("ring", "ringAddress") as string,
            Data("ring", "storing") is true,
            Data("ring", "storingMembers") as int? ?? 0,
            Data("membership", "activeSilos") as int? ?? 0,
            problems.Count == 0 ? null : string.Join("; ", problems),
            report.Entries.ToDictionary(
                e => e.Key,
                e => new HealthCheckView(Status(e.Value.Status), e.Value.Description, e.Value.Data.Count == 0 ? null : e.Value.Data)));
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(view, Web);
    }

    private static int MaxValueBytes(IOptions<ChordOptions> options) => Math.Max(1024, options.Value.MaxFrameLength - FrameOverhead);
}
