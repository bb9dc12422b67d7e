namespace Chord.Dht.Tests.Linearizability;

/// <summary>
/// One operation of a client on one key of a register store, with its real-time interval
/// [<see cref="InvokedAt"/>, <see cref="RespondedAt"/>] in ticks of a monotonic clock (for example <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>).
/// </summary>
public sealed record Operation
{
    /// <summary>The response time of an operation whose outcome is unknown: it may take effect at any later point.</summary>
    public const long Infinity = long.MaxValue;

    /// <summary>Identifies the operation in explanations; <see cref="History"/> numbers operations in the order they were added.</summary>
    public long Id { get; init; }

    /// <summary>The client (process, connection, node...) that issued the operation.</summary>
    public required string Client { get; init; }

    /// <summary>The key of the register; histories of different keys are checked independently.</summary>
    public string Key { get; init; } = "";

    /// <summary>What the client asked for.</summary>
    public required OperationKind Kind { get; init; }

    /// <summary>
    /// <see cref="OperationKind.Write"/>: the value written. <see cref="OperationKind.Read"/>: the value returned (null = not found).
    /// <see cref="OperationKind.CompareAndSet"/>: the new value. <see cref="OperationKind.Delete"/>: unused (null).
    /// </summary>
    public string? Value { get; init; }

    /// <summary><see cref="OperationKind.CompareAndSet"/> only: the value the register had to hold for the swap (null = absent).</summary>
    public string? Expected { get; init; }

    /// <summary><see cref="OperationKind.CompareAndSet"/> with outcome <see cref="OperationOutcome.Ok"/> only: whether the swap happened.</summary>
    public bool Swapped { get; init; }

    /// <summary>When the client issued the request (before anything was sent).</summary>
    public required long InvokedAt { get; init; }

    /// <summary>
    /// When the client got the response (or gave up). The checker treats it as <see cref="Infinity"/> when the outcome is
    /// <see cref="OperationOutcome.Unknown"/>, whatever is recorded here.
    /// </summary>
    public long RespondedAt { get; init; } = Infinity;

    /// <summary>What the client learnt about the operation.</summary>
    public OperationOutcome Outcome { get; init; } = OperationOutcome.Ok;

    /// <summary>A completed write of <paramref name="value"/>.</summary>
    public static Operation Write(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        new() { Client = client, Key = key, Kind = OperationKind.Write, Value = value, InvokedAt = invokedAt, RespondedAt = respondedAt };

    /// <summary>A completed read that returned <paramref name="value"/> (null = not found).</summary>
    public static Operation Read(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        new() { Client = client, Key = key, Kind = OperationKind.Read, Value = value, InvokedAt = invokedAt, RespondedAt = respondedAt };

    /// <summary>A completed delete.</summary>
    public static Operation Delete(string client, long invokedAt, long respondedAt, string key = "") =>
        new() { Client = client, Key = key, Kind = OperationKind.Delete, InvokedAt = invokedAt, RespondedAt = respondedAt };

    /// <summary>A completed compare-and-set that reported <paramref name="swapped"/>.</summary>
    public static Operation CompareAndSet(
        string client, string? expected, string? newValue, bool swapped, long invokedAt, long respondedAt, string key = "") =>
        new()
        {
            Client = client,
            Key = key,
            Kind = OperationKind.CompareAndSet,
            Expected = expected,
            Value = newValue,
            Swapped = swapped,
            InvokedAt = invokedAt,
            RespondedAt = respondedAt,
        };

    /// <summary>A write that timed out: it may take effect at any point after <paramref name="invokedAt"/>, or never.</summary>
    public static Operation UnknownWrite(string client, string? value, long invokedAt, string key = "") =>
        new() { Client = client, Key = key, Kind = OperationKind.Write, Value = value, InvokedAt = invokedAt, Outcome = OperationOutcome.Unknown };

    /// <summary>A write that definitely did not take effect.</summary>
    public static Operation FailedWrite(string client, string? value, long invokedAt, long respondedAt, string key = "") =>
        new()
        {
            Client = client,
            Key = key,
            Kind = OperationKind.Write,
            Value = value,
            InvokedAt = invokedAt,
            RespondedAt = respondedAt,
            Outcome = OperationOutcome.Failed,
        };

    /// <summary>Formats a register value: quoted, or &lt;none&gt; for null.</summary>
    public static string FormatValue(string? value) => value is null ? "<none>" : $"'{value}'";

    /// <summary>The operation without its timing, e.g. <c>c1 read k -> 'a'</c>.</summary>
    public string Describe()
    {
        var key = Key.Length == 0 ? "" : $" [{Key}]";
        var what = Kind switch
        {
            OperationKind.Read => Outcome == OperationOutcome.Ok ? $"read -> {FormatValue(Value)}" : "read",
            OperationKind.Write => $"write {FormatValue(Value)}",
            OperationKind.Delete => "delete",
            OperationKind.CompareAndSet => $"cas {FormatValue(Expected)} -> {FormatValue(Value)}"
                + (Outcome == OperationOutcome.Ok ? (Swapped ? " swapped" : " not swapped") : ""),
            _ => Kind.ToString(),
        };
        var outcome = Outcome == OperationOutcome.Ok ? "" : $" ({Outcome.ToString().ToLowerInvariant()})";
        return $"#{Id} {Client}{key} {what}{outcome}";
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Describe()} @[{InvokedAt}, {FormatTime(RespondedAt)}]";

    private static string FormatTime(long ticks) => ticks == Infinity ? "inf" : ticks.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
