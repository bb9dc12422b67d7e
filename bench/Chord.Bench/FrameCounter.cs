using System.Diagnostics.Metrics;
using Chord.Dht.Mesh;

namespace Chord.Bench;

/// <summary>
/// Frames and bytes every ring node in this process sends, from the <c>Chord.Dht</c> meter
/// (<c>chord.mesh.frames_out</c>, <c>chord.mesh.bytes_out</c>) through a <see cref="MeterListener"/>.
/// </summary>
public sealed class FrameCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _frames;
    private long _bytes;
    private long _flushes;

    public FrameCounter()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeshMetrics.MeterName && instrument.Name is "chord.mesh.frames_out" or "chord.mesh.bytes_out" or "chord.mesh.flushes")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "chord.mesh.frames_out")
            {
                Interlocked.Add(ref _frames, value);
            }
            else if (instrument.Name == "chord.mesh.flushes")
            {
                Interlocked.Add(ref _flushes, value);
            }
            else
            {
                Interlocked.Add(ref _bytes, value);
            }
        });
        _listener.Start();
    }

    public long Frames => Interlocked.Read(ref _frames);

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Writes of queued frames to a connection (<c>chord.mesh.flushes</c>): frames per flush is how well sends coalesce.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    public void Dispose() => _listener.Dispose();
}
