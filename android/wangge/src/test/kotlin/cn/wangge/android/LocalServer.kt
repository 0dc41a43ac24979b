package cn.wangge.android

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.concurrent.TimeUnit

/**
 * A wangge-server on 127.0.0.1 with its own database in [dir], for tests. The binary is
 * the system property `wangge.server` (android/check-jvm.sh and the Gradle test task set
 * it), else `target/debug/wangge-server` from the working directory.
 */
class LocalServer(private val dir: Path) : AutoCloseable {
    private val binary: Path = Paths.get(System.getProperty("wangge.server") ?: "target/debug/wangge-server")
    private val db = dir.resolve("server.db")
    private val log = dir.resolve("server.log")
    private var process: Process? = null
    private var listen = "127.0.0.1:0"

    /** `http://127.0.0.1:PORT` once started; a restart keeps the port. */
    lateinit var url: String
        private set

    init {
        require(Files.isExecutable(binary)) { "$binary: no wangge-server (run scripts/bindings)" }
    }

    /** Runs an admin command (`add-grid`, `add-worker`, ...) and returns its output. */
    fun admin(vararg args: String): String {
        val process = ProcessBuilder(listOf(binary.toString(), "--db", db.toString()) + args)
            .directory(dir.toFile()).redirectErrorStream(true).start()
        val output = process.inputStream.bufferedReader().readText()
        check(process.waitFor(60, TimeUnit.SECONDS) && process.exitValue() == 0) { "wangge-server ${args.toList()}: $output" }
        return output
    }

    fun enrollmentCode(person: String, role: String, grid: String): String {
        val output = admin("add-worker", "--person", person, "--role", role, "--grid", grid)
        return Regex("""enrollment code for \S+: (\S+)""").find(output)?.groupValues?.get(1) ?: error("no code in: $output")
    }

    fun start() {
        check(process == null) { "already running" }
        val offset = if (Files.exists(log)) Files.size(log) else 0L
        val started = ProcessBuilder(binary.toString(), "--db", db.toString(), "serve", "--listen", listen)
            .directory(dir.toFile())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start()
        process = started
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (true) {
            check(started.isAlive) { "wangge-server exited: ${Files.readString(log)}" }
            val output = Files.readAllBytes(log).let { String(it, offset.toInt(), it.size - offset.toInt()) }
            val serving = Regex("""serving .* on (http://\S+)""").find(output)
            if (serving != null) {
                url = serving.groupValues[1]
                listen = url.removePrefix("http://")
                return
            }
            check(System.nanoTime() < deadline) { "wangge-server did not start: ${Files.readString(log)}" }
            Thread.sleep(20)
        }
    }

    fun stop() {
        val running = process ?: return
        process = null
        running.destroy()
        if (!running.waitFor(10, TimeUnit.SECONDS)) running.destroyForcibly().waitFor()
    }

    override fun close() {
        stop()
        dir.toFile().deleteRecursively()
    }
}
