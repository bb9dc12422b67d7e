namespace Chord.Grains.Storage;

/// <summary>
/// A Chord grain-storage operation failed for a reason other than an ETag mismatch (which is an
/// <c>InconsistentStateException</c>): the ring did not answer or acknowledge in time, or the key holds something that
/// is not a grain-state record. The message says which key, which operation and why; a failed write may or may not
/// become visible later (it reached fewer positions than a write quorum), so read the state before writing again.
/// </summary>
[GenerateSerializer, Alias("chord.grain-storage-exception")]
public sealed class ChordGrainStorageException : OrleansException
{
    /// <summary>Creates the exception.</summary>
    public ChordGrainStorageException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ChordGrainStorageException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public ChordGrainStorageException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
