using MessagePack;
using MessagePack.Resolvers;

namespace Chord.Dht.Wire;

/// <summary>
/// Converts .NET values to and from <see cref="MsgValue"/> through MessagePack-CSharp. Objects become maps with
/// str keys (their property names) and collections arrays, which a py2p node reads as dicts and lists.
/// </summary>
public static class MsgValueConverter
{
    /// <summary>The serializer options: contractless (no attributes needed), with the standard resolvers.</summary>
    public static MessagePackSerializerOptions SerializerOptions { get; } =
        MessagePackSerializerOptions.Standard.WithResolver(ContractlessStandardResolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>The msgpack form of <paramref name="value"/>.</summary>
    public static MsgValue From<T>(T value) => MsgPack.Deserialize(MessagePackSerializer.Serialize(value, SerializerOptions));

    /// <summary>Reads <paramref name="value"/> as <typeparamref name="T"/>; throws <see cref="MessagePackSerializationException"/> when it does not fit.</summary>
    public static T To<T>(MsgValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return MessagePackSerializer.Deserialize<T>(MsgPack.Serialize(value), SerializerOptions);
    }
}
