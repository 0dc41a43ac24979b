package cn.wangge.core.tests

import cn.wangge.core.BuildingUse
import cn.wangge.core.ChangeSource
import cn.wangge.core.GridKind
import cn.wangge.core.IncidentFilter
import cn.wangge.core.NewBuilding
import cn.wangge.core.NewIncident
import cn.wangge.core.RecordRef
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** Change listeners hear of local captures until their subscription is cancelled. */
class ChangeListenerTest {
    private fun building(name: String) =
        NewBuilding(name = name, address = "广东省江门市蓬江区长堤路5号", usage = BuildingUse.MIXED)

    @Test
    fun addedBuildingReachesListenerAsLocalChangeNamingGridAndRecord(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val listener = RecordingListener()
        store.subscribe(listener).use {
            val id = store.addBuilding(GRID, building("5栋"))

            val change = listener.next { RecordRef.Building(id) in it.records }
            assertEquals(ChangeSource.LOCAL, change.source)
            assertEquals(listOf(GRID), change.grids)
            assertEquals(listOf<RecordRef>(RecordRef.Building(id)), change.records)
            assertFalse(change.reference)
        }
    }

    @Test
    fun reportedIncidentReachesListenerNamingTheIncident(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val listener = RecordingListener()
        store.subscribe(listener).use {
            val item = store.catalogItems().first { it.admitted }
            val id = store.reportIncident(NewIncident(grid = GRID, catalogItem = item.code, title = "井盖缺失"))

            val change = listener.next { id in it.incidents }
            assertEquals(ChangeSource.LOCAL, change.source)
            assertEquals(listOf(id), store.incidents(IncidentFilter()).map { it.id })
        }
    }

    @Test
    fun cancelledSubscriptionNoLongerReachesListener(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val cancelled = RecordingListener()
        val subscription = store.subscribe(cancelled)
        val first = store.addBuilding(GRID, building("5栋"))
        cancelled.next { RecordRef.Building(first) in it.records }

        subscription.cancel()
        // A listener still subscribed is the control: local changes are delivered on the
        // capturing thread before the capture returns, so once it has heard the second
        // building, the cancelled listener would have too.
        val control = RecordingListener()
        store.subscribe(control).use {
            val second = store.addBuilding(GRID, building("6栋"))
            control.next { RecordRef.Building(second) in it.records }
            assertTrue(cancelled.heard.none { RecordRef.Building(second) in it.records }, "${cancelled.heard}")
            assertEquals(1, cancelled.heard.size, "only the first building: ${cancelled.heard}")
        }
        subscription.close() // cancel, then release: both are safe
    }

    @Test
    fun closingSubscriptionStopsListenerLikeCancel(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val closed = RecordingListener()
        store.subscribe(closed).close()
        val control = RecordingListener()
        store.subscribe(control).use {
            val id = store.addBuilding(GRID, building("7栋"))
            control.next { RecordRef.Building(id) in it.records }
        }
        assertEquals(emptyList(), closed.heard.toList())
    }
}
