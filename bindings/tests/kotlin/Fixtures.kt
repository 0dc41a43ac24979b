package cn.wangge.core.tests

import cn.wangge.core.BuildingUse
import cn.wangge.core.ChangeListener
import cn.wangge.core.FieldStore
import cn.wangge.core.NewBuilding
import cn.wangge.core.NewHousehold
import cn.wangge.core.NewResident
import cn.wangge.core.Relation
import cn.wangge.core.ResidenceType
import cn.wangge.core.Role
import cn.wangge.core.StoreChange
import cn.wangge.core.SyncProgress
import cn.wangge.core.SyncProgressListener
import cn.wangge.core.Worker
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.fail

/** The grid of these tests: 广东省江门市蓬江区 (440703), a community grid. */
const val GRID = "440703001001001"
const val GRID_NAME = "长堤社区第1网格"

/** A resident whose ID number says: female, born 1949-12-31 (GB 11643's own example). */
const val ID_NUMBER = "11010519491231002X"
const val PHONE = "13800138000"
const val RESIDENT_NAME = "李秀兰"

val FULL_TIME_WORKER = Worker(person = "w1", role = Role.FULL_TIME_WORKER)

/**
 * A store in a temporary directory of its own, closed and deleted by [close].
 * `open` takes a file path; the blob directory goes beside it, inside [dir].
 */
class TempStore(worker: Worker?) : AutoCloseable {
    val dir: Path = Files.createTempDirectory("wangge-store-")
    val path: Path = dir.resolve("field.db")
    val store: FieldStore = FieldStore.open(path.toString(), worker)

    override fun close() {
        store.close()
        dir.toFile().deleteRecursively()
    }
}

/** A building, a household in it with one resident (the head); their ids. */
data class Captured(val building: String, val household: String, val resident: String)

fun FieldStore.captureHousehold(grid: String = GRID): Captured {
    val building = addBuilding(
        grid,
        NewBuilding(name = "长堤花园3栋", address = "广东省江门市蓬江区长堤路3号", floors = 7, usage = BuildingUse.RESIDENTIAL),
    )
    val household = addHousehold(grid, NewHousehold(building = building, room = "302", residenceType = ResidenceType.REGISTERED))
    val resident = addResident(
        grid,
        NewResident(
            household = household,
            name = RESIDENT_NAME,
            idNumber = ID_NUMBER,
            phone = PHONE,
            relation = Relation.HEAD,
            residenceType = ResidenceType.REGISTERED,
        ),
    )
    return Captured(building, household, resident)
}

/**
 * A change listener that queues what it hears (from any thread); [next] waits for a change
 * that matches, with a timeout, never a fixed sleep.
 */
class RecordingListener : ChangeListener {
    private val queue = LinkedBlockingQueue<StoreChange>()
    val heard = CopyOnWriteArrayList<StoreChange>()

    override fun onChange(change: StoreChange) {
        heard += change
        queue.put(change)
    }

    /** The next change [matching] within [timeoutMs] (changes before it are consumed). */
    fun next(timeoutMs: Long = 10_000, matching: (StoreChange) -> Boolean = { true }): StoreChange {
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        val skipped = mutableListOf<StoreChange>()
        while (true) {
            val left = deadline - System.nanoTime()
            val change = if (left > 0) queue.poll(left, TimeUnit.NANOSECONDS) else null
            if (change == null) fail("no matching change within $timeoutMs ms; heard instead: $skipped")
            if (matching(change)) return change
            skipped += change
        }
    }
}

/** A progress listener that keeps every report (called on the sync's thread). */
class RecordingProgress : SyncProgressListener {
    val reports = CopyOnWriteArrayList<SyncProgress>()

    override fun onProgress(progress: SyncProgress) {
        reports += progress
    }
}
