package cn.wangge.core.tests

import java.io.File
import java.io.IOException
import java.net.HttpURLConnection
import java.net.Proxy
import java.net.URI
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.time.Duration
import java.util.concurrent.TimeUnit

/**
 * A real wangge-server on a database of its own, for tests that need one:
 *
 * ```
 * TestServer().use { server ->                          // temporary directory + database
 *     server.addGrid("440703001001001", "X")            // admin commands: before start()
 *     val code = server.addWorker("w1", "full_time_worker", listOf("440703001001001"))
 *     server.start()                                    // returns once /healthz answers 200
 *     ... server.url ...                                // "http://127.0.0.1:PORT"
 *     server.stop()                                     // Ctrl-C (SIGINT); may start() again:
 *     server.start()                                    // same database, port and url
 * }                                                     // stops it, deletes the directory
 * ```
 *
 * The binary is the system property `wangge.server` (scripts/test-bindings sets it), else
 * `$WANGGE_SERVER`, else `target/debug/wangge-server`. The server runs in its own directory
 * with the WANGGE_* variables removed; its output goes to [logFile], which errors quote.
 */
class TestServer(val binary: Path = defaultBinary()) : AutoCloseable {
    val dir: Path = Files.createTempDirectory("wangge-server-")
    val db: Path = dir.resolve("server.db")
    val logFile: Path = dir.resolve("server.log")

    /** `http://127.0.0.1:PORT` once [start] has returned. */
    lateinit var url: String
        private set

    private var listen = "127.0.0.1:0"
    private var process: Process? = null
    private var killOnExit: Thread? = null

    init {
        require(Files.isRegularFile(binary)) { "$binary: no server binary (run scripts/bindings first)" }
    }

    val running: Boolean get() = process?.isAlive == true

    /** Runs `wangge-server --db <db> ARGS...` (before [start]) and returns its standard output. */
    fun admin(vararg args: String): String {
        check(process == null) { "admin commands run before start() (or after stop())" }
        val output = Files.createTempFile(dir, "admin-", ".out").toFile()
        val exited = command(listOf("--db", db.toString()) + args)
            .redirectOutput(output)
            .redirectError(output)
            .start()
        check(exited.waitFor(60, TimeUnit.SECONDS)) { "wangge-server ${args.joinToString(" ")} did not finish" }
        val text = output.readText()
        output.delete()
        check(exited.exitValue() == 0) { "wangge-server ${args.joinToString(" ")} failed (${exited.exitValue()}): $text" }
        return text
    }

    /** Creates the grid [code] (its documents included). */
    fun addGrid(code: String, name: String, kind: String? = null) {
        admin("add-grid", "--code", code, "--name", name, *(if (kind != null) arrayOf("--kind", kind) else arrayOf()))
    }

    /** Creates the worker and returns a one-time enrollment code for a device. */
    fun addWorker(person: String, role: String, grids: List<String> = emptyList(), department: String? = null): String {
        val args = mutableListOf("add-worker", "--person", person, "--role", role)
        grids.forEach { args += listOf("--grid", it) }
        if (department != null) args += listOf("--department", department)
        val output = admin(*args.toTypedArray())
        return ENROLLMENT_CODE.find(output)?.groupValues?.get(1) ?: error("no enrollment code in: $output")
    }

    /** Starts `serve` and returns once GET /healthz answers 200 (polled, never a fixed sleep). */
    fun start(timeout: Duration = Duration.ofSeconds(30)): TestServer {
        check(process == null) { "the server is running already" }
        val offset = if (Files.exists(logFile)) Files.size(logFile) else 0L
        val started = command(listOf("--db", db.toString(), "serve", "--listen", listen))
            .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
            .redirectError(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(File("/dev/null")))
            .start()
        process = started
        // A test that forgets close() must not leave a server behind the JVM.
        killOnExit = Thread { started.destroyForcibly() }.also { Runtime.getRuntime().addShutdownHook(it) }
        val deadline = System.nanoTime() + timeout.toNanos()
        var address: String? = null
        while (true) {
            if (!started.isAlive) {
                process = null
                error("wangge-server exited (${started.exitValue()}) before answering: ${log(offset)}")
            }
            if (address == null) address = SERVING.find(log(offset))?.groupValues?.get(1)
            if (address != null && healthzStatus(address) == 200) break
            if (System.nanoTime() > deadline) {
                stop()
                error("wangge-server did not answer /healthz within $timeout: ${log(offset)}")
            }
            Thread.sleep(10)
        }
        url = address
        listen = url.removePrefix("http://") // a restart keeps the port, so the url stays valid
        return this
    }

    /** Stops the server: Ctrl-C (it finishes requests in flight), killed after [timeout]. */
    fun stop(timeout: Duration = Duration.ofSeconds(10)) {
        val stopping = process ?: return
        process = null
        killOnExit?.let {
            try {
                Runtime.getRuntime().removeShutdownHook(it)
            } catch (e: IllegalStateException) {
                // the JVM is shutting down: the hook kills the server
            }
        }
        killOnExit = null
        if (stopping.isAlive) {
            // Process.destroy() is SIGTERM, which the server does not handle: send Ctrl-C's signal.
            ProcessBuilder("/bin/sh", "-c", "kill -INT ${stopping.pid()}").start().waitFor()
            if (!stopping.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                stopping.destroyForcibly().waitFor()
            }
        }
    }

    /** Stops the server and deletes its directory (database and log). */
    override fun close() {
        stop()
        dir.toFile().deleteRecursively()
    }

    /** The server's output so far (from byte [offset]). */
    fun log(offset: Long = 0): String {
        if (!Files.exists(logFile)) return ""
        val bytes = Files.readAllBytes(logFile)
        val from = offset.coerceAtMost(bytes.size.toLong()).toInt()
        return String(bytes, from, bytes.size - from)
    }

    private fun command(args: List<String>): ProcessBuilder {
        val builder = ProcessBuilder(listOf(binary.toString()) + args).directory(dir.toFile())
        builder.environment().keys.removeIf { it.startsWith("WANGGE_") }
        return builder
    }

    companion object {
        private val SERVING = Regex("""serving sync protocol v\d+ on (http://\S+)""")
        private val ENROLLMENT_CODE = Regex("""enrollment code for .*: (\S+)""")

        fun defaultBinary(): Path {
            val configured = System.getProperty("wangge.server") ?: System.getenv("WANGGE_SERVER")
            return Paths.get(configured ?: "target/debug/wangge-server").toAbsolutePath()
        }

        /** The status of GET [url]/healthz, or null when nothing answers. */
        fun healthzStatus(url: String): Int? = try {
            val connection = URI("$url/healthz").toURL().openConnection(Proxy.NO_PROXY) as HttpURLConnection
            connection.connectTimeout = 1000
            connection.readTimeout = 2000
            try {
                connection.responseCode
            } finally {
                connection.disconnect()
            }
        } catch (e: IOException) {
            null
        }
    }
}
