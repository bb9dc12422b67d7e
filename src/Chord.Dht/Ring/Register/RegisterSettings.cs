namespace Chord.Dht.Ring.Register;

/// <summary>How a <see cref="RegisterProposer"/> counts and waits.</summary>
internal sealed class RegisterSettings
{
    /// <summary>Acceptors (positions) per key.</summary>
    public const int Positions = 5;

    /// <summary>Promises a prepare needs (the ring's read quorum).</summary>
    public int PrepareQuorum { get; init; } = 3;

    /// <summary>Acknowledgements an accept needs (the ring's write quorum); with <see cref="PrepareQuorum"/> more than five.</summary>
    public int AcceptQuorum { get; init; } = 3;

    /// <summary>
    /// Once a quorum answered, how long (from the start of the round) the rest are still waited for when an answer
    /// was "nothing here" (a new owner may not hold what the others do).
    /// </summary>
    public TimeSpan PositionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long (from the start of the round) a prepare waits for the other positions once a quorum promised but one of
    /// them knew nothing reliable (nothing, or only a placement copy): the newest value among all five answers is the
    /// one to build on, and a position that lost its state (a new owner after a crash) must not outvote one that holds
    /// the value. On the ring: the suspect time plus a second (a frozen owner is not waited for after that).
    /// </summary>
    public TimeSpan EmptyTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest random pause between two attempts after a conflict (duelling proposers back off); the pauses start
    /// at one round time and double up to this.
    /// </summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How many keys' proposer state (sticky ballot, last value) are kept.</summary>
    public int CacheCapacity { get; init; } = 100_000;

    /// <summary>
    /// Run the proposer's continuations where answers complete (the simulation's single thread). Off on the ring, so
    /// that an update function never runs on a connection's read loop.
    /// </summary>
    public bool InlineContinuations { get; init; }
}
