using System.Numerics;
using Chord.Dht.Wire;
using Microsoft.Data.Sqlite;

namespace Chord.Dht.Ring.Storage;

/// <summary>
/// Entries in one SQLite file in the data directory. SQLite's write-ahead log makes every put atomic and durable
/// once it returns, and a kill in the middle of a write loses only that unacknowledged write.
/// </summary>
internal sealed class SqliteEntryStore : IEntryStore
{
    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();
    private readonly SqliteCommand _put;
    private readonly SqliteCommand _remove;
    private readonly FileStream _ownership;

    public SqliteEntryStore(string directory)
    {
        Directory.CreateDirectory(directory);
        _ownership = TakeOwnership(directory);
        var path = Path.Combine(directory, "chord-ring.db");
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute("PRAGMA synchronous=FULL;");
        Execute("""
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS entries (
                method INTEGER NOT NULL, position BLOB NOT NULL, value BLOB NOT NULL,
                counter INTEGER, writer TEXT, key BLOB,
                PRIMARY KEY (method, position));
            """);
        AddRegisterColumns();
        _put = _connection.CreateCommand();
        _put.CommandText = """
            INSERT INTO entries (method, position, value, counter, writer, key, accepted_counter, accepted_writer, promised_counter, promised_writer)
            VALUES ($m, $p, $v, $c, $w, $k, $ac, $aw, $pc, $pw)
            ON CONFLICT (method, position) DO UPDATE SET value = $v, counter = $c, writer = $w, key = $k,
                accepted_counter = $ac, accepted_writer = $aw, promised_counter = $pc, promised_writer = $pw;
            """;
        _remove = _connection.CreateCommand();
        _remove.CommandText = "DELETE FROM entries WHERE method = $m AND position = $p;";
    }

    public long LoadBallotFloor()
    {
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT value FROM meta WHERE name = 'ballot-floor';";
            return command.ExecuteScalar() is string text && long.TryParse(text, out var floor) ? floor : 0;
        }
    }

    public void SaveBallotFloor(long floor)
    {
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "INSERT INTO meta (name, value) VALUES ('ballot-floor', $f) ON CONFLICT (name) DO UPDATE SET value = $f;";
            command.Parameters.AddWithValue("$f", floor.ToString(System.Globalization.CultureInfo.InvariantCulture));
            command.ExecuteNonQuery();
        }
    }

    public string? LoadSalt()
    {
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT value FROM meta WHERE name = 'salt';";
            return command.ExecuteScalar() as string;
        }
    }

    public void SaveSalt(string salt)
    {
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "INSERT INTO meta (name, value) VALUES ('salt', $s) ON CONFLICT (name) DO UPDATE SET value = $s;";
            command.Parameters.AddWithValue("$s", salt);
            command.ExecuteNonQuery();
        }
    }

    public IEnumerable<(HashMethod Method, BigInteger Position, StoredEntry Entry)> LoadEntries()
    {
        var result = new List<(HashMethod, BigInteger, StoredEntry)>();
        lock (_lock)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT method, position, value, counter, writer, key, accepted_counter, accepted_writer, promised_counter, promised_writer FROM entries;";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var method = (HashMethod)reader.GetInt32(0);
                var position = new BigInteger((byte[])reader[1], isUnsigned: true, isBigEndian: true);
                var value = MsgPack.Deserialize((byte[])reader[2]);
                EntryVersion? version = reader.IsDBNull(3) ? null : new EntryVersion(reader.GetInt64(3), reader.GetString(4));
                var key = reader.IsDBNull(5) ? null : (byte[])reader[5];
                EntryVersion? accepted = reader.IsDBNull(6) ? null : new EntryVersion(reader.GetInt64(6), reader.GetString(7));
                EntryVersion? promised = reader.IsDBNull(8) ? null : new EntryVersion(reader.GetInt64(8), reader.GetString(9));
                result.Add((method, position, new StoredEntry(value, version, key, accepted, promised)));
            }
        }

        return result;
    }

    public void Put(HashMethod method, BigInteger position, StoredEntry entry)
    {
        lock (_lock)
        {
            _put.Parameters.Clear();
            _put.Parameters.AddWithValue("$m", (int)method);
            _put.Parameters.AddWithValue("$p", position.ToByteArray(isUnsigned: true, isBigEndian: true));
            _put.Parameters.AddWithValue("$v", MsgPack.Serialize(entry.Value));
            _put.Parameters.AddWithValue("$c", entry.Version is { } v ? v.Counter : DBNull.Value);
            _put.Parameters.AddWithValue("$w", entry.Version is { } w ? w.Writer : DBNull.Value);
            _put.Parameters.AddWithValue("$k", (object?)entry.Key ?? DBNull.Value);
            _put.Parameters.AddWithValue("$ac", entry.Accepted is { } a ? a.Counter : DBNull.Value);
            _put.Parameters.AddWithValue("$aw", entry.Accepted is { } aw ? aw.Writer : DBNull.Value);
            _put.Parameters.AddWithValue("$pc", entry.Promised is { } pr ? pr.Counter : DBNull.Value);
            _put.Parameters.AddWithValue("$pw", entry.Promised is { } pw ? pw.Writer : DBNull.Value);
            _put.ExecuteNonQuery();
        }
    }

    public void Remove(HashMethod method, BigInteger position)
    {
        lock (_lock)
        {
            _remove.Parameters.Clear();
            _remove.Parameters.AddWithValue("$m", (int)method);
            _remove.Parameters.AddWithValue("$p", position.ToByteArray(isUnsigned: true, isBigEndian: true));
            _remove.ExecuteNonQuery();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _put.Dispose();
            _remove.Dispose();
            _connection.Dispose();
            _ownership.Dispose();
        }
    }

    /// <summary>
    /// Locks the directory for this node: two nodes sharing one directory would share one salt, so one node id, and
    /// overwrite each other's entries. The lock is the operating system's (released when the process dies).
    /// </summary>
    private static FileStream TakeOwnership(string directory)
    {
        var path = Path.Combine(directory, "chord-ring.lock");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException(
                $"The data directory '{directory}' is in use by another ring node ({path} is locked). Each node needs a directory of its own.", ex);
        }
    }

    /// <summary>The register's ballots (added after the first version): added to a data directory made before them.</summary>
    private void AddRegisterColumns()
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        using (var command = _connection.CreateCommand())
        {
            command.CommandText = "PRAGMA table_info(entries);";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                present.Add(reader.GetString(1));
            }
        }

        foreach (var (column, type) in new[] { ("accepted_counter", "INTEGER"), ("accepted_writer", "TEXT"), ("promised_counter", "INTEGER"), ("promised_writer", "TEXT") })
        {
            if (!present.Contains(column))
            {
                Execute($"ALTER TABLE entries ADD COLUMN {column} {type};");
            }
        }
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
