using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Chord.Silo.Health;

/// <summary>
/// Reads the cluster's membership store (not the silo's cached view) for the readiness check, and keeps the last
/// reading for the <c>chord.silo.*</c> membership gauges; a gauge read with a reading older than
/// <see cref="GaugeRefresh"/> starts a new read, so a scrape sees at most one scrape interval's staleness.
/// </summary>
/// <remarks>
/// A silo counts as suspected while it has a fresh suspicion vote: Orleans leaves votes in the table's
/// <c>SuspectTimes</c> after they stop counting, and counts one only while it is younger than
/// <see cref="ClusterMembershipOptions.DeathVoteExpirationTimeout"/> (<see cref="IsSuspected"/>). Votes carry the
/// voter's UTC wall-clock time; "now" is read from the clock Orleans' membership services read it from (the
/// <see cref="TimeProviderNames.Membership"/> TimeProvider), as are the readings' timestamps.
/// </remarks>
public sealed class MembershipObserver
{
    /// <summary>How long the membership store has to answer.</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(3);

    /// <summary>How old a reading may be before a gauge read refreshes it.</summary>
    public static readonly TimeSpan GaugeRefresh = TimeSpan.FromSeconds(10);

    private readonly IMembershipTable _table;
    private readonly ILocalSiloDetails _local;
    private readonly TimeProvider _time;
    private readonly IOptions<ClusterMembershipOptions> _membership;
    private MembershipReading? _last;
    private int _refreshing;

    /// <summary>Created by dependency injection.</summary>
    public MembershipObserver(
        IMembershipTable table,
        ILocalSiloDetails local,
        [FromKeyedServices(TimeProviderNames.Membership)] TimeProvider time,
        IOptions<ClusterMembershipOptions> membership,
        IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _table = table;
        _local = local;
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _membership = membership ?? throw new ArgumentNullException(nameof(membership));
        var meter = meters.Create(KeyOperations.MeterName, "1.0");
        meter.CreateObservableGauge("chord.silo.membership_reachable", () => Gauge(r => r.Reachable ? 1 : 0), "1",
            "1 when the cluster's membership store answered the last read, 0 when it did not");
        meter.CreateObservableGauge("chord.silo.active_silos", () => Gauge(r => r.Active), "{silo}",
            "Silos the membership store lists as active");
        meter.CreateObservableGauge("chord.silo.suspected_silos", () => Gauge(r => r.Suspected.Count), "{silo}",
            "Active silos with a suspicion vote (an unanswered probe) younger than the membership's DeathVoteExpirationTimeout");
    }

    /// <summary>Reads the membership store now (within <see cref="ReadTimeout"/>).</summary>
    public async Task<MembershipReading> ReadAsync(CancellationToken cancellationToken)
    {
        MembershipReading reading;
        try
        {
            var data = await _table.ReadAllAsync(cancellationToken).WaitAsync(ReadTimeout, cancellationToken);
            var entries = data.Members.Select(m => m.Item1).ToList();
            var active = entries.Where(e => e.Status == SiloStatus.Active).ToList();
            var self = entries.FirstOrDefault(e => e.SiloAddress.Equals(_local.SiloAddress));
            var now = _time.GetUtcNow().UtcDateTime;
            var expiration = _membership.Value.DeathVoteExpirationTimeout;
            reading = new MembershipReading(
                true, null, active.Count,
                [.. active.Where(e => IsSuspected(e, now, expiration)).Select(e => e.SiloAddress.ToString())],
                self?.Status.ToString() ?? "absent", _time.GetTimestamp());
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            reading = new MembershipReading(false, $"{e.GetType().Name}: {e.Message.Split('\n', 2)[0].TrimEnd()}", 0, [], "unknown", _time.GetTimestamp());
        }

        _last = reading;
        return reading;
    }

    /// <summary>
    /// Whether <paramref name="entry"/> has a vote younger than <paramref name="voteExpiration"/> at
    /// <paramref name="now"/> (UTC): Orleans' rule for a vote that still counts. A vote stamped after
    /// <paramref name="now"/> (the voter's clock ahead of this one) counts, as Orleans counts it.
    /// </summary>
    internal static bool IsSuspected(MembershipEntry entry, DateTime now, TimeSpan voteExpiration) =>
        entry.SuspectTimes is { } votes && votes.Exists(vote => now - vote.Item2 < voteExpiration);

    private IEnumerable<Measurement<int>> Gauge(Func<MembershipReading, int> value)
    {
        var last = _last;
        if ((last is null || _time.GetElapsedTime(last.At) > GaugeRefresh) && Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await ReadAsync(CancellationToken.None);
                }
                finally
                {
                    Volatile.Write(ref _refreshing, 0);
                }
            });
        }

        return last is null ? [] : [new Measurement<int>(value(last))];
    }
}

/// <summary>One read of the membership store.</summary>
/// <param name="Reachable">The store answered.</param>
/// <param name="Problem">Why it did not.</param>
/// <param name="Active">Silos it lists as active.</param>
/// <param name="Suspected">Active silos with a suspicion vote younger than DeathVoteExpirationTimeout.</param>
/// <param name="SelfStatus">This silo's status in it (Active, ShuttingDown, Dead, ..., absent; unknown when unreachable).</param>
/// <param name="At">When it was read (a TimeProvider timestamp).</param>
public sealed record MembershipReading(bool Reachable, string? Problem, int Active, IReadOnlyList<string> Suspected, string SelfStatus, long At);
