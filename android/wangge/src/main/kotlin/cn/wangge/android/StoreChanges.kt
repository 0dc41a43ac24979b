package cn.wangge.android

import cn.wangge.core.ChangeListener
import cn.wangge.core.FieldStoreInterface
import cn.wangge.core.StoreChange
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.filter

/**
 * The store's changes as a cold [Flow]: each collector subscribes when it starts and
 * cancels its [cn.wangge.core.Subscription] when it stops (its scope ends or it is
 * cancelled), so a screen collecting in `repeatOnLifecycle(STARTED)` listens only while
 * it is visible.
 *
 * The store calls listeners on the thread that made the change (the caller's for a
 * capture, a sync's worker thread for pulled data); this flow only hands the change to
 * the collector's context, and never blocks that thread: the buffer is unbounded, because
 * every [StoreChange] names different records and dropping one would leave a screen stale.
 * Changes are small; a collector that stops reading should stop collecting.
 */
fun FieldStoreInterface.changes(): Flow<StoreChange> =
    callbackFlow {
        val subscription = subscribe(
            object : ChangeListener {
                override fun onChange(change: StoreChange) {
                    trySend(change)
                }
            },
        )
        awaitClose {
            subscription.cancel()
            subscription.close()
        }
    }.buffer(Channel.UNLIMITED)

/** The changes that concern [grid]: a record of it, or the grid itself, changed. */
fun FieldStoreInterface.changesOfGrid(grid: String): Flow<StoreChange> =
    changes().filter { grid in it.grids }

/** The changes that concern [incident] (a local action, or one a sync brought). */
fun FieldStoreInterface.changesOfIncident(incident: String): Flow<StoreChange> =
    changes().filter { incident in it.incidents }
