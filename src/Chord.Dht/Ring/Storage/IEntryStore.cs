using System.Numerics;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Storage;

/// <summary>Where a node keeps its entries and salt across restarts.</summary>
internal interface IEntryStore : IDisposable
{
    /// <summary>The salt kept from an earlier run, or null.</summary>
    string? LoadSalt();

    /// <summary>Keeps the salt, so a restart gives the same node id.</summary>
    void SaveSalt(string salt);

    /// <summary>The register's ballot floor kept from an earlier run (0 when none): see <c>RingNode</c>'s register.</summary>
    long LoadBallotFloor();

    /// <summary>Keeps the ballot floor durably before returning.</summary>
    void SaveBallotFloor(long floor);

    /// <summary>Every entry kept.</summary>
    IEnumerable<(HashMethod Method, BigInteger Position, StoredEntry Entry)> LoadEntries();

    /// <summary>Keeps an entry durably before returning (it is acknowledged next).</summary>
    void Put(HashMethod method, BigInteger position, StoredEntry entry);

    /// <summary>Forgets an entry.</summary>
    void Remove(HashMethod method, BigInteger position);
}
