namespace Chord.Dht;

/// <summary>The range check behind every options validator: the message names the setting, its value and what is allowed.</summary>
internal static class OptionCheck
{
    public static void InRange(bool ok, string owner, string name, object value, string allowed)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException($"{owner}.{name}", value, $"{owner}.{name} is {value}; allowed: {allowed}.");
        }
    }
}
