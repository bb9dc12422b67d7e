using System.Collections.Concurrent;
using Chord.Dht.Mesh;

namespace Chord.Dht.Ring;

/// <summary>
/// Suspect members: a peer that has left a request of ours unanswered for <see cref="RingOptions.SuspectAfter"/> with
/// nothing at all heard from it since (open sockets, no replies: a frozen process) is suspect. Requests are not waited
/// for at a suspect owner (they still go out, as probes) and are routed around a suspect next hop; anything heard
/// from it clears the mark.
/// </summary>
public sealed partial class RingNode
{
    private readonly ConcurrentDictionary<string, Liveness> _liveness = new(StringComparer.Ordinal);

    /// <summary>The members this node currently suspects (see <see cref="RingOptions.SuspectAfter"/>).</summary>
    public IReadOnlyCollection<string> SuspectMembers => [.. _liveness.Where(l => IsSuspect(l.Value)).Select(l => l.Key)];

    /// <summary>True when this node suspects the member: it has not answered a request for <see cref="RingOptions.SuspectAfter"/>.</summary>
    public bool IsSuspect(string id) => _liveness.TryGetValue(id, out var liveness) && IsSuspect(liveness);

    private bool IsSuspect(Liveness liveness)
    {
        var since = Volatile.Read(ref liveness.AwaitingSince);
        return since != 0 && Options.Mesh.TimeProvider.GetElapsedTime(since) >= Options.SuspectAfter;
    }

    /// <summary>A request to <paramref name="peer"/> now awaits its answer.</summary>
    private void Awaiting(MeshPeer peer)
    {
        var liveness = _liveness.GetOrAdd(peer.Id!, static _ => new Liveness());
        Interlocked.CompareExchange(ref liveness.AwaitingSince, Options.Mesh.TimeProvider.GetTimestamp(), 0);
    }

    /// <summary>Something came from <paramref name="id"/>: it is alive.</summary>
    private void Heard(string id)
    {
        if (_liveness.TryGetValue(id, out var liveness) && Volatile.Read(ref liveness.AwaitingSince) != 0)
        {
            var wasSuspect = IsSuspect(liveness);
            Interlocked.Exchange(ref liveness.AwaitingSince, 0);
            if (wasSuspect | Interlocked.Exchange(ref liveness.Reported, 0) == 1)
            {
                RingLog.SuspectCleared(Logger, id);
            }
        }
    }

    /// <summary>Logs each member that turned suspect since the last check (from the stabilize timer).</summary>
    private void ReportSuspects()
    {
        foreach (var (id, liveness) in _liveness)
        {
            if (IsSuspect(liveness) && Interlocked.Exchange(ref liveness.Reported, 1) == 0)
            {
                RingMetrics.Suspected.Add(1);
                RingLog.Suspect(Logger, id, Options.SuspectAfter.TotalSeconds);
            }
        }
    }

    private void ForgetLiveness(string id) => _liveness.TryRemove(id, out _);

    /// <summary>Forgets a member's liveness unless a request to it is still unanswered (then only hearing from it clears it).</summary>
    private void ForgetLivenessUnlessAwaited(string id)
    {
        if (_liveness.TryGetValue(id, out var liveness) && Volatile.Read(ref liveness.AwaitingSince) == 0)
        {
            _liveness.TryRemove(KeyValuePair.Create(id, liveness));
        }
    }

    private readonly ConcurrentDictionary<string, long> _refusalsLogged = new(StringComparer.Ordinal);

    private long _refusedInputs;

    /// <summary>
    /// Counts refused input from a peer (every one: <see cref="RingStatistics.RefusedInputs"/> and
    /// <c>chord.ring.refused_inputs</c>) and logs it at most once a minute per peer (a hostile peer cannot flood the log).
    /// </summary>
    private void LogRefusedOnce(MeshPeer from, string what)
    {
        Interlocked.Increment(ref _refusedInputs);
        RingMetrics.RefusedInputs.Add(1);
        var peer = from.Id ?? from.Address?.ToString() ?? "?";
        var now = Options.Mesh.TimeProvider.GetTimestamp();
        if (_refusalsLogged.Count > 10_000)
        {
            _refusalsLogged.Clear(); // bounded: many strangers cost a few extra lines, never unbounded memory
        }

        var last = _refusalsLogged.GetOrAdd(peer, 0);
        if (last != 0 && Options.Mesh.TimeProvider.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1))
        {
            return;
        }

        if (_refusalsLogged.TryUpdate(peer, now, last))
        {
            RingLog.RefusedInput(Logger, peer, from.Address?.ToString() ?? "?", what);
        }
    }

    private sealed class Liveness
    {
        /// <summary>When the oldest request still unanswered went out (timestamp); 0 when nothing is awaited.</summary>
        public long AwaitingSince;

        /// <summary>1 once its suspicion was logged.</summary>
        public int Reported;
    }
}
