namespace Chord.Silo.Tests;

/// <summary>A text writer a host's or a node's task writes to while the test reads it.</summary>
internal sealed class SynchronizedWriter : StringWriter
{
    private readonly Lock _lock = new();

    /// <summary>Everything written so far.</summary>
    public string Text
    {
        get
        {
            lock (_lock)
            {
                return ToString();
            }
        }
    }

    public override void Write(char value)
    {
        lock (_lock)
        {
            base.Write(value);
        }
    }

    public override void Write(string? value)
    {
        lock (_lock)
        {
            base.Write(value);
        }
    }

    public override void WriteLine(string? value)
    {
        lock (_lock)
        {
            base.WriteLine(value);
        }
    }
}
