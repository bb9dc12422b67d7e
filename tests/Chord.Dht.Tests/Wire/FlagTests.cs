using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>The flag values of PROTOCOL.md §3.</summary>
public class FlagTests
{
    [Theory]
    [InlineData(MainFlag.Broadcast, 0x00)]
    [InlineData(MainFlag.Renegotiate, 0x01)]
    [InlineData(MainFlag.Whisper, 0x02)]
    [InlineData(MainFlag.Ping, 0x03)]
    [InlineData(MainFlag.Pong, 0x04)]
    public void Main_flags_have_the_protocol_values(MainFlag flag, int value)
    {
        Assert.Equal(value, (int)flag);
    }

    [Theory]
    [InlineData(SubFlag.Broadcast, 0x00)]
    [InlineData(SubFlag.Compression, 0x01)]
    [InlineData(SubFlag.Whisper, 0x02)]
    [InlineData(SubFlag.Ping, 0x03)]
    [InlineData(SubFlag.Pong, 0x04)]
    [InlineData(SubFlag.Handshake, 0x05)]
    [InlineData(SubFlag.Notify, 0x06)]
    [InlineData(SubFlag.Peers, 0x07)]
    [InlineData(SubFlag.Request, 0x08)]
    [InlineData(SubFlag.Resend, 0x09)]
    [InlineData(SubFlag.Response, 0x0A)]
    [InlineData(SubFlag.Store, 0x0B)]
    [InlineData(SubFlag.Retrieve, 0x0C)]
    [InlineData(SubFlag.Retrieved, 0x0D)]
    [InlineData(SubFlag.Forward, 0x0E)]
    [InlineData(SubFlag.Delta, 0x11)]
    public void Sub_flags_have_the_protocol_values(SubFlag flag, int value)
    {
        Assert.Equal(value, (int)flag);
    }

    [Theory]
    [InlineData(CompressionMethod.Bz2, 0x10)]
    [InlineData(CompressionMethod.Gzip, 0x11)]
    [InlineData(CompressionMethod.Zlib, 0x13)]
    [InlineData(CompressionMethod.Snappy, 0x20)]
    public void Compression_flags_have_the_protocol_values(CompressionMethod method, int value)
    {
        Assert.Equal(value, (int)method);
    }

    [Fact]
    public void Reserved_sub_flags_are_not_named()
    {
        Assert.False(Enum.IsDefined((SubFlag)0x0F));
        Assert.False(Enum.IsDefined((SubFlag)0x10));
    }
}
