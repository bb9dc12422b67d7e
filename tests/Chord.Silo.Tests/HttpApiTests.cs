using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Chord.Dht.Wire;

namespace Chord.Silo.Tests;

/// <summary>Every route of the HTTP API, through the first of three hosts, with its bad inputs and problem details.</summary>
[Collection("hosts")]
public sealed class HttpApiTests(HostsFixture fixture) : IDisposable
{
    private readonly HttpClient _http = fixture.Hosts.Client(0);

    private static string Unique(string name) => $"{name}-{Guid.NewGuid():N}";

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Put_json_then_get_returns_the_value_as_json_with_its_version_as_etag()
    {
        var key = Unique("profile");
        using var put = await _http.PutAsync($"kv/{key}", Json("""{"name": "Ada", "age": 36, "tags": ["x", "y"]}"""));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);

        using var get = await _http.GetAsync($"kv/{key}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("application/json", get.Content.Headers.ContentType?.MediaType);
        Assert.Equal("""{"name":"Ada","age":36,"tags":["x","y"]}""", await get.Content.ReadAsStringAsync());
        Assert.Matches("^\"1@[1-9A-HJ-NP-Za-km-z]+\"$", get.Headers.ETag?.Tag);

        // Stored as a msgpack map on the ring, as py2p would read it.
        var stored = await fixture.Hosts[2].RingNode.Node.GetAsync(key);
        Assert.Equal(MsgKind.Map, stored.Kind);
    }

    [Fact]
    public async Task A_second_put_replaces_the_value_and_raises_the_version()
    {
        var key = Unique("counter");
        (await _http.PutAsync($"kv/{key}", Json("1"))).Dispose();
        using var first = await _http.GetAsync($"kv/{key}");
        (await _http.PutAsync($"kv/{key}", Json("2"))).Dispose();
        using var second = await _http.GetAsync($"kv/{key}");
        Assert.Equal("2", await second.Content.ReadAsStringAsync());
        Assert.NotEqual(first.Headers.ETag, second.Headers.ETag);
        Assert.StartsWith("\"2@", second.Headers.ETag?.Tag, StringComparison.Ordinal);
    }

    [Fact]
    public async Task If_match_makes_a_put_a_compare_and_set_on_the_etag()
    {
        var key = Unique("cas");
        (await _http.PutAsync($"kv/{key}", Json("1"))).Dispose();
        using var read = await _http.GetAsync($"kv/{key}");
        var etag = read.Headers.ETag!.Tag;

        using var first = await Send(HttpMethod.Put, key, "2", ("If-Match", etag));
        Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        Assert.NotEqual(etag, first.Headers.ETag?.Tag);

        using var stale = await Send(HttpMethod.Put, key, "3", ("If-Match", etag));
        var problem = await AssertProblemAsync(stale, HttpStatusCode.PreconditionFailed);
        Assert.Contains("nothing was written", problem.Detail, StringComparison.Ordinal);
        Assert.Equal(first.Headers.ETag?.Tag, stale.Headers.ETag?.Tag);
        Assert.Equal("2", await _http.GetStringAsync($"kv/{key}"));
    }

    [Fact]
    public async Task If_none_match_star_writes_only_a_key_without_a_value()
    {
        var key = Unique("create-once");
        using var created = await Send(HttpMethod.Put, key, "\"first\"", ("If-None-Match", "*"));
        Assert.Equal(HttpStatusCode.NoContent, created.StatusCode);
        using var again = await Send(HttpMethod.Put, key, "\"second\"", ("If-None-Match", "*"));
        await AssertProblemAsync(again, HttpStatusCode.PreconditionFailed);
        Assert.Equal("\"first\"", await _http.GetStringAsync($"kv/{key}"));
    }

    [Fact]
    public async Task A_conditional_delete_deletes_only_the_version_it_names()
    {
        var key = Unique("cas-delete");
        (await _http.PutAsync($"kv/{key}", Json("1"))).Dispose();
        using var read = await _http.GetAsync($"kv/{key}");
        (await _http.PutAsync($"kv/{key}", Json("2"))).Dispose();

        using var stale = await Send(HttpMethod.Delete, key, null, ("If-Match", read.Headers.ETag!.Tag));
        await AssertProblemAsync(stale, HttpStatusCode.PreconditionFailed);
        using var current = await Send(HttpMethod.Delete, key, null, ("If-Match", stale.Headers.ETag!.Tag));
        Assert.Equal(HttpStatusCode.NoContent, current.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"kv/{key}")).StatusCode);
    }

    [Theory]
    [InlineData("If-Match", "\"not a version\"")]
    [InlineData("If-None-Match", "\"1@x\"")]
    public async Task A_malformed_precondition_is_a_400(string header, string value)
    {
        using var response = await Send(HttpMethod.Put, Unique("cas-bad"), "1", (header, value));
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(header, problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Octet_stream_is_stored_as_bytes_and_read_back_raw()
    {
        var key = Unique("blob");
        byte[] bytes = [0, 1, 2, 0xFF, 0xC3, 0x28];
        using var body = new ByteArrayContent(bytes);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var put = await _http.PutAsync($"kv/{key}", body);
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);

        using var get = await _http.GetAsync($"kv/{key}");
        Assert.Equal("application/octet-stream", get.Content.Headers.ContentType?.MediaType);
        Assert.Equal(bytes, await get.Content.ReadAsByteArrayAsync());
        Assert.Equal(MsgValue.Bin(bytes), await fixture.Hosts[1].RingNode.Node.GetAsync(key));
    }

    [Fact]
    public async Task Text_plain_is_stored_as_a_string()
    {
        var key = Unique("note");
        using var put = await _http.PutAsync($"kv/{key}", new StringContent("not JSON, just text", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal(MsgValue.Str("not JSON, just text"), await fixture.Hosts[0].RingNode.Node.GetAsync(key));
        Assert.Equal("\"not JSON, just text\"", await _http.GetStringAsync($"kv/{key}"));
    }

    [Fact]
    public async Task A_key_is_one_percent_encoded_segment_and_may_hold_any_character()
    {
        var key = Unique("a/b c?é%2F");
        using var put = await _http.PutAsync($"kv/{Uri.EscapeDataString(key)}", Json("\"odd\""));
        Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        Assert.Equal(MsgValue.Str("odd"), await fixture.Hosts[0].RingNode.Node.GetAsync(key));
        Assert.Equal("\"odd\"", await _http.GetStringAsync($"kv/{Uri.EscapeDataString(key)}"));
    }

    [Fact]
    public async Task Get_of_a_missing_key_is_a_404_problem()
    {
        using var get = await _http.GetAsync($"kv/{Unique("never")}");
        var problem = await AssertProblemAsync(get, HttpStatusCode.NotFound);
        Assert.Contains("has no value", problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_removes_the_key_and_a_second_delete_is_404()
    {
        var key = Unique("doomed");
        (await _http.PutAsync($"kv/{key}", Json("\"x\""))).Dispose();
        using var delete = await _http.DeleteAsync($"kv/{key}");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using var get = await _http.GetAsync($"kv/{key}");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        using var again = await _http.DeleteAsync($"kv/{key}");
        await AssertProblemAsync(again, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delta_merges_into_the_stored_map_and_returns_the_result()
    {
        var key = Unique("settings");
        using var first = await _http.PostAsync($"kv/{key}/delta", Json("""{"retries": 3}"""));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("""{"retries":3}""", await first.Content.ReadAsStringAsync());

        using var second = await _http.PostAsync($"kv/{key}/delta", Json("""{"ratio": 0.5, "retries": 4}"""));
        using var merged = JsonDocument.Parse(await second.Content.ReadAsStringAsync());
        Assert.Equal(4, merged.RootElement.GetProperty("retries").GetInt32());
        Assert.Equal(0.5, merged.RootElement.GetProperty("ratio").GetDouble());
        using var read = JsonDocument.Parse(await _http.GetStringAsync($"kv/{key}"));
        Assert.Equal(4, read.RootElement.GetProperty("retries").GetInt32());
    }

    [Theory]
    [InlineData("[1, 2]", "an array")]
    [InlineData("\"text\"", "a string")]
    [InlineData("42", "a number")]
    [InlineData("null", "null")]
    public async Task Delta_of_anything_but_an_object_is_a_400_saying_what_it_got(string body, string got)
    {
        var key = Unique("settings");
        using var response = await _http.PostAsync($"kv/{key}/delta", Json(body));
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("must be a JSON object", problem.Detail, StringComparison.Ordinal);
        Assert.Contains($"got {got}", problem.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"kv/{key}")).StatusCode);
    }

    [Fact]
    public async Task Delta_into_a_value_that_is_not_a_map_is_a_409_and_leaves_it()
    {
        // Eight keys: their grains land on all three silos, so the ring's refusal also comes back across silos.
        for (var i = 0; i < 8; i++)
        {
            var key = Unique("plain");
            (await _http.PutAsync($"kv/{key}", Json("\"just a string\""))).Dispose();
            using var response = await _http.PostAsync($"kv/{key}/delta", Json("""{"a": 1}"""));
            var problem = await AssertProblemAsync(response, HttpStatusCode.Conflict);
            Assert.Contains("not a map", problem.Detail, StringComparison.Ordinal);
            Assert.Equal("\"just a string\"", await _http.GetStringAsync($"kv/{key}"));
        }
    }

    [Theory]
    [InlineData("{\"unclosed\": ")]
    [InlineData("{'single': 'quotes'}")]
    [InlineData("hello")]
    public async Task A_malformed_json_body_is_a_400_and_stores_nothing(string body)
    {
        var key = Unique("bad");
        using var put = await _http.PutAsync($"kv/{key}", Json(body));
        var problem = await AssertProblemAsync(put, HttpStatusCode.BadRequest);
        Assert.Contains("not valid JSON", problem.Detail, StringComparison.Ordinal);
        Assert.Contains("application/octet-stream", problem.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"kv/{key}")).StatusCode);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("null", "JSON null")]
    [InlineData("{\"$bin\": \"not base64!\"}", "not base64")]
    public async Task An_empty_null_or_bad_bytes_body_is_a_400(string body, string said)
    {
        using var put = await _http.PutAsync($"kv/{Unique("bad")}", Json(body));
        var problem = await AssertProblemAsync(put, HttpStatusCode.BadRequest);
        Assert.Contains(said, problem.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PUT", "kv/")]
    [InlineData("GET", "kv/")]
    [InlineData("DELETE", "kv")]
    public async Task An_empty_key_is_a_400(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "PUT" ? Json("1") : null };
        using var response = await _http.SendAsync(request);
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("key is empty", problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_shows_the_five_positions_agreeing_with_the_decision()
    {
        var key = Unique("inspected");
        (await _http.PutAsync($"kv/{key}", Json("\"seen\""))).Dispose();
        using var document = JsonDocument.Parse(await _http.GetStringAsync($"kv/{key}/inspect"));
        var root = document.RootElement;
        Assert.Equal(key, root.GetProperty("key").GetString());
        Assert.True(root.GetProperty("hasMajority").GetBoolean());
        Assert.Equal("seen", root.GetProperty("value").GetString());
        var positions = root.GetProperty("positions").EnumerateArray().ToList();
        Assert.Equal(["sha1", "sha224", "sha256", "sha384", "sha512"], positions.Select(p => p.GetProperty("method").GetString()).Order(StringComparer.Ordinal));
        var nodeIds = fixture.Hosts.Hosts.Select(h => h.RingNode.Node.Id).ToHashSet(StringComparer.Ordinal);
        Assert.All(positions, p =>
        {
            Assert.True(p.GetProperty("answered").GetBoolean());
            Assert.True(p.GetProperty("agreesWithMajority").GetBoolean());
            Assert.Equal("seen", p.GetProperty("value").GetString());
            Assert.Contains(p.GetProperty("ownerId").GetString()!, nodeIds);
            Assert.Equal(root.GetProperty("version").GetString(), p.GetProperty("version").GetString());
        });
    }

    [Fact]
    public async Task Keys_come_in_ordinal_pages_linked_by_next()
    {
        var prefix = Unique("page") + "-";
        var keys = Enumerable.Range(0, 7).Select(i => $"{prefix}{i:00}").ToList();
        foreach (var key in keys.AsEnumerable().Reverse())
        {
            (await _http.PutAsync($"kv/{key}", Json("0"))).Dispose();
        }

        // Other tests share the ring: start just before the prefix and stop at the first key past it.
        var seen = new List<string>();
        string? after = prefix;
        var pages = 0;
        while (after is not null && after.StartsWith(prefix, StringComparison.Ordinal))
        {
            using var page = JsonDocument.Parse(await _http.GetStringAsync($"keys?after={Uri.EscapeDataString(after)}&limit=3"));
            var listed = page.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToList();
            Assert.True(listed.Count <= 3);
            Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
            seen.AddRange(listed.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)));
            after = page.RootElement.GetProperty("next").GetString();
            Assert.True(after is null || after == listed[^1]);
            pages++;
        }

        Assert.Equal(keys, seen);
        Assert.True(pages >= 3);
    }

    [Fact]
    public async Task Keys_without_a_limit_default_to_a_page_of_100_and_omit_deleted_keys()
    {
        var key = Unique("listed");
        (await _http.PutAsync($"kv/{key}", Json("1"))).Dispose();
        using var before = JsonDocument.Parse(await _http.GetStringAsync($"keys?after={Uri.EscapeDataString(key[..^1])}"));
        Assert.Equal(key, before.RootElement.GetProperty("keys")[0].GetString());
        Assert.True(before.RootElement.GetProperty("keys").GetArrayLength() <= 100);

        // The listing is each silo's table: a position that applies the delete after its quorum did lists the key until then.
        (await _http.DeleteAsync($"kv/{key}")).Dispose();
        await Eventually.UntilAsync(async () =>
        {
            using var after = JsonDocument.Parse(await _http.GetStringAsync($"keys?after={Uri.EscapeDataString(key[..^1])}"));
            return !after.RootElement.GetProperty("keys").EnumerateArray().Any(k => k.GetString() == key);
        }, TimeSpan.FromSeconds(20), "the deleted key is no longer listed");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("10001")]
    [InlineData("-5")]
    [InlineData("many")]
    public async Task A_limit_out_of_range_is_a_400_naming_the_range(string limit)
    {
        using var response = await _http.GetAsync($"keys?limit={limit}");
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains($"limit is '{limit}'", problem.Detail, StringComparison.Ordinal);
        Assert.Contains("1 to 10000", problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ring_lists_the_three_silos_storing_with_shares_that_add_up_to_one()
    {
        using var document = JsonDocument.Parse(await _http.GetStringAsync("ring"));
        var members = document.RootElement.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(fixture.Hosts[0].RingNode.Node.Id, document.RootElement.GetProperty("observedBy").GetString());
        Assert.Equal(
            fixture.Hosts.Hosts.Select(h => h.RingNode.Node.Id).Order(StringComparer.Ordinal),
            members.Select(m => m.GetProperty("nodeId").GetString()!).Order(StringComparer.Ordinal));
        Assert.All(members, m =>
        {
            Assert.True(m.GetProperty("storing").GetBoolean());
            Assert.False(string.IsNullOrEmpty(m.GetProperty("silo").GetString()));
            Assert.True(m.GetProperty("keys").GetInt32() >= 0);
            Assert.Matches(@"^127\.0\.0\.1:\d+$", m.GetProperty("address").GetString());
        });
        Assert.Equal(1.0, members.Sum(m => m.GetProperty("share").GetDouble()), 3);
        Assert.Equal(
            fixture.Hosts.Hosts.Select(h => h.SiloAddress.ToParsableString()).Order(StringComparer.Ordinal),
            members.Select(m => m.GetProperty("silo").GetString()!).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("PUT", "%20")]
    [InlineData("GET", "%20%20")]
    [InlineData("DELETE", "%09")]
    public async Task A_key_of_whitespace_only_is_a_clear_400(string method, string key)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), $"kv/{key}") { Content = method == "PUT" ? Json("1") : null };
        using var response = await _http.SendAsync(request);
        var (_, detail) = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("only whitespace", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("primaryKey", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ring_counts_owned_positions_apart_from_held_copies()
    {
        var key = Unique("owned");
        using (var put = await _http.PutAsync($"kv/{key}", Json("1")))
        {
            Assert.Equal(HttpStatusCode.NoContent, put.StatusCode);
        }

        await Eventually.UntilAsync(async () =>
        {
            using var ring = JsonDocument.Parse(await _http.GetStringAsync("ring"));
            var members = ring.RootElement.GetProperty("members").EnumerateArray().ToList();
            var owned = members.Sum(m => m.GetProperty("ownedKeys").GetInt32());
            using var keys = JsonDocument.Parse(await _http.GetStringAsync("keys?limit=10000"));
            var count = keys.RootElement.GetProperty("keys").GetArrayLength();
            // Each key with a value has exactly five positions, each owned by one member; copies are only in "keys".
            return owned == 5 * count && members.All(m => m.GetProperty("ownedKeys").GetInt32() <= m.GetProperty("keys").GetInt32());
        }, Eventually.Deadline, "the members' owned entries add up to five per key, each no more than it holds");
    }

    [Fact]
    public async Task Health_is_200_with_the_storing_ring_node()
    {
        using var response = await _http.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("healthy", document.RootElement.GetProperty("status").GetString());
        Assert.Equal(fixture.Hosts[0].RingNode.Node.Id, document.RootElement.GetProperty("nodeId").GetString());
        Assert.True(document.RootElement.GetProperty("storing").GetBoolean());
        Assert.Equal(3, document.RootElement.GetProperty("storingMembers").GetInt32());
        Assert.Equal(3, document.RootElement.GetProperty("activeSilos").GetInt32());
    }

    [Fact]
    public async Task The_status_page_shows_the_ring_members()
    {
        using var response = await _http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var page = await response.Content.ReadAsStringAsync();
        Assert.All(fixture.Hosts.Hosts, h => Assert.Contains($"<td>{h.RingNode.Node.Id}</td>", page, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_route_is_a_404_problem()
    {
        using var response = await _http.GetAsync("no/such/route");
        await AssertProblemAsync(response, HttpStatusCode.NotFound);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<HttpResponseMessage> Send(HttpMethod method, string key, string? json, (string Name, string Value) header)
    {
        using var request = new HttpRequestMessage(method, $"kv/{key}") { Content = json is null ? null : Json(json) };
        request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        return await _http.SendAsync(request);
    }

    internal static async Task<(string? Title, string Detail)> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal((int)status, document.RootElement.GetProperty("status").GetInt32());
        var detail = document.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? string.Empty : string.Empty;
        return (document.RootElement.GetProperty("title").GetString(), detail);
    }
}
