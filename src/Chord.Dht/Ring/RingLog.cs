using Microsoft.Extensions.Logging;

namespace Chord.Dht.Ring;

internal static partial class RingLog
{
    [LoggerMessage(101, LogLevel.Information, "Node {NodeId} {Change} the ring")]
    public static partial void Membership(ILogger logger, string nodeId, string change);

    [LoggerMessage(102, LogLevel.Debug, "Member {MemberId} is gone: {Reason}")]
    public static partial void MemberGone(ILogger logger, string memberId, string reason);

    [LoggerMessage(103, LogLevel.Debug, "Ignoring malformed {Kind} from {PeerId}")]
    public static partial void Malformed(ILogger logger, string kind, string peerId);

    [LoggerMessage(104, LogLevel.Warning, "Handoff of {Count} entries to {MemberId} left {Left} unacknowledged")]
    public static partial void HandoffIncomplete(ILogger logger, int count, string memberId, int left);

    [LoggerMessage(108, LogLevel.Warning, "Member {MemberId} is suspect: a request to it has been unanswered for {Seconds} s and nothing else came from it; its positions are not waited for")]
    public static partial void Suspect(ILogger logger, string memberId, double seconds);

    [LoggerMessage(109, LogLevel.Information, "Member {MemberId} answers again: no longer suspect")]
    public static partial void SuspectCleared(ILogger logger, string memberId);

    [LoggerMessage(110, LogLevel.Warning, "Refused from {PeerId} ({Address}): {What} (logged once a minute per peer)")]
    public static partial void RefusedInput(ILogger logger, string peerId, string address, string what);

    [LoggerMessage(113, LogLevel.Debug, "Node {NodeId} serves its positions: {Why}")]
    public static partial void Serving(ILogger logger, string nodeId, string why);

    [LoggerMessage(114, LogLevel.Warning, "Node {NodeId} joined but does not serve its positions yet: its predecessor {PredecessorId} has not answered its fence; it keeps asking")]
    public static partial void FencePending(ILogger logger, string nodeId, string predecessorId);

    [LoggerMessage(105, LogLevel.Error, "Ring background work failed")]
    public static partial void BackgroundFailed(ILogger logger, Exception exception);

    [LoggerMessage(106, LogLevel.Debug, "Ring background work could not reach a member: {Reason}")]
    public static partial void BackgroundUnreachable(ILogger logger, string reason);

    [LoggerMessage(111, LogLevel.Debug, "A read's background commit of hints (copies, restored entries) did not finish: {Reason}; the next read tries again")]
    public static partial void HintConfirmFailed(ILogger logger, string reason);

    [LoggerMessage(112, LogLevel.Debug, "A report that member {MemberId} is gone is about its epoch {Reported}, older than the {Known} it announced since; checking it directly")]
    public static partial void StaleGoneReport(ILogger logger, string memberId, long reported, long known);

    [LoggerMessage(120, LogLevel.Trace, "Node {NodeId} at {Position}: {Request} -> {Answer}; holds {Entry}")]
    public static partial void OwnerApplied(ILogger logger, string nodeId, string position, string request, string answer, string entry);

    [LoggerMessage(121, LogLevel.Trace, "Node {NodeId} proposer: {Request} at {Position} -> {Answer}")]
    public static partial void ProposerHeard(ILogger logger, string nodeId, string position, string request, string answer);

    [LoggerMessage(122, LogLevel.Trace, "Node {NodeId} ring: {Members}")]
    public static partial void RingRebuilt(ILogger logger, string nodeId, string members);
}
