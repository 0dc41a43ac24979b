package cn.wangge.core.tests

import cn.wangge.core.ApiException
import cn.wangge.core.ChangeSource
import cn.wangge.core.NewHousehold
import cn.wangge.core.ResidenceType
import cn.wangge.core.Role
import cn.wangge.core.Worker
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Before
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Enrollment and sync, as suspend functions, against a real wangge-server on a database of
 * its own (TestServer); each device is a store in its own temporary directory.
 */
class SyncTest {
    private lateinit var server: TestServer
    private lateinit var workerCode: String
    private lateinit var leaderCode: String
    private val devices = mutableListOf<TempStore>()

    @Before
    fun startServer() {
        server = TestServer()
        server.addGrid(GRID, GRID_NAME)
        workerCode = server.addWorker("w1", "full_time_worker", listOf(GRID))
        leaderCode = server.addWorker("l1", "grid_leader", listOf(GRID))
        server.start()
    }

    @After
    fun stopServer() {
        devices.forEach { it.close() }
        server.close()
    }

    private fun device(): TempStore = TempStore(null).also { devices += it }

    private fun household(room: String) = NewHousehold(room = room, address = "广东省江门市蓬江区长堤路9号", residenceType = ResidenceType.MIGRANT)

    @Test
    fun enrollNamesTheWorkerAndAddsTheirGrid(): Unit = runBlocking {
        val store = device().store
        assertNull(store.worker())
        assertEquals(emptyList(), store.grids())

        val worker = store.enroll(server.url, workerCode, "test phone")

        assertEquals(Worker(person = "w1", role = Role.FULL_TIME_WORKER), worker)
        assertEquals(worker, store.worker())
        val grid = store.grids().single()
        assertEquals(GRID, grid.code)
        assertEquals(GRID_NAME, grid.name)
        val status = store.syncStatus()
        assertTrue(status.enrolled)
        assertEquals(server.url, status.serverUrl)
    }

    @Test
    fun syncPushesCaptureReportsProgressAndLeavesNothingPending(): Unit = runBlocking {
        val a = device().store
        a.enroll(server.url, workerCode, "test phone")
        a.addHousehold(GRID, household("101"))
        assertTrue(a.syncStatus().pendingChanges > 0, "the capture waits for sync")

        val progress = RecordingProgress()
        val report = a.sync(progress)

        assertTrue(progress.reports.isNotEmpty(), "the progress listener was called")
        assertTrue(report.changesPushed > 0, "$report")
        assertTrue(report.pages >= 1, "$report")
        assertTrue(report.bytesSent > 0 && report.bytesReceived > 0, "$report")
        assertEquals(report.changesPushed, progress.reports.last().changesPushed)
        val status = a.syncStatus()
        assertEquals(0L, status.pendingChanges)
        assertNull(status.lastError)
        assertNotNull(status.lastSuccessMs)
    }

    @Test
    fun secondDeviceHearsSyncChangeForGridAndListsFirstDevicesHousehold(): Unit = runBlocking {
        val a = device().store
        a.enroll(server.url, workerCode, "phone A")
        val household = a.addHousehold(GRID, household("202"))
        a.sync(null)

        val b = device().store
        val leader = b.enroll(server.url, leaderCode, "phone B")
        assertEquals(Role.GRID_LEADER, leader.role)
        val listener = RecordingListener()
        b.subscribe(listener).use {
            val report = b.sync(null)
            assertTrue(report.docsPulled > 0, "$report")

            val change = listener.next { it.source == ChangeSource.SYNC && GRID in it.grids }
            assertEquals(emptyList(), change.records, "a pulled change names grids, not records")
        }
        val line = b.listHouseholds(GRID).single()
        assertEquals(household, line.id)
        assertEquals("202", line.room)
        assertEquals(0, line.nResidents)
    }

    @Test
    fun syncBeforeEnrollmentRaisesNotEnrolled(): Unit = runBlocking {
        val store = device().store
        assertFailsWith<ApiException.NotEnrolled> { store.sync(null) }
        assertFalse(store.syncStatus().enrolled)
    }

    @Test
    fun enrollingWithWrongCodeIsRefusedWith404AndLeavesStoreUnenrolled(): Unit = runBlocking {
        val store = device().store
        val error = assertFailsWith<ApiException.Refused> { store.enroll(server.url, "not-a-code", "test phone") }
        assertEquals(404, error.status)
        assertEquals("unknown_code", error.code)

        val status = store.syncStatus()
        assertFalse(status.enrolled)
        assertNull(status.serverUrl, "the address is remembered only once enrolled")
        assertEquals(emptyList(), store.grids())
        assertFailsWith<ApiException.NotEnrolled> { store.sync(null) }
    }

    @Test
    fun syncWhileServerIsDownRaisesNetworkAndRecordsErrorUntilNextSuccess(): Unit = runBlocking {
        val a = device().store
        a.enroll(server.url, workerCode, "test phone")
        a.sync(null)
        a.addHousehold(GRID, household("303"))
        server.stop()

        val started = System.nanoTime()
        assertFailsWith<ApiException.Network> { a.sync(null) }
        val failedAfterMs = (System.nanoTime() - started) / 1_000_000
        println("    (a sync against a stopped server failed after $failedAfterMs ms)")
        val failed = a.syncStatus()
        assertNotNull(failed.lastError, "the failure is recorded for the status line")
        assertTrue(failed.pendingChanges > 0, "nothing was lost")
        assertTrue(failedAfterMs < 5_000, "a sync against a stopped server took $failedAfterMs ms")

        server.start()
        val report = a.sync(null)
        assertTrue(report.changesPushed > 0, "$report")
        val status = a.syncStatus()
        assertNull(status.lastError, "a sync that went through clears the error")
        assertEquals(0L, status.pendingChanges)
    }
}
