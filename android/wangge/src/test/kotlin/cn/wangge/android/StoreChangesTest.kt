package cn.wangge.android

import cn.wangge.core.BuildingUse
import cn.wangge.core.ChangeSource
import cn.wangge.core.FieldStore
import cn.wangge.core.GridKind
import cn.wangge.core.NewBuilding
import cn.wangge.core.NewHousehold
import cn.wangge.core.RecordRef
import cn.wangge.core.ResidenceType
import cn.wangge.core.Role
import cn.wangge.core.Worker
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import kotlin.test.assertEquals

/** [changes] on a real store (the native library through JNA), on the JVM. */
class StoreChangesTest {
    @get:Rule
    val tmp = TemporaryFolder()

    private fun openStore(): FieldStore =
        FieldStore.open(tmp.newFolder().resolve("field.db").path, Worker("w-001", Role.FULL_TIME_WORKER)).also {
            it.addGrid(GRID, "示例网格", GridKind.COMMUNITY, true)
        }

    private val building = NewBuilding(name = "1 号楼", address = "幸福路 8 号", usage = BuildingUse.RESIDENTIAL)

    @Test
    fun aCaptureReachesTheCollector(): Unit = runBlocking {
        openStore().use { store ->
            // Undispatched, the collector starts at once; the yield lets callbackFlow's
            // producer (queued on runBlocking's loop before us) subscribe before we capture.
            val change = async(start = CoroutineStart.UNDISPATCHED) { store.changes().first() }
            yield()
            val id = store.addBuilding(GRID, building)
            val received = withTimeout(5_000) { change.await() }
            assertEquals(ChangeSource.LOCAL, received.source)
            assertEquals(listOf(GRID), received.grids)
            assertEquals(listOf<RecordRef>(RecordRef.Building(id)), received.records)
        }
    }

    @Test
    fun changesArriveInOrderAndTheSubscriptionEndsWithTheCollector(): Unit = runBlocking {
        openStore().use { store ->
            val changes = async(start = CoroutineStart.UNDISPATCHED) { store.changes().take(2).toList() }
            yield()
            val building = store.addBuilding(GRID, building)
            val household = store.addHousehold(GRID, NewHousehold(building = building, residenceType = ResidenceType.REGISTERED))
            val received = withTimeout(5_000) { changes.await() }.map { it.records.single() }
            assertEquals(listOf(RecordRef.Building(building), RecordRef.Household(household)), received)
            // take(2) completed the flow, which cancelled its subscription: captures go on
            // without a listener, and a new collector subscribes afresh.
            store.addBuilding(GRID, this@StoreChangesTest.building)
            val next = async(start = CoroutineStart.UNDISPATCHED) { store.changesOfGrid(GRID).first() }
            yield()
            val third = store.addBuilding(GRID, this@StoreChangesTest.building)
            assertEquals(listOf<RecordRef>(RecordRef.Building(third)), withTimeout(5_000) { next.await() }.records)
        }
    }

    companion object {
        const val GRID = "440703001001001"
    }
}
