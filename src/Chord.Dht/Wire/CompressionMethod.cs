namespace Chord.Dht.Wire;

/// <summary>The compression flags of py2p 0.7 (PROTOCOL.md §3) that this project implements.</summary>
/// <remarks>
/// lzma (0x12) is not implemented: py2p writes Python's default .xz container, and no well-kept .NET package
/// both reads and writes it. We never advertise it, so a py2p peer never sends it to us.
/// </remarks>
public enum CompressionMethod : byte
{
    /// <summary>bzip2 (SharpZipLib).</summary>
    Bz2 = 0x10,
    /// <summary>gzip (System.IO.Compression).</summary>
    Gzip = 0x11,
    /// <summary>zlib (System.IO.Compression).</summary>
    Zlib = 0x13,
    /// <summary>Raw snappy blocks (Snappier), as python-snappy's <c>compress</c> writes them.</summary>
    Snappy = 0x20,
}
