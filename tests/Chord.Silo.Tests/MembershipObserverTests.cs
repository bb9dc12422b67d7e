using System.Diagnostics.Metrics;
using System.Net;
using Chord.Silo.Health;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Configuration;

namespace Chord.Silo.Tests;

/// <summary>
/// Which silos the membership observer counts as suspected, read from a fake membership table on a fake clock:
/// only active silos with a suspicion vote younger than ClusterMembershipOptions.DeathVoteExpirationTimeout, as
/// Orleans counts votes; the expired votes Orleans leaves in SuspectTimes do not count.
/// </summary>
public sealed class MembershipObserverTests : IDisposable
{
    private static readonly TimeSpan Expiration = TimeSpan.FromSeconds(30);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero));
    private readonly FakeTable _table = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MembershipObserver _observer;

    public MembershipObserverTests()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new ClusterMembershipOptions { DeathVoteExpirationTimeout = Expiration });
        _observer = new MembershipObserver(_table, new LocalSilo(Silo(1)), _time, options, _services.GetRequiredService<IMeterFactory>());
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task Only_active_silos_with_a_vote_younger_than_the_expiration_count_as_suspected()
    {
        var now = _time.GetUtcNow().UtcDateTime;
        _table.Entries.AddRange(
        [
            Entry(1, SiloStatus.Active),                                                                     // this silo, no votes
            Entry(2, SiloStatus.Active, (3, now - TimeSpan.FromSeconds(10))),                                 // a fresh vote
            Entry(3, SiloStatus.Active, (1, now - TimeSpan.FromSeconds(45)), (2, now - TimeSpan.FromMinutes(5))), // only expired votes
            Entry(4, SiloStatus.Active, (1, now - TimeSpan.FromMinutes(5)), (2, now - TimeSpan.FromSeconds(20))), // one expired, one fresh
            Entry(5, SiloStatus.Active, (1, now + TimeSpan.FromSeconds(2))),                                  // the voter's clock is ahead
            Entry(6, SiloStatus.Dead, (1, now - TimeSpan.FromSeconds(1))),                                    // dead: not active
            Entry(7, SiloStatus.Active, (1, now - Expiration)),                                              // exactly as old as the expiration
        ]);

        var reading = await _observer.ReadAsync(CancellationToken.None);
        Assert.True(reading.Reachable);
        Assert.Equal(6, reading.Active);
        Assert.Equal([Silo(2).ToString(), Silo(4).ToString(), Silo(5).ToString()], reading.Suspected.Order(StringComparer.Ordinal));

        // 15 s later the vote on silo 2 (now 25 s old) still counts, the one on silo 4 (now 35 s old) no longer does.
        _time.Advance(TimeSpan.FromSeconds(15));
        reading = await _observer.ReadAsync(CancellationToken.None);
        Assert.Equal([Silo(2).ToString(), Silo(5).ToString()], reading.Suspected.Order(StringComparer.Ordinal));

        // Once every vote is older than the expiration, no silo is suspected although SuspectTimes still holds them.
        _time.Advance(Expiration);
        reading = await _observer.ReadAsync(CancellationToken.None);
        Assert.Empty(reading.Suspected);
        Assert.All(_table.Entries.Skip(1).Where(e => e.Status == SiloStatus.Active), e => Assert.NotEmpty(e.SuspectTimes!));
    }

    [Fact]
    public async Task The_membership_health_check_is_healthy_when_the_only_votes_have_expired()
    {
        var now = _time.GetUtcNow().UtcDateTime;
        _table.Entries.Add(Entry(1, SiloStatus.Active));
        _table.Entries.Add(Entry(2, SiloStatus.Active, (1, now - TimeSpan.FromMinutes(10))));
        var check = new MembershipHealthCheck(_observer, new LocalSilo(Silo(1)), new NoMembership());

        var result = await check.CheckHealthAsync(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext());
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy, result.Status);
        Assert.Equal(0, result.Data["suspectedSilos"]);

        _table.Entries[1].SuspectTimes!.Add(Tuple.Create(Silo(3), now));
        result = await check.CheckHealthAsync(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext());
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, result.Status);
        Assert.Equal(1, result.Data["suspectedSilos"]);
    }

    private static SiloAddress Silo(int n) => SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11110 + n), 1);

    private static MembershipEntry Entry(int silo, SiloStatus status, params (int Voter, DateTime At)[] votes) => new()
    {
        SiloAddress = Silo(silo),
        Status = status,
        SiloName = $"silo{silo}",
        HostName = "localhost",
        ProxyPort = 30000 + silo,
        StartTime = DateTime.UtcNow,
        IAmAliveTime = DateTime.UtcNow,
        SuspectTimes = [.. votes.Select(v => Tuple.Create(Silo(v.Voter), v.At))],
    };

    private sealed class FakeTable : IMembershipTable
    {
        public List<MembershipEntry> Entries { get; } = [];

        public Task<MembershipTableData> ReadAll() =>
            Task.FromResult(new MembershipTableData([.. Entries.Select((e, i) => Tuple.Create(e, i.ToString(System.Globalization.CultureInfo.InvariantCulture)))], new TableVersion(1, "1")));

        public Task InitializeMembershipTable(bool tryInitTableVersion) => throw new NotSupportedException();
        public Task DeleteMembershipTableEntries(string clusterId) => throw new NotSupportedException();
        public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => throw new NotSupportedException();
        public Task<MembershipTableData> ReadRow(SiloAddress key) => throw new NotSupportedException();
        public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => throw new NotSupportedException();
        public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => throw new NotSupportedException();
        public Task UpdateIAmAlive(MembershipEntry entry) => throw new NotSupportedException();
    }

    private sealed class LocalSilo(SiloAddress address) : ILocalSiloDetails
    {
        public string Name => "silo1";
        public string ClusterId => "test";
        public string DnsHostName => "localhost";
        public SiloAddress SiloAddress => address;
        public SiloAddress GatewayAddress => address;
    }

    /// <summary>The silo's cached view, which the check only reports; empty here.</summary>
    private sealed class NoMembership : IClusterMembershipService
    {
        public ClusterMembershipSnapshot CurrentSnapshot { get; } = new(System.Collections.Immutable.ImmutableDictionary<SiloAddress, ClusterMember>.Empty, MembershipVersion.MinValue);
        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => throw new NotSupportedException();
        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public Task<bool> TryKill(SiloAddress siloAddress) => throw new NotSupportedException();
    }
}
