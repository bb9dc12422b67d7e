using System.Globalization;
using System.Text;

namespace Chord.Bench;

/// <summary>A markdown table: a title, the grid's own columns, then the measured columns of <see cref="Measurement"/>.</summary>
public sealed class ResultTable
{
    public static readonly string[] MeasuredColumns =
        ["ops/s", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "p50 ×floor", "p99 ×floor", "CPU µs/op", "alloc B/op", "frames/op", "bytes/op", "errors"];

    private readonly List<string[]> _rows = [];

    public ResultTable(string title, IReadOnlyList<string> columns)
    {
        Title = title;
        Columns = columns;
    }

    /// <summary>A table of the grid's columns followed by <see cref="MeasuredColumns"/>.</summary>
    public static ResultTable Measured(string title, IReadOnlyList<string> grid) => new(title, [.. grid, .. MeasuredColumns]);

    public string Title { get; }

    public IReadOnlyList<string> Columns { get; }

    public IReadOnlyList<string[]> Rows => _rows;

    public List<string> Notes { get; } = [];

    public void Add(params string[] cells)
    {
        if (cells.Length != Columns.Count)
        {
            throw new ArgumentException($"A row of '{Title}' needs {Columns.Count} cells; got {cells.Length}.");
        }

        _rows.Add(cells);
    }

    /// <summary>The grid's cells followed by the measured ones; <paramref name="floorMicros"/> scales the ×floor columns.</summary>
    public void Add(IEnumerable<string> grid, Measurement m, double floorMicros) =>
        Add([.. grid, .. Cells(m, floorMicros)]);

    public static string[] Cells(Measurement m, double floorMicros)
    {
        var p50 = m.Latency.PercentileMicros(0.50);
        var p99 = m.Latency.PercentileMicros(0.99);
        return
        [
            N(m.OpsPerSecond, "#,0"),
            N(p50, "#,0.0"),
            N(m.Latency.PercentileMicros(0.90), "#,0.0"),
            N(p99, "#,0.0"),
            N(m.Latency.PercentileMicros(0.999), "#,0.0"),
            N(p50 / floorMicros, "0.0"),
            N(p99 / floorMicros, "0.0"),
            N(m.CpuMicrosPerOp, "#,0"),
            N(m.AllocatedPerOp, "#,0"),
            N(m.FramesPerOp, "0.0"),
            N(m.BytesPerOp, "#,0"),
            m.Errors.ToString(CultureInfo.InvariantCulture),
        ];
    }

    public static string N(double value, string format) =>
        double.IsNaN(value) || double.IsInfinity(value) ? "-" : value.ToString(format, CultureInfo.InvariantCulture);

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.Append("### ").AppendLine(Title).AppendLine();
        text.Append("| ").AppendJoin(" | ", Columns).AppendLine(" |");
        var first = _rows.Count > 0 ? _rows[0] : null;
        text.Append('|').AppendJoin('|', Columns.Select((_, i) => first is null || first[i].Length == 0 || !char.IsDigit(first[i][0]) ? "---" : "--:")).AppendLine("|");
        foreach (var row in _rows)
        {
            text.Append("| ").AppendJoin(" | ", row).AppendLine(" |");
        }

        if (Notes.Count > 0)
        {
            text.AppendLine();
            foreach (var note in Notes)
            {
                text.Append("* ").AppendLine(note);
            }
        }

        return text.ToString();
    }
}
