// Embedded Neo4j 5.26 Community server for the local dev/test stack (used where Docker is unavailable).
//
// Run with Java's single-file source launcher (classpath from `mvn dependency:build-classpath`, see pom.xml):
//   java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$(cat cp.txt)" \
//        scripts/stack/neo4j/Neo4jLauncher.java --home DIR --bolt-port 7687 --password-file FILE [--pagecache 64m]
// (Those flags keep RSS around 300-350 MB instead of ~500-600 MB and shave ~1 s off startup.)
//
// Contract with the stack scripts: exactly one line "NEO4J_READY bolt://127.0.0.1:PORT" on stdout once Bolt
// accepts authenticated connections; on failure one line "NEO4J_ERROR <reason>" on stderr and exit code 1.
// SIGTERM/SIGINT shut the database down cleanly in ~2 s (exit code 143/130, the JVM's usual signal codes).

import java.io.IOException;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

public class Neo4jLauncher {

    private static int boltPort = -1; // remembered for the error message

    public static void main(String[] args) {
        // Keep stdout reserved for the READY line: the parent process parses it.
        PrintStream out = System.out;
        try {
            run(args, out);
        } catch (Throwable e) {
            System.err.println("NEO4J_ERROR " + describe(e));
            System.err.flush();
            // halt, not exit: a half-started DBMS may hold non-daemon threads or a shutdown hook that would block.
            Runtime.getRuntime().halt(1);
        }
    }

    private static void run(String[] args, PrintStream out) throws Exception {
        String home = null;
        String passwordFile = null;
        long pagecache = ByteUnit.mebiBytes(64);
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) throw new IllegalArgumentException("missing value for " + a);
            switch (a) {
                case "--home" -> home = args[++i];
                case "--bolt-port" -> boltPort = parsePort(args[++i]);
                case "--password-file" -> passwordFile = args[++i];
                case "--pagecache" -> pagecache = parseSize(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        int port = boltPort;
        if (home == null || passwordFile == null || port <= 0 || port > 65535) {
            throw new IllegalArgumentException(
                    "usage: --home DIR --bolt-port N --password-file FILE [--pagecache 64m]");
        }
        String password;
        try {
            password = Files.readString(Path.of(passwordFile), StandardCharsets.UTF_8).trim();
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read password file " + passwordFile + ": " + e);
        }
        // Neo4j rejects passwords shorter than 8 chars (server default); fail early with a readable message.
        if (password.length() < 8) {
            throw new IllegalArgumentException("password in " + passwordFile + " must be at least 8 characters");
        }
        // Fail in milliseconds instead of after ~5 s of DBMS startup when the port is obviously taken.
        // (Neo4j's own bind error is still mapped to the same message below, should we lose a race.)
        try (ServerSocket probe = new ServerSocket()) {
            probe.setReuseAddress(true);
            probe.bind(new InetSocketAddress("127.0.0.1", port));
        }
        Path homeDir = Path.of(home).toAbsolutePath();
        Files.createDirectories(homeDir);

        Map<org.neo4j.graphdb.config.Setting<?>, Object> config = Map.ofEntries(
                Map.entry(BoltConnector.enabled, true),
                Map.entry(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port)),
                Map.entry(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port)),
                // Embedded mode does not serve HTTP, but be explicit so no extra port can ever be opened.
                Map.entry(HttpConnector.enabled, false),
                Map.entry(HttpsConnector.enabled, false),
                // Server-side routing would open a second listener (:7688) and clash between parallel stacks.
                Map.entry(GraphDatabaseSettings.routing_enabled, false),
                Map.entry(GraphDatabaseSettings.auth_enabled, true),
                // Default page cache is 50% of free RAM; dev/test data is tiny.
                Map.entry(GraphDatabaseSettings.pagecache_memory, pagecache),
                // Avoid writing 256 MiB of zeroes per tx log file: faster first start, smaller home dir.
                Map.entry(GraphDatabaseSettings.preallocate_logical_logs, false),
                Map.entry(GraphDatabaseSettings.preallocate_store_files, false),
                Map.entry(GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(16)),
                Map.entry(GraphDatabaseSettings.keep_logical_logs, "1 files"),
                // No phone-home, no background page cache profiling/warmup, no file watcher threads.
                Map.entry(GraphDatabaseSettings.udc_enabled, false),
                Map.entry(GraphDatabaseSettings.pagecache_warmup_enabled, false),
                Map.entry(GraphDatabaseSettings.filewatcher_enabled, false),
                // Tests send SIGTERM: don't wait the defaults (10 s for open transactions, then 5 s + 5 s for Bolt
                // connections and worker threads) before stopping. Internal settings, pinned to 5.26.
                Map.entry(GraphDatabaseSettings.shutdown_transaction_end_timeout, Duration.ofSeconds(2)),
                Map.entry(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1)),
                Map.entry(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1)));

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(homeDir).setConfig(config).build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
            }
        }, "neo4j-shutdown"));

        // The embedded API runs with full privileges, so it can manage users on Community without logging in.
        // The built-in user starts with password "neo4j" + change required; overwrite on every start so the
        // password file is always the source of truth (also after someone changed it by hand).
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        } catch (RuntimeException e) {
            // Re-applying the current password is refused ("Old password and new password cannot be the same"):
            // that is the normal case on every start after the first, and the state is already what we want.
            if (!String.valueOf(rootCause(e).getMessage()).contains("cannot be the same")) throw e;
            system.executeTransactionally("ALTER USER neo4j SET PASSWORD CHANGE NOT REQUIRED");
        }

        GraphDatabaseService neo4j = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        if (!neo4j.isAvailable(60_000)) {
            throw new IllegalStateException("database 'neo4j' did not become available within 60 s");
        }

        out.println("NEO4J_READY bolt://127.0.0.1:" + port);
        out.flush();
        stopped.await(); // keep the JVM alive until a signal runs the shutdown hook
    }

    private static int parsePort(String s) {
        try {
            return Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid --bolt-port " + s);
        }
    }

    private static long parseSize(String s) {
        String v = s.trim().toLowerCase(Locale.ROOT);
        long mult = 1;
        if (v.endsWith("k")) mult = ByteUnit.kibiBytes(1);
        else if (v.endsWith("m")) mult = ByteUnit.mebiBytes(1);
        else if (v.endsWith("g")) mult = ByteUnit.gibiBytes(1);
        if (mult != 1) v = v.substring(0, v.length() - 1);
        try {
            return Long.parseLong(v) * mult;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid --pagecache " + s + " (expected e.g. 64m)");
        }
    }

    private static Throwable rootCause(Throwable e) {
        while (e.getCause() != null && e.getCause() != e) e = e.getCause();
        return e;
    }

    /** One line for the parent process; the common "port taken" case gets a message a human can act on. */
    private static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof BindException || t.getClass().getSimpleName().equals("PortBindException")) {
                return "bolt port " + boltPort + " is already in use (" + rootCause(e).getMessage() + ")";
            }
        }
        Throwable root = rootCause(e);
        // Our own argument checks carry a complete message; anything else needs its type to be understandable.
        String msg = e instanceof IllegalArgumentException || e instanceof IllegalStateException
                ? String.valueOf(e.getMessage())
                : e + (root == e ? "" : " (caused by " + root + ")");
        return msg.replaceAll("\\s+", " ").trim();
    }
}
