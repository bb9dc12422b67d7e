using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Chord.Grains;
using Chord.Interfaces;

namespace Chord.Silo.Api;

/// <summary><c>GET /</c>: a small HTML page with this silo, the ring as a table, and the API's routes.</summary>
internal static class StatusPage
{
    public static async Task<IResult> RenderAsync(HttpContext context, IGrainFactory grains, ChordSiloNode silo, ILocalSiloDetails local)
    {
        var html = HtmlEncoder.Default;
        var page = new StringBuilder();
        var baseUrl = $"{context.Request.Scheme}://{context.Request.Host}";
        page.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>Chord silo</title>")
            .Append("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}")
            .Append("code,td{font-family:monospace}</style></head><body>")
            .Append(CultureInfo.InvariantCulture, $"<h1>Chord silo {html.Encode(local.SiloAddress.ToString())}</h1>");
        if (!silo.IsStarted)
        {
            page.Append("<p>The ring node is not started (the silo is starting or stopping).</p>");
        }
        else
        {
            var node = silo.Node;
            page.Append(CultureInfo.InvariantCulture, $"<p>Ring node <code>{html.Encode(node.Id)}</code> on <code>{html.Encode(node.Mesh.Address.ToString())}</code>, {(node.IsLeeching ? "leeching" : "storing")}.</p>");
            var status = await grains.GetGrain<IChordRingGrain>(0).GetStatus();
            page.Append("<table><tr><th>node id</th><th>address</th><th>silo</th><th>storing</th><th>owned</th><th>held</th><th>share</th></tr>");
            foreach (var m in status.Members)
            {
                page.Append(CultureInfo.InvariantCulture,
                    $"<tr><td>{html.Encode(m.NodeId)}</td><td>{html.Encode(m.Address)}</td><td>{html.Encode(m.Silo ?? "-")}</td><td>{(m.IsStoring ? "yes" : "no")}</td><td>{m.OwnedKeyCount?.ToString(CultureInfo.InvariantCulture) ?? "-"}</td><td>{m.KeyCount?.ToString(CultureInfo.InvariantCulture) ?? "-"}</td><td>{m.Share * 100:0.0}%</td></tr>");
            }

            page.Append("</table>");
        }

        page.Append("<h2>API</h2><ul>")
            .Append("<li><code>PUT /kv/{key}</code> (JSON, or raw bytes with <code>Content-Type: application/octet-stream</code>), <code>GET /kv/{key}</code>, <code>DELETE /kv/{key}</code></li>")
            .Append("<li><code>POST /kv/{key}/delta</code> (a JSON object merged into the stored map), <code>GET /kv/{key}/inspect</code></li>")
            .Append("<li><a href=\"/keys\"><code>GET /keys?after=&amp;limit=</code></a>, <a href=\"/ring\"><code>GET /ring</code></a>, <a href=\"/health\"><code>GET /health</code></a> (<code>/health/live</code>, <code>/health/ready</code>), <a href=\"/metrics\"><code>GET /metrics</code></a></li></ul>")
            .Append(CultureInfo.InvariantCulture, $"<p>Try: <code>curl -X PUT {html.Encode(baseUrl)}/kv/greeting -H 'Content-Type: application/json' -d '\"hello\"'</code></p>")
            .Append("</body></html>");
        return Results.Content(page.ToString(), "text/html; charset=utf-8");
    }
}
