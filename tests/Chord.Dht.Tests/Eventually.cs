namespace Chord.Dht.Tests;

/// <summary>Waits for a condition by polling: the only way these tests synchronise with the nodes' own threads.</summary>
public static class Eventually
{
    /// <summary>How often the condition is polled.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>A generous deadline for things that happen at once on a healthy machine; only a failure waits for it.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Polls <paramref name="condition"/> every ~20 ms until it holds; fails the test with <paramref name="because"/>
    /// when it still does not hold after <paramref name="timeout"/>. The condition is always checked once more at
    /// the deadline, so a slow machine only costs time, never a false failure before the deadline.
    /// </summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string because)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting until {because}.");
            }

            await Task.Delay(PollInterval);
        }
    }

    /// <summary>
    /// <see cref="UntilAsync(Func{bool}, TimeSpan, string)"/> whose failure message ends with what
    /// <paramref name="describe"/> says at the deadline (the state that kept the condition false).
    /// </summary>
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string because, Func<string> describe)
    {
        ArgumentNullException.ThrowIfNull(describe);
        try
        {
            await UntilAsync(condition, timeout, because);
        }
        catch (Xunit.Sdk.XunitException e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message} {describe()}");
        }
    }

    /// <summary><see cref="UntilAsync(Func{bool}, TimeSpan, string)"/> with the default deadline.</summary>
    public static Task UntilAsync(Func<bool> condition, string because) => UntilAsync(condition, Deadline, because);

    /// <summary>
    /// Polls an asynchronous condition until it holds; a poll that throws counts as "not yet" (a ring that is still
    /// converging can time out), and the last exception is reported if the deadline passes.
    /// </summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string because)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                last = e;
            }

            if (DateTime.UtcNow >= deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting until {because}." + (last is null ? string.Empty : $" Last error: {last.GetType().Name}: {last.Message}"));
            }

            await Task.Delay(PollInterval);
        }
    }
}
