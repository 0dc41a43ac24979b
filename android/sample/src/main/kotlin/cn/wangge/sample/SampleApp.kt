package cn.wangge.sample

import android.app.Application
import android.util.Log
import cn.wangge.android.SyncResult
import cn.wangge.android.WanggeStoreOwner
import cn.wangge.android.WanggeSyncWorker
import cn.wangge.core.FieldStore
import java.io.File

/**
 * Holds the process's one store (a store file may be open once) and schedules the
 * background sync. The store lives in the app's private storage: `files/wangge/field.db`,
 * with its photos in a directory beside it, so wiping is deleting `files/wangge`.
 */
class SampleApp : Application(), WanggeStoreOwner {
    private val storeDir by lazy { File(filesDir, "wangge") }
    private var store: FieldStore? = null

    override val fieldStore: FieldStore
        @Synchronized get() = store ?: FieldStore.open(File(storeDir.apply { mkdirs() }, "field.db").path, null)
            .also { store = it }

    override fun onCreate() {
        super.onCreate()
        WanggeSyncWorker.schedulePeriodic(this)
    }

    override fun onSyncResult(result: SyncResult) {
        Log.i("wangge", "background sync: $result")
        // A revoked device's store was already wiped by the library: drop the object.
        if (result is SyncResult.Revoked) forget()
    }

    /** Drops the (wiped) store; the next use opens a fresh one for a new enrollment. */
    @Synchronized
    fun forget() {
        store?.close()
        store = null
    }
}
