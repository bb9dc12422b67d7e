using System.Net.Sockets;
using Chord.Silo.Logging;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Chord.Silo.Tests;

/// <summary>The host's one-line console format and the membership clock behind the watchdog fix.</summary>
public sealed class LoggingTests
{
    [Fact]
    public void An_expected_network_fault_is_one_line_with_its_cause()
    {
        var fault = new ConnectionResetException("Connection reset by peer", new SocketException((int)SocketError.ConnectionReset));
        var text = Format(LogLevel.Warning, "Orleans.Runtime.Messaging.Connection", "Exception while processing messages from remote endpoint 127.0.0.1:24110", fault);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("warn Orleans.Runtime.Messaging.Connection: Exception while processing messages from remote endpoint 127.0.0.1:24110; cause: ConnectionResetException: Connection reset by peer <- SocketException:", text, StringComparison.Ordinal);
        Assert.False(OneLineConsoleFormatter.WantsStackTrace(LogLevel.Error, fault));
    }

    [Fact]
    public void A_stack_trace_a_library_put_into_the_message_is_cut()
    {
        const string message = "Indirect probe request #14 failed. Failure message: Encountered exception \n      Exc level 0: Orleans.Runtime.OrleansMessageRejectionException: boom\n         at Orleans.Runtime.Messaging.ConnectionManager.GetConnectionAsync()";
        Assert.Equal("Indirect probe request #14 failed. Failure message: Encountered exception", OneLineConsoleFormatter.OneLine(message));
        Assert.Single(Format(LogLevel.Warning, "Orleans.Runtime.MembershipService.SiloHealthMonitor", message, null).Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Unexpected_errors_and_debug_entries_keep_their_stack_trace()
    {
        var bug = Thrown(new InvalidOperationException("a bug"));
        Assert.True(OneLineConsoleFormatter.WantsStackTrace(LogLevel.Error, bug));
        Assert.True(OneLineConsoleFormatter.WantsStackTrace(LogLevel.Debug, Thrown(new SocketException((int)SocketError.ConnectionRefused))));
        Assert.False(OneLineConsoleFormatter.WantsStackTrace(LogLevel.Warning, bug));
        var text = Format(LogLevel.Error, "Chord", "failed", bug);
        Assert.Contains("fail Chord: failed; cause: InvalidOperationException: a bug", text, StringComparison.Ordinal);
        Assert.Contains(" at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_membership_clock_counts_from_its_first_reading_and_keeps_durations()
    {
        var clock = new ProcessClock();
        Assert.Equal(1, clock.GetTimestamp()); // Orleans' watchdog measuring from an unset timestamp (0) gets a moment, not the uptime
        var later = clock.GetTimestamp();
        Assert.True(later >= 1);
        Assert.Equal(TimeSpan.FromTicks((long)((later - 1) * (TimeSpan.TicksPerSecond / (double)clock.TimestampFrequency))), clock.GetElapsedTime(1, later));
    }

    [Fact]
    public async Task The_host_gives_Orleans_membership_the_process_clock_and_the_one_line_console()
    {
        await using var host = ChordHost.Create([]);
        Assert.IsType<ProcessClock>(host.App.Services.GetRequiredKeyedService<TimeProvider>(TimeProviderNames.Membership));
        var configuration = host.App.Services.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        Assert.Equal(OneLineConsoleFormatter.Name, configuration["Logging:Console:FormatterName"]);
    }

    private static Exception Thrown(Exception exception)
    {
        try
        {
            throw exception;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private static string Format(LogLevel level, string category, string message, Exception? exception)
    {
        var writer = new StringWriter();
        new OneLineConsoleFormatter().Write(new LogEntry<string>(level, category, new EventId(1), message, exception, (m, _) => m), null, writer);
        return writer.ToString();
    }
}
