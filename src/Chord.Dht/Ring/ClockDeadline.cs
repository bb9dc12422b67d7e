namespace Chord.Dht.Ring;

/// <summary>
/// A token source that cancels after a delay measured on the node's clock (<see cref="Mesh.MeshOptions.TimeProvider"/>)
/// or when any of up to two linked tokens is cancelled. <c>CreateLinkedTokenSource</c> followed by <c>CancelAfter</c>
/// would time the delay on the system clock whatever the node's clock is, so a ring on a fake clock (the simulations,
/// the 256-node routing test) would still time out on the wall clock.
/// </summary>
internal sealed class ClockDeadline : CancellationTokenSource
{
    private CancellationTokenRegistration _first;
    private CancellationTokenRegistration _second;

    private ClockDeadline(TimeSpan delay, TimeProvider time)
        : base(delay, time)
    {
    }

    /// <summary>Starts a deadline <paramref name="delay"/> from now (<see cref="Timeout.InfiniteTimeSpan"/>: none), linked to the tokens given.</summary>
    public static ClockDeadline Start(TimeProvider time, TimeSpan delay, CancellationToken first, CancellationToken second = default)
    {
        var deadline = new ClockDeadline(delay, time);
        if (first.CanBeCanceled)
        {
            deadline._first = first.UnsafeRegister(static state => ((ClockDeadline)state!).Cancel(), deadline);
        }

        if (second.CanBeCanceled)
        {
            deadline._second = second.UnsafeRegister(static state => ((ClockDeadline)state!).Cancel(), deadline);
        }

        return deadline;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Before the source goes: a registration's Dispose waits for a callback that is running, so none can cancel a disposed source.
            _first.Dispose();
            _second.Dispose();
        }

        base.Dispose(disposing);
    }
}
