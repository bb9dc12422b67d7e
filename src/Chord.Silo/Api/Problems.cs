namespace Chord.Silo.Api;

/// <summary>Problem-details (RFC 7807) results with the API's titles.</summary>
internal static class Problems
{
    public static IResult BadRequest(string detail) =>
        Results.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "Bad request");

    public static IResult NotFound(string detail) =>
        Results.Problem(detail: detail, statusCode: StatusCodes.Status404NotFound, title: "Not found");

    public static IResult TooLarge(long length, int maxBytes) => Results.Problem(
        detail: $"The body is {length} bytes; a value may be at most {maxBytes} bytes (the ring's largest frame, Chord:MaxFrameLength, less room for the message around it).",
        statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "Value too large");
}
