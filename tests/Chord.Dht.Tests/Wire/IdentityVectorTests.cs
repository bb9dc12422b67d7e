using System.Text;
using System.Text.RegularExpressions;
using Chord.Dht.Wire;

namespace Chord.Dht.Tests.Wire;

/// <summary>PROTOCOL.md §2 against the vectors: protocol ids, base58 ints, key hashes, ring distance and node ids.</summary>
public class IdentityVectorTests
{
    public static TheoryData<string, string, string> ProtocolIds()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var entry in WireVectors.Section("protocol_ids").EnumerateArray())
        {
            data.Add(WireVectors.Str(entry, "subnet"), WireVectors.Str(entry, "encryption"), WireVectors.Str(entry, "id"));
        }

        return data;
    }

    public static TheoryData<string, string> Base58Ints()
    {
        var data = new TheoryData<string, string>();
        foreach (var entry in WireVectors.Section("base58_int").EnumerateArray())
        {
            data.Add(WireVectors.Str(entry, "int"), WireVectors.Str(entry, "b58"));
        }

        return data;
    }

    /// <summary>One case per (key, method): the key's index in the vectors and the method's wire name.</summary>
    public static TheoryData<int, string> KeyHashCases()
    {
        var data = new TheoryData<int, string>();
        var keys = WireVectors.Section("get_hashes").GetArrayLength();
        var methods = WireVectors.Section("hash_methods").EnumerateArray().Select(m => m.GetString()!).ToList();
        for (var key = 0; key < keys; key++)
        {
            foreach (var method in methods)
            {
                data.Add(key, method);
            }
        }

        return data;
    }

    public static TheoryData<int> KeyIndexes()
    {
        var data = new TheoryData<int>();
        for (var key = 0; key < WireVectors.Section("get_hashes").GetArrayLength(); key++)
        {
            data.Add(key);
        }

        return data;
    }

    public static TheoryData<string, string, string> Distances()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var entry in WireVectors.Section("distance").EnumerateArray())
        {
            data.Add(WireVectors.Str(entry, "a"), WireVectors.Str(entry, "b"), WireVectors.Str(entry, "distance"));
        }

        return data;
    }

    [Fact]
    public void Protocol_version_is_the_vectors_version()
    {
        Assert.Equal(NodeIdentity.ProtocolVersion, WireVectors.Str(WireVectors.Root, "protocol_version"));
    }

    [Theory]
    [MemberData(nameof(ProtocolIds))]
    public void Protocol_id_matches_the_reference(string subnet, string encryption, string expected)
    {
        Assert.Equal(expected, NodeIdentity.ProtocolId(subnet, encryption));
    }

    [Fact]
    public void Protocol_id_defaults_to_plaintext()
    {
        Assert.Equal("7vVFRufXm7t4vppy5LoCeXJznBnahNRjnmsRkbVYet5z", NodeIdentity.ProtocolId("chord"));
    }

    [Theory]
    [MemberData(nameof(Base58Ints))]
    public void Base58_encodes_the_integer(string integer, string base58)
    {
        Assert.Equal(base58, Base58.Encode(WireVectors.Int(integer)));
    }

    [Theory]
    [MemberData(nameof(Base58Ints))]
    public void Base58_decodes_text_and_ascii_bytes(string integer, string base58)
    {
        var expected = WireVectors.Int(integer);
        Assert.Equal(expected, Base58.Decode(base58));
        Assert.Equal(expected, Base58.Decode(Encoding.ASCII.GetBytes(base58)));
        Assert.True(Base58.TryDecode(base58, out var tried));
        Assert.Equal(expected, tried);
    }

    [Fact]
    public void Hash_methods_have_the_reference_wire_names_in_order()
    {
        var expected = WireVectors.Section("hash_methods").EnumerateArray().Select(m => m.GetString()!).ToList();
        Assert.Equal(expected, KeyHashes.Methods.Select(m => m.WireName()).ToList());
    }

    [Theory]
    [InlineData("sha1", HashMethod.Sha1)]
    [InlineData("sha224", HashMethod.Sha224)]
    [InlineData("sha256", HashMethod.Sha256)]
    [InlineData("sha384", HashMethod.Sha384)]
    [InlineData("sha512", HashMethod.Sha512)]
    public void Hash_method_wire_names_parse(string name, HashMethod expected)
    {
        Assert.True(KeyHashes.TryParse(Encoding.ASCII.GetBytes(name), out var method));
        Assert.Equal(expected, method);
        Assert.Equal(name, method.WireName());
    }

    [Theory]
    [InlineData("")]
    [InlineData("SHA1")]
    [InlineData("sha")]
    [InlineData("sha1 ")]
    [InlineData("sha3")]
    [InlineData("md5")]
    public void Unknown_hash_method_names_do_not_parse(string name)
    {
        Assert.False(KeyHashes.TryParse(Encoding.ASCII.GetBytes(name), out _));
    }

    [Theory]
    [MemberData(nameof(KeyHashCases))]
    public void Key_position_matches_the_reference(int keyIndex, string methodName)
    {
        var entry = WireVectors.Section("get_hashes")[keyIndex];
        var key = WireVectors.Hex(WireVectors.Str(entry, "key_hex"));
        Assert.True(KeyHashes.TryParse(Encoding.ASCII.GetBytes(methodName), out var method));
        var expected = WireVectors.Int(entry.GetProperty("hashes")[(int)method].GetString()!);

        var position = KeyHashes.Position(method, key);

        Assert.Equal(expected, position.Value);
        Assert.Equal(expected, RingPosition.FromBase58(position.ToBase58()).Value);
    }

    [Theory]
    [MemberData(nameof(KeyIndexes))]
    public void All_key_positions_match_the_reference_in_method_order(int keyIndex)
    {
        var entry = WireVectors.Section("get_hashes")[keyIndex];
        var key = WireVectors.Hex(WireVectors.Str(entry, "key_hex"));
        var expected = entry.GetProperty("hashes").EnumerateArray().Select(h => WireVectors.Int(h.GetString()!)).ToList();

        var positions = KeyHashes.All(key);

        Assert.Equal(expected, positions.Select(p => p.Value).ToList());
    }

    [Theory]
    [MemberData(nameof(KeyIndexes))]
    public void Sha512_position_keeps_its_full_width(int keyIndex)
    {
        var entry = WireVectors.Section("get_hashes")[keyIndex];
        var key = WireVectors.Hex(WireVectors.Str(entry, "key_hex"));
        var sha512 = WireVectors.Int(entry.GetProperty("hashes")[4].GetString()!);

        var position = KeyHashes.Position(HashMethod.Sha512, key);

        Assert.Equal(sha512, position.Value);
        Assert.Equal(sha512 % RingPosition.Limit, position.Reduced.Value);
        Assert.Equal(sha512, Base58.Decode(position.ToBase58()));
    }

    [Fact]
    public void Some_sha512_vector_lies_beyond_the_ring_so_the_width_test_can_fail()
    {
        var beyond = WireVectors.Section("get_hashes").EnumerateArray()
            .Count(e => WireVectors.Int(e.GetProperty("hashes")[4].GetString()!) >= RingPosition.Limit);
        Assert.True(beyond > 0);
    }

    [Theory]
    [MemberData(nameof(Distances))]
    public void Distance_matches_the_reference(string a, string b, string distance)
    {
        var from = new RingPosition(WireVectors.Int(a));
        var to = new RingPosition(WireVectors.Int(b));
        Assert.Equal(WireVectors.Int(distance), from.DistanceTo(to));
        Assert.Equal(WireVectors.Int(distance), RingPosition.Distance(from, to));
    }

    [Fact]
    public void Ring_limit_matches_the_reference()
    {
        Assert.Equal(WireVectors.Int(WireVectors.Str(WireVectors.Root, "distance_limit")), RingPosition.Limit);
    }

    [Fact]
    public void Node_id_matches_the_reference()
    {
        var entry = WireVectors.Section("node_id");
        var repr = WireVectors.Str(entry, "out_addr_repr");
        var match = Regex.Match(repr, @"^\('(?<host>[^']*)', (?<port>\d+)\)$");
        Assert.True(match.Success, $"Cannot parse the address repr {repr}.");
        var host = match.Groups["host"].Value;
        var port = int.Parse(match.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture);

        var id = NodeIdentity.NodeId(host, port, WireVectors.Str(entry, "protocol_id"), WireVectors.Str(entry, "salt"));

        Assert.Equal(WireVectors.Str(entry, "id"), id);
        Assert.Equal(repr, NodeIdentity.PythonAddressRepr(host, port));
        Assert.Equal(NodeIdentity.ProtocolId("chord"), WireVectors.Str(entry, "protocol_id"));
    }

    [Theory]
    [InlineData("::1", 8080, "('::1', 8080)")]
    [InlineData("it's", 1, "(\"it's\", 1)")]
    [InlineData("a'b\"c", 2, "('a\\'b\"c', 2)")]
    public void Address_repr_quotes_as_python_does(string host, int port, string expected)
    {
        Assert.Equal(expected, NodeIdentity.PythonAddressRepr(host, port));
    }
}
