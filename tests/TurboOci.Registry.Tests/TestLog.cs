using System.Collections.Concurrent;
using TurboOci.Testing.Registry;

namespace TurboOci.Registry.Tests;

/// <summary>Collects everything the client logs, so tests can grep it for secrets.</summary>
internal sealed class TestLog
{
    private readonly ConcurrentQueue<string> _lines = new();

    public void Add(string line) => _lines.Enqueue(line);

    public string Text => string.Join('\n', _lines);

    /// <summary>Fails if any secret of the registry appears in our log or in the given texts.</summary>
    public void AssertNoSecrets(RegistryServer registry, params string?[] more)
    {
        var everything = Text + "\n" + string.Join('\n', more.Where(m => m is not null));
        if (registry.Password is { } password)
        {
            Assert.DoesNotContain(password, everything, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{registry.User}:{password}")), everything, StringComparison.Ordinal);
        }

        if (registry.Tokens?.LastToken is { } token)
        {
            Assert.DoesNotContain(token, everything, StringComparison.Ordinal);
            Assert.DoesNotContain(token.Split('.')[2], everything, StringComparison.Ordinal);
        }
    }

    /// <summary>A client for the test registry with its credentials and this log.</summary>
    public RegistryClient ClientFor(RegistryServer registry, RetryPolicy? retry = null, TimeSpan? attemptTimeout = null, string? password = null) =>
        new(new RegistryClientOptions
        {
            Credentials = registry.Password is null ? null : new StaticCredentialProvider(new RegistryCredential(registry.User, password ?? registry.Password)),
            Log = Add,
            Retry = retry ?? new RetryPolicy { BaseDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) },
            AttemptTimeout = attemptTimeout ?? TimeSpan.FromSeconds(30),
        });
}
