namespace Chord.Dht.Tests;

/// <summary>Waits for a condition with a deadline: the project's only way for tests to wait.</summary>
public static class Eventually
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string because)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {because}.");
            }

            await Task.Delay(20);
        }
    }
}
