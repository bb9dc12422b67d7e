using Chord.Dht.Ring;
using Chord.Dht.Wire;

namespace Chord.Interfaces.Serialization;

// The ring's exceptions live in Chord.Dht, which knows nothing of Orleans; without these, a ring failure inside a
// grain call reached the caller as Orleans' CodecNotFoundException instead of the failure itself. The surrogates
// keep the type, the message and the count each exception carries (not the remote stack trace). Clients and silos
// both load this assembly, so both ends know them without any configuration.

/// <summary>The serialized form of <see cref="ChordWriteException"/>.</summary>
[GenerateSerializer, Alias("chord.write-exception")]
internal struct ChordWriteExceptionSurrogate
{
    [Id(0)] public string Message;
    [Id(1)] public int Acknowledged;
}

/// <summary>Converts <see cref="ChordWriteException"/> for Orleans.</summary>
[RegisterConverter]
internal sealed class ChordWriteExceptionConverter : IConverter<ChordWriteException, ChordWriteExceptionSurrogate>
{
    public ChordWriteException ConvertFromSurrogate(in ChordWriteExceptionSurrogate surrogate) => new(surrogate.Message, surrogate.Acknowledged);

    public ChordWriteExceptionSurrogate ConvertToSurrogate(in ChordWriteException value) => new() { Message = value.Message, Acknowledged = value.Acknowledged };
}

/// <summary>The serialized form of <see cref="ChordTimeoutException"/>.</summary>
[GenerateSerializer, Alias("chord.timeout-exception")]
internal struct ChordTimeoutExceptionSurrogate
{
    [Id(0)] public string Message;
    [Id(1)] public int Answered;
}

/// <summary>Converts <see cref="ChordTimeoutException"/> for Orleans.</summary>
[RegisterConverter]
internal sealed class ChordTimeoutExceptionConverter : IConverter<ChordTimeoutException, ChordTimeoutExceptionSurrogate>
{
    public ChordTimeoutException ConvertFromSurrogate(in ChordTimeoutExceptionSurrogate surrogate) => new(surrogate.Message, surrogate.Answered);

    public ChordTimeoutExceptionSurrogate ConvertToSurrogate(in ChordTimeoutException value) => new() { Message = value.Message, Answered = value.Answered };
}

/// <summary>The serialized form of <see cref="ChordNoMajorityException"/>.</summary>
[GenerateSerializer, Alias("chord.no-majority-exception")]
internal struct ChordNoMajorityExceptionSurrogate
{
    [Id(0)] public string Message;
    [Id(1)] public int Answers;
}

/// <summary>Converts <see cref="ChordNoMajorityException"/> for Orleans.</summary>
[RegisterConverter]
internal sealed class ChordNoMajorityExceptionConverter : IConverter<ChordNoMajorityException, ChordNoMajorityExceptionSurrogate>
{
    public ChordNoMajorityException ConvertFromSurrogate(in ChordNoMajorityExceptionSurrogate surrogate) => new(surrogate.Message, surrogate.Answers);

    public ChordNoMajorityExceptionSurrogate ConvertToSurrogate(in ChordNoMajorityException value) => new() { Message = value.Message, Answers = value.Answers };
}

/// <summary>The serialized form of <see cref="ChordKeyNotFoundException"/>.</summary>
[GenerateSerializer, Alias("chord.key-not-found-exception")]
internal struct ChordKeyNotFoundExceptionSurrogate
{
    [Id(0)] public string Message;
}

/// <summary>Converts <see cref="ChordKeyNotFoundException"/> for Orleans.</summary>
[RegisterConverter]
internal sealed class ChordKeyNotFoundExceptionConverter : IConverter<ChordKeyNotFoundException, ChordKeyNotFoundExceptionSurrogate>
{
    public ChordKeyNotFoundException ConvertFromSurrogate(in ChordKeyNotFoundExceptionSurrogate surrogate) => new(surrogate.Message);

    public ChordKeyNotFoundExceptionSurrogate ConvertToSurrogate(in ChordKeyNotFoundException value) => new() { Message = value.Message };
}

/// <summary>The serialized form of <see cref="MsgFormatException"/> (a value that is not valid msgpack, or not of the kind asked for).</summary>
[GenerateSerializer, Alias("chord.msg-format-exception")]
internal struct MsgFormatExceptionSurrogate
{
    [Id(0)] public string Message;
}

/// <summary>Converts <see cref="MsgFormatException"/> for Orleans.</summary>
[RegisterConverter]
internal sealed class MsgFormatExceptionConverter : IConverter<MsgFormatException, MsgFormatExceptionSurrogate>
{
    public MsgFormatException ConvertFromSurrogate(in MsgFormatExceptionSurrogate surrogate) => new(surrogate.Message);

    public MsgFormatExceptionSurrogate ConvertToSurrogate(in MsgFormatException value) => new() { Message = value.Message };
}
