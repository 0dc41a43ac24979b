package cn.wangge.core.tests

import org.junit.Test
import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The test server helper starts a real server, waits for it, and stops it. */
class TestServerTest {
    @Test
    fun startsAnswersAndStops() {
        val grid = "440703001001001"
        val directory = TestServer().use { server ->
            server.addGrid(grid, "test grid")
            val code = server.addWorker("w1", "full_time_worker", listOf(grid))
            assertTrue(code.isNotBlank())

            server.start()
            assertTrue(server.url.startsWith("http://127.0.0.1:"), server.url)
            assertEquals(200, TestServer.healthzStatus(server.url))

            val url = server.url
            server.stop()
            assertFalse(server.running)
            assertNull(TestServer.healthzStatus(url))

            server.start() // the same database, the same address
            assertEquals(url, server.url)
            assertEquals(200, TestServer.healthzStatus(server.url))
            server.dir
        }
        assertFalse(Files.exists(directory))
    }
}
