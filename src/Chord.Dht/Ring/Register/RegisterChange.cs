using Chord.Dht.Wire;

namespace Chord.Dht.Ring.Register;

/// <summary>What an update decides after seeing the register's current value: keep it, or write a new one (nil deletes).</summary>
/// <param name="Write">True to write <paramref name="Value"/>; false to leave the register as it is.</param>
/// <param name="Value">The value to write; nil deletes the key.</param>
public readonly record struct RegisterChange(bool Write, MsgValue Value)
{
    /// <summary>Leave the register as it is (a compare that did not match, a read).</summary>
    public static RegisterChange Keep => new(false, MsgValue.Nil);

    /// <summary>Write <paramref name="value"/>; nil deletes.</summary>
    public static RegisterChange To(MsgValue value) => new(true, value ?? throw new ArgumentNullException(nameof(value)));
}
