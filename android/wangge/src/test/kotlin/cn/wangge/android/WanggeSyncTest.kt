package cn.wangge.android

import cn.wangge.core.ApiException
import cn.wangge.core.ChangeSource
import cn.wangge.core.FieldStore
import cn.wangge.core.NewHousehold
import cn.wangge.core.NewResident
import cn.wangge.core.Relation
import cn.wangge.core.ResidenceType
import cn.wangge.core.StoreChange
import cn.wangge.core.SyncProgress
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import java.util.Collections
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue

/** [WanggeSync] against a real wangge-server on 127.0.0.1, and its error mapping. */
class WanggeSyncTest {
    @get:Rule
    val tmp = TemporaryFolder()

    private fun openStore(): FieldStore = FieldStore.open(tmp.newFolder().resolve("field.db").path, null)

    @Test
    fun aHouseholdCapturedOfflineSyncsAndTheFlowHearsOfIt(): Unit = runBlocking {
        LocalServer(tmp.newFolder().toPath()).use { server ->
            server.admin("add-grid", "--code", GRID, "--name", "示例网格")
            val code = server.enrollmentCode("w-001", "full_time_worker", GRID)
            server.start()
            openStore().use { store ->
                store.enroll(server.url, code, "test device")
                assertEquals(listOf(GRID), store.grids().map { it.code })

                // Offline: the server is down, the capture is saved, and sync says "retry".
                server.stop()
                val household = store.addHousehold(GRID, NewHousehold(address = "幸福路 8 号 301", residenceType = ResidenceType.REGISTERED))
                store.addResident(GRID, NewResident(household = household, name = "张三", relation = Relation.HEAD, residenceType = ResidenceType.REGISTERED))
                val offline = WanggeSync.syncOnce(store)
                assertIs<SyncResult.Retry>(offline)
                assertIs<ApiException.Network>(offline.error)
                assertTrue(store.syncStatus().pendingChanges > 0)

                // Back online: the capture is pushed, progress is reported, collectors hear of it.
                server.start()
                val fromSync = async(start = CoroutineStart.UNDISPATCHED) {
                    store.changes().first { it.source == ChangeSource.SYNC }
                }
                yield()
                val progress = Collections.synchronizedList(mutableListOf<SyncProgress>())
                val synced = WanggeSync.syncOnce(store) { progress += it }
                assertIs<SyncResult.Synced>(synced)
                assertTrue(synced.report.changesPushed > 0, "pushed: ${synced.report}")
                assertTrue(progress.isNotEmpty(), "progress reported")
                assertEquals(0L, store.syncStatus().pendingChanges)
                val change: StoreChange = withTimeout(5_000) { fromSync.await() }
                assertEquals(listOf(GRID), change.grids)
            }
        }
    }

    @Test
    fun aStoreThatNeverEnrolledNeedsEnrollment(): Unit = runBlocking {
        openStore().use { store ->
            val result = WanggeSync.syncOnce(store)
            assertIs<SyncResult.NeedsEnrollment>(result)
            assertIs<ApiException.NotEnrolled>(result.error)
        }
    }

    @Test
    fun errorsAreSortedByWhatTheAppDoesNext() {
        check(ApiException.Network("timed out"), SyncResult.Retry::class.java)
        check(ApiException.NotEnrolled("enroll first"), SyncResult.NeedsEnrollment::class.java)
        check(ApiException.Refused(401, "unauthorized", "unknown token"), SyncResult.NeedsEnrollment::class.java)
        check(ApiException.Revoked("wipe"), SyncResult.Revoked::class.java)
        check(ApiException.Refused(400, "unsupported_version", "update"), SyncResult.Failed::class.java)
        check(ApiException.Refused(403, "forbidden", "scope"), SyncResult.Failed::class.java)
        check(ApiException.Storage("disk full"), SyncResult.Failed::class.java)
    }

    @Test
    fun everyErrorHasItsReason() {
        val errors: List<ApiException> = listOf(ApiException.InvalidInput("id_number", "check character"), ApiException.Network("timed out"))
        assertEquals(listOf("check character", "timed out"), errors.map { it.reason })
    }

    private fun check(error: ApiException, expected: Class<out SyncResult>) {
        assertEquals(expected, WanggeSync.classify(error).javaClass, "$error")
    }

    companion object {
        const val GRID = "440703001001001"
    }
}
