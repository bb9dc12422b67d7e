using System.Globalization;

namespace Chord.Dht.Mesh;

/// <summary>A node's advertised address: the host and port others dial to reach it.</summary>
public readonly record struct PeerAddress(string Host, int Port)
{
    /// <summary>Parses <c>host:port</c> (IPv6 as <c>[::1]:port</c>); throws <see cref="FormatException"/> with the reason.</summary>
    public static PeerAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            throw new FormatException($"'{text}' is not an address: write host:port, for example 127.0.0.1:4444.");
        }

        var host = text[..colon].Trim('[', ']');
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 0 or > 65535)
        {
            throw new FormatException($"'{text}' has no valid port: ports are 0 to 65535.");
        }

        return new PeerAddress(host, port);
    }

    /// <inheritdoc />
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
