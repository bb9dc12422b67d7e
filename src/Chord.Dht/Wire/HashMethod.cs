namespace Chord.Dht.Wire;

/// <summary>The five hash methods that place a key at five ring positions (PROTOCOL.md §2).</summary>
public enum HashMethod : byte
{
    /// <summary><c>sha1(k) &lt;&lt; 224</c>.</summary>
    Sha1,
    /// <summary><c>sha224(k) &lt;&lt; 160</c>.</summary>
    Sha224,
    /// <summary><c>sha256(k) &lt;&lt; 128</c>.</summary>
    Sha256,
    /// <summary><c>sha384(k)</c>.</summary>
    Sha384,
    /// <summary><c>sha512(k)</c>, 512 bits wide, never reduced on the wire.</summary>
    Sha512,
}
