using System.ComponentModel;
using System.Reflection;
using Orleans.Configuration;

namespace Chord.Silo;

/// <summary>
/// The checks of the <c>Silo:Membership:*</c> settings (Orleans' <see cref="ClusterMembershipOptions"/>, see
/// <see cref="ChordHost.MembershipSection"/>), made before anything starts so that a bad one ends the start with
/// a message naming it and what is allowed, as the host's other settings do: a name that is not an option, a value
/// the configuration binder cannot convert, and the ranges Orleans' own validator enforces when the silo starts.
/// </summary>
internal static class MembershipSettings
{
    /// <summary>Orleans' longest supported probe timeout (its timers' limit: 2^32 - 2 ms).</summary>
    private static readonly TimeSpan MaxSupportedTimeout = TimeSpan.FromMilliseconds(0xfffffffe);

    private static readonly PropertyInfo[] Settable = [.. typeof(ClusterMembershipOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.SetMethod is { IsPublic: true })
        .OrderBy(p => p.Name, StringComparer.Ordinal)];

    /// <summary>Every problem with the section's values, one sentence each; none when it binds and Orleans would accept it.</summary>
    public static List<string> Problems(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var problems = new List<string>();
        var section = configuration.GetSection(ChordHost.MembershipSection);
        foreach (var child in section.GetChildren())
        {
            var property = Settable.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            if (property is null || (child.Value is null && child.GetChildren().Any()))
            {
                problems.Add($"{child.Path} is not a membership setting; allowed: a property of Orleans' ClusterMembershipOptions: {string.Join(", ", Settable.Select(p => p.Name))}.");
                continue;
            }

            if (!Converts(property.PropertyType, child.Value))
            {
                problems.Add($"{Key(property)} is '{child.Value}'; allowed: {Describe(property.PropertyType)}.");
            }
        }

        if (problems.Count > 0)
        {
            return problems; // the ranges below need every value converted
        }

        var options = new ClusterMembershipOptions();
        ChordHost.TuneMembership(options);
        section.Bind(options);
        string Is(string name, object? value) => $"{ChordHost.MembershipSection}:{name} is " + (section[name] is { } text ? $"'{text}'"
            : name is nameof(options.MinProbeTimeout) or nameof(options.MaxProbeTimeout) ? $"{value} (derived from ProbeTimeout)"
            : $"{value} (the host's default)");

        if (options.ProbeTimeout <= TimeSpan.Zero || options.ProbeTimeout > MaxSupportedTimeout)
        {
            problems.Add($"{Is(nameof(options.ProbeTimeout), options.ProbeTimeout)}; allowed: a duration greater than 0 and at most {MaxSupportedTimeout}.");
        }
        else if (options.MinProbeTimeout <= TimeSpan.Zero)
        {
            problems.Add($"{Is(nameof(options.MinProbeTimeout), options.MinProbeTimeout)}; allowed: a duration greater than 0 (default: half of ProbeTimeout).");
        }
        else if (options.MaxProbeTimeout < options.MinProbeTimeout || options.MaxProbeTimeout > MaxSupportedTimeout)
        {
            problems.Add($"{Is(nameof(options.MaxProbeTimeout), options.MaxProbeTimeout)}; allowed: a duration from MinProbeTimeout ({options.MinProbeTimeout}) to {MaxSupportedTimeout} (default: 4 × ProbeTimeout).");
        }
        else if (options.ProbeTimeout < options.MinProbeTimeout || options.ProbeTimeout > options.MaxProbeTimeout)
        {
            problems.Add($"{Is(nameof(options.ProbeTimeout), options.ProbeTimeout)}, {Is(nameof(options.MinProbeTimeout), options.MinProbeTimeout)} and "
                + $"{Is(nameof(options.MaxProbeTimeout), options.MaxProbeTimeout)}; allowed: MinProbeTimeout <= ProbeTimeout <= MaxProbeTimeout "
                + "(by default MinProbeTimeout is half and MaxProbeTimeout 4 × ProbeTimeout).");
        }

        if (options.LivenessEnabled && (options.NumVotesForDeathDeclaration < 1 || options.NumVotesForDeathDeclaration > options.NumProbedSilos))
        {
            problems.Add($"{Is(nameof(options.NumVotesForDeathDeclaration), options.NumVotesForDeathDeclaration)}; allowed: a whole number from 1 to NumProbedSilos ({options.NumProbedSilos}).");
        }

        if (options.MaxDefunctSiloEntries < 0)
        {
            problems.Add($"{Is(nameof(options.MaxDefunctSiloEntries), options.MaxDefunctSiloEntries)}; allowed: a whole number from 0, or empty for no limit.");
        }

        return problems;
    }

    /// <summary>
    /// Orleans' own message for a configuration it refused at start (a rule <see cref="Problems"/> does not repeat),
    /// with <c>ClusterMembershipOptions.Name</c> given as the setting that sets it.
    /// </summary>
    public static string Describe(OrleansConfigurationException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var message = exception.Message;
        foreach (var property in Settable)
        {
            message = message.Replace($"{nameof(ClusterMembershipOptions)}.{property.Name}", Key(property), StringComparison.Ordinal);
        }

        return $"Orleans refused the configuration: {message}";
    }

    private static string Key(PropertyInfo property) => $"{ChordHost.MembershipSection}:{property.Name}";

    /// <summary>Whether the configuration binder converts <paramref name="text"/> to <paramref name="type"/> (empty is null for a nullable).</summary>
    private static bool Converts(Type type, string? text)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (string.IsNullOrEmpty(text))
        {
            return underlying is not null;
        }

        try
        {
            _ = TypeDescriptor.GetConverter(underlying ?? type).ConvertFromInvariantString(text);
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException or OverflowException)
        {
            return false;
        }
    }

    private static string Describe(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        var what = (underlying ?? type) switch
        {
            var t when t == typeof(TimeSpan) => "a duration as [d.]hh:mm:ss[.fff], for example 00:00:05",
            var t when t == typeof(int) => "a whole number, for example 3",
            var t when t == typeof(bool) => "true or false",
            var t => $"a {t.Name}",
        };
        return underlying is null ? what : $"{what}, or empty for none";
    }
}
