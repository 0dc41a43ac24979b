package cn.wangge.core.tests

import cn.wangge.core.GridKind
import cn.wangge.core.IncidentAction
import cn.wangge.core.IncidentFilter
import cn.wangge.core.NewIncident
import cn.wangge.core.Phase
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** Reporting an incident and acting on it, offline. */
class IncidentTest {
    @Test
    fun reportedIncidentIsInPhaseReportedAndAcceptByWorkerIsKeptNotApplied(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val items = store.catalogItems()
        assertTrue(items.any { !it.admitted }, "the catalog marks the items it refuses")
        val item = items.first { it.admitted }

        val id = store.reportIncident(
            NewIncident(grid = GRID, catalogItem = item.code, title = "楼道堆放杂物", description = "3栋二楼楼道"),
        )

        val reported = store.incident(id)
        assertEquals(id, reported.id)
        assertEquals(GRID, reported.grid)
        assertEquals(item.code, reported.catalogItem)
        assertEquals(item.matterClass, reported.matterClass)
        assertEquals("楼道堆放杂物", reported.title)
        assertEquals(Phase.REPORTED, reported.phase)
        assertEquals(FULL_TIME_WORKER.person, reported.reporter)
        assertNotNull(reported.reportedAtMs)

        // Acceptance is the center's: a grid worker's accept stays in the timeline, not applied.
        val outcome = store.act(id, IncidentAction.Accept)
        assertFalse(outcome.applied)
        assertTrue(!outcome.reason.isNullOrBlank(), "the outcome says why: $outcome")
        assertEquals(Phase.REPORTED, store.incident(id).phase)

        val timeline = store.incidentTimeline(id)
        assertEquals(2, timeline.size, "$timeline")
        assertEquals("report", timeline[0].action)
        assertTrue(timeline[0].applied)
        assertEquals(FULL_TIME_WORKER, timeline[0].actor)
        assertEquals("accept", timeline[1].action)
        assertFalse(timeline[1].applied)
        assertEquals(outcome.reason, timeline[1].notAppliedReason)
        assertEquals(FULL_TIME_WORKER, timeline[1].actor)
    }

    @Test
    fun reportedIncidentIsListedByPhaseFilterAndCountedInStats(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val item = store.catalogItems().first { it.admitted }
        val id = store.reportIncident(NewIncident(grid = GRID, catalogItem = item.code, title = "路灯不亮"))
        store.act(id, IncidentAction.Accept)

        assertEquals(listOf(id), store.incidents(IncidentFilter(phases = listOf(Phase.REPORTED))).map { it.id })
        assertEquals(emptyList(), store.incidents(IncidentFilter(phases = listOf(Phase.ACCEPTED))))
        assertEquals(listOf(id), store.incidents(IncidentFilter(grids = listOf(GRID), reporter = "w1")).map { it.id })

        val stats = store.incidentStats(IncidentFilter())
        assertEquals(1, stats.total)
        assertEquals(1, stats.byClass[item.matterClass], "${stats.byClass}")
    }
}
