namespace TurboOci.Testing;

/// <summary>
/// Last line of defence: mounts and loop devices a test forgot to dispose (or could not, because the test
/// host is shutting down after a failure) are released when the process exits, newest first.
/// </summary>
internal static class LeakGuard
{
    private static readonly Lock s_lock = new();
    private static readonly List<IDisposable> s_live = [];

    static LeakGuard()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => ReleaseAll();
    }

    public static void Register(IDisposable resource)
    {
        lock (s_lock)
        {
            s_live.Add(resource);
        }
    }

    public static void Unregister(IDisposable resource)
    {
        lock (s_lock)
        {
            s_live.Remove(resource);
        }
    }

    private static void ReleaseAll()
    {
        IDisposable[] live;
        lock (s_lock)
        {
            live = [.. s_live];
        }

        for (var i = live.Length - 1; i >= 0; i--)
        {
            try
            {
                live[i].Dispose();
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"TurboOci.Testing: could not release {live[i]}: {e.Message}");
            }
        }
    }
}
