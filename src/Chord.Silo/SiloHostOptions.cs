namespace Chord.Silo;

/// <summary>
/// The host's own settings (configuration section <c>Silo</c>): where the silo, its gateway and the HTTP API
/// listen, and how silos find each other. The ring node's settings are <c>ChordOptions</c> (section <c>Chord</c>).
/// </summary>
public sealed class SiloHostOptions
{
    /// <summary>The configuration section bound to these options.</summary>
    public const string SectionName = "Silo";

    /// <summary>The port silos talk to each other on (Orleans' silo port).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>The port Orleans clients connect to (Orleans' gateway port).</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The HTTP API's port; 0 lets the OS choose.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>The address the HTTP API listens on.</summary>
    public string HttpHost { get; set; } = "127.0.0.1";

    /// <summary>The IP address the silo (and its ring node) listens on and advertises to the cluster.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>With localhost clustering: the first silo's silo endpoint (host:port); unset for the first silo itself.</summary>
    public string? Primary { get; set; }

    /// <summary>The Orleans cluster id: silos with the same id (and service id) form one cluster.</summary>
    public string ClusterId { get; set; } = "chord";

    /// <summary>The Orleans service id.</summary>
    public string ServiceId { get; set; } = "chord";

    /// <summary>How silos find each other: <c>localhost</c> (one machine, through the primary) or <c>redis</c>.</summary>
    public string Clustering { get; set; } = "localhost";

    /// <summary>
    /// Export the <c>Chord.*</c> and Orleans meters through OpenTelemetry as a Prometheus scrape endpoint at
    /// <c>/metrics</c> (on the HTTP API's port); false turns the endpoint and the collection off.
    /// </summary>
    public bool Metrics { get; set; } = true;

    /// <summary>With redis clustering: the Redis server as host:port (or a StackExchange.Redis configuration string).</summary>
    public string Redis { get; set; } = "127.0.0.1:6379";
}
