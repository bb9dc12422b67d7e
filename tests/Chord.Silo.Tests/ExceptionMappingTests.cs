using Chord.Dht.Ring;
using Chord.Silo.Api;
using Microsoft.AspNetCore.Http;

namespace Chord.Silo.Tests;

/// <summary>What the ring and Orleans throw, as the HTTP API's status codes.</summary>
public sealed class ExceptionMappingTests
{
    public static TheoryData<Exception, int> Cases => new()
    {
        { new ChordKeyNotFoundException("The key 'k' has no value."), StatusCodes.Status404NotFound },
        { new ChordNoMajorityException("The key 'k' has no agreed value.", 5), StatusCodes.Status409Conflict },
        { new ChordWriteException("Acknowledged by 0 of 5 positions. An owner refused it: the stored value is a Str, not a map", 0), StatusCodes.Status409Conflict },
        { new ChordWriteException("The write to 'k' was acknowledged by 2 of 5 positions; 3 are needed.", 2), StatusCodes.Status503ServiceUnavailable },
        { new ChordWriteException($"The update of 'k' {ChordWriteException.MetConcurrentWrite}: it may or may not have been applied (the key is now at version 7@w).", 0), StatusCodes.Status409Conflict },
        { new ChordTimeoutException("Only 2 of 5 positions answered.", 2), StatusCodes.Status503ServiceUnavailable },
        { new TimeoutException("Response did not arrive on time."), StatusCodes.Status503ServiceUnavailable },
        { new SiloUnavailableException("Unable to connect\n   at Orleans.Somewhere()"), StatusCodes.Status503ServiceUnavailable },
        { new ArgumentException("A delta must be a map."), StatusCodes.Status400BadRequest },
        { new InvalidCastException("surprise"), StatusCodes.Status500InternalServerError },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_exception_gets_its_status_and_a_one_line_detail_with_its_message(Exception exception, int status)
    {
        var (actual, title, detail) = ChordExceptionHandler.Classify(exception);
        Assert.Equal(status, actual);
        Assert.False(string.IsNullOrEmpty(title));
        Assert.Contains(exception.Message.Split('\n')[0], detail, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', detail);
    }
}
