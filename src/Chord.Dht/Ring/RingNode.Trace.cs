using System.Text;
using Chord.Dht.Wire;

namespace Chord.Dht.Ring;

/// <summary>
/// The ring's trace (log level Trace, off unless asked for): every request an owner applies with what it then holds,
/// every answer a proposer hears, and every change of the ring a node routes by. Enough to follow one key through a
/// failing simulation run; too much for anything else. Each text is built only when Trace is enabled.
/// </summary>
public sealed partial class RingNode
{
    private static class TraceText
    {
        /// <summary>A position as the trace names it: the hash method and the first 8 hex digits of its reduced value.</summary>
        public static string Position(HashMethod method, RingPosition position) => $"{method}:{Short(position)}";

        public static string Short(RingPosition position)
        {
            var hex = position.Reduced.Value.ToString("x", System.Globalization.CultureInfo.InvariantCulture).TrimStart('0').PadLeft(96, '0');
            return hex[..8];
        }

        public static string Of(PositionRequest request)
        {
            var text = new StringBuilder(request.Kind switch
            {
                PrepareKind => "prepare",
                AcceptKind => "accept",
                SubFlag.Store => request.Replica ? "copy" : "store",
                SubFlag.Retrieve => "retrieve",
                _ => request.Kind.ToString(),
            });
            if (request.Ballot is { } ballot)
            {
                text.Append(" b=").Append(ballot);
            }

            if (request.Version is { } version)
            {
                text.Append(" v=").Append(version);
            }

            if (request.Value is { } value)
            {
                text.Append(" '").Append(Value(value)).Append('\'');
            }

            if (request.Next is { } next)
            {
                text.Append(" next=").Append(next);
            }

            return text.ToString();
        }

        public static string Of(Answer answer)
        {
            var text = new StringBuilder(answer.Ok ? "ok" : "no");
            if (answer.Error is { } error)
            {
                text.Append(" (").Append(error.Length > 40 ? error[..40] : error).Append(')');
            }

            if (answer.Version is { } version)
            {
                text.Append(" v=").Append(version);
            }

            if (answer.Accepted is { } accepted)
            {
                text.Append(" acc=").Append(accepted);
            }

            if (answer.Promised is { } promised)
            {
                text.Append(" prom=").Append(promised);
            }

            var value = answer.Result is { IsNil: false } result && !ReferenceEquals(result, MsgValue.True) ? result : answer.Value;
            if (!value.IsNil)
            {
                text.Append(" '").Append(Value(value)).Append('\'');
            }

            if (answer.IsCopy)
            {
                text.Append(" hint");
            }

            return text.ToString();
        }

        public static string Of(StoredEntry? entry)
        {
            if (entry is null)
            {
                return "nothing";
            }

            var text = new StringBuilder(entry.IsPromiseOnly ? "promise" : $"'{Value(entry.Value)}' v={entry.Version?.ToString() ?? "-"}");
            text.Append(" acc=").Append(entry.AcceptedBallot).Append(" prom=").Append(entry.PromisedBallot);
            if (entry.IsCopy)
            {
                text.Append(" copy");
            }

            if (entry.IsRestored)
            {
                text.Append(" restored");
            }

            if (entry.PromiseFromBeforeStart)
            {
                text.Append(" old-promise");
            }

            return text.ToString();
        }

        private static string Value(MsgValue value)
        {
            if (value.IsNil)
            {
                return "nil";
            }

            var text = value.Kind == MsgKind.Str ? value.AsString() : value.ToString();
            return text.Length > 24 ? text[..24] + "…" : text;
        }
    }
}
