using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Chord.Dht.Wire;

/// <summary>Protocol ids and node ids (PROTOCOL.md §2).</summary>
public static class NodeIdentity
{
    /// <summary>The protocol version this project speaks.</summary>
    public const string ProtocolVersion = "0.7";

    /// <summary>The only encryption this project speaks.</summary>
    public const string Plaintext = "Plaintext";

    /// <summary><c>base58int(SHA-256(subnet + encryption + "0.7"))</c>.</summary>
    public static string ProtocolId(string subnet, string encryption = Plaintext)
    {
        ArgumentNullException.ThrowIfNull(subnet);
        ArgumentNullException.ThrowIfNull(encryption);
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(subnet + encryption + ProtocolVersion));
        return Base58.Encode(new BigInteger(digest, isUnsigned: true, isBigEndian: true));
    }

    /// <summary>
    /// <c>base58int(SHA-384(repr((host, port)) + protocolId + salt))</c>, with the Python repr of the address tuple.
    /// </summary>
    public static string NodeId(string host, int port, string protocolId, string salt)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(protocolId);
        ArgumentNullException.ThrowIfNull(salt);
        var text = PythonAddressRepr(host, port) + protocolId + salt;
        var digest = SHA384.HashData(Encoding.UTF8.GetBytes(text));
        return Base58.Encode(new BigInteger(digest, isUnsigned: true, isBigEndian: true));
    }

    /// <summary>A new random salt in the form py2p draws (a UUID's text).</summary>
    public static string NewSalt() => Guid.NewGuid().ToString();

    /// <summary>Python's <c>repr(('127.0.0.1', 4444))</c>.</summary>
    internal static string PythonAddressRepr(string host, int port)
    {
        // Python quotes with ' unless the text holds a ' and no ", then with ".
        var quote = host.Contains('\'', StringComparison.Ordinal) && !host.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var escaped = quote == '\'' ? host.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) : host;
        return string.Create(CultureInfo.InvariantCulture, $"({quote}{escaped}{quote}, {port})");
    }
}
