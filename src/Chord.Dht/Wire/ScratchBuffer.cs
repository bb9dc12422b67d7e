using System.Buffers;

namespace Chord.Dht.Wire;

/// <summary>
/// A per-thread buffer for packing a message or value before its bytes are copied out once. Packing into a fresh
/// <see cref="ArrayBufferWriter{T}"/> allocated it and every array it grew through, for every frame; this one grows
/// once per thread. Rent and return: a nested pack (none today) gets its own buffer instead of this thread's.
/// </summary>
internal static class ScratchBuffer
{
    private const int MaxKeptCapacity = 1 << 20; // a rare huge value is not kept alive by the thread

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _cached;

    public static ArrayBufferWriter<byte> Rent()
    {
        var buffer = _cached ?? new ArrayBufferWriter<byte>(1024);
        _cached = null;
        buffer.ResetWrittenCount();
        return buffer;
    }

    public static void Return(ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity <= MaxKeptCapacity)
        {
            _cached = buffer;
        }
    }
}
