namespace Chord.Dht.Mesh.Transport;

/// <summary>
/// A read-only view of a connection's stream that takes at most a budget of bytes from it, in all, until the budget is
/// lifted: a peer that has not authenticated can make the node hold no more than its pre-authentication budget, whatever
/// size one read of the pipe above would have taken. Once the budget is spent, the next read takes one byte to tell a
/// peer that sends more (<see cref="ReadBudgetExceededException"/>) from one that has closed (end of stream).
/// Writes go to the inner stream untouched.
/// </summary>
internal sealed class ReadBudgetStream(Stream inner) : Stream
{
    private const long Unlimited = long.MaxValue;

    private readonly byte[] _probe = new byte[1];
    private long _limit = Unlimited;
    private long _read; // bytes taken while the reads were capped (not counted once lifted)

    /// <summary>Caps the bytes taken from the inner stream, counted from its start, at <paramref name="total"/>.</summary>
    public void Limit(long total)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        Interlocked.Exchange(ref _limit, total);
    }

    /// <summary>Reads take whatever the inner stream has from now on.</summary>
    public void Lift() => Interlocked.Exchange(ref _limit, Unlimited);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Interlocked.Read(ref _limit) is var limit && limit == Unlimited
            ? inner.ReadAsync(buffer, cancellationToken) // served: the inner stream's own read, with nothing around it (no state machine per read)
            : LimitedReadAsync(buffer, limit, cancellationToken);

    private async ValueTask<int> LimitedReadAsync(Memory<byte> buffer, long limit, CancellationToken cancellationToken)
    {
        var room = limit - Interlocked.Read(ref _read);
        if (room > 0)
        {
            return Count(await inner.ReadAsync(buffer[..(int)Math.Min(room, buffer.Length)], cancellationToken));
        }

        // The budget is spent: a byte more is over it; none is the peer closing.
        var probe = await inner.ReadAsync(_probe, cancellationToken);
        if (probe == 0)
        {
            return 0;
        }

        throw new ReadBudgetExceededException(limit);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Count(int read)
    {
        Interlocked.Add(ref _read, read);
        return read;
    }
}

/// <summary>A peer sent more bytes than its connection's read budget allowed.</summary>
internal sealed class ReadBudgetExceededException(long budget)
    : IOException($"the peer sent more than {budget} bytes while its connection was limited to {budget}")
{
    /// <summary>The budget that was spent.</summary>
    public long Budget { get; } = budget;
}
