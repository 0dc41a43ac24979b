package cn.wangge.android

import cn.wangge.core.ApiException
import cn.wangge.core.FieldStoreInterface
import cn.wangge.core.SyncProgress
import cn.wangge.core.SyncProgressListener
import cn.wangge.core.SyncReport

/**
 * What one sync attempt came to, by what the app does next. [WanggeSyncWorker] maps it
 * to WorkManager's results; an app with its own scheduler maps it the same way.
 */
sealed interface SyncResult {
    /** Pushed and pulled everything; photos waiting were uploaded. */
    data class Synced(val report: SyncReport) : SyncResult

    /**
     * The server could not be reached, timed out or answered 5xx (after the core's own
     * retries): try again later with backoff. Nothing was lost; captures stay on the device.
     */
    data class Retry(val error: ApiException) : SyncResult

    /**
     * The device is not enrolled, or the server no longer knows its token (401
     * `unauthorized`): stop syncing and ask the worker for a new enrollment code.
     */
    data class NeedsEnrollment(val error: ApiException) : SyncResult

    /**
     * The operator revoked this device (401 `revoked`): the library has already wiped the
     * store (its database, photos and tracks); stop syncing, drop the store object and show
     * the enrollment screen. Every call on the old store now raises `Revoked`.
     */
    data class Revoked(val error: ApiException.Revoked) : SyncResult

    /**
     * Retrying unchanged will not help: a refusal (4xx, e.g. `unsupported_version`: update
     * the app; `forbidden`: report a bug), or a store that cannot be used ([ApiException.Storage]).
     */
    data class Failed(val error: ApiException) : SyncResult
}

/** One sync, with its errors sorted into [SyncResult]s. */
object WanggeSync {
    /**
     * Syncs [store] once: pushes what the server has not acknowledged, pulls what this
     * device may see, uploads photos waiting. [onProgress] hears of each page on the sync's
     * thread (not the caller's). Cancelling the calling coroutine interrupts the sync
     * safely: what a round wrote is transactional and a round cut off is repeated next time.
     *
     * Errors other than [ApiException] (a panic in the library reaches Kotlin as
     * [cn.wangge.core.InternalException]) propagate, as does cancellation.
     */
    suspend fun syncOnce(
        store: FieldStoreInterface,
        onProgress: ((SyncProgress) -> Unit)? = null,
    ): SyncResult {
        val listener = onProgress?.let { callback ->
            object : SyncProgressListener {
                override fun onProgress(progress: SyncProgress) = callback(progress)
            }
        }
        return try {
            SyncResult.Synced(store.sync(listener))
        } catch (error: ApiException) {
            classify(error)
        }
    }

    /** What an error of `sync` (or `enroll`, `downloadBlob`) means for the next attempt. */
    fun classify(error: ApiException): SyncResult =
        when (error) {
            is ApiException.Network -> SyncResult.Retry(error)
            is ApiException.NotEnrolled -> SyncResult.NeedsEnrollment(error)
            is ApiException.Refused ->
                if (error.status == 401) SyncResult.NeedsEnrollment(error) else SyncResult.Failed(error)
            is ApiException.Revoked -> SyncResult.Revoked(error)
            is ApiException.InvalidInput,
            is ApiException.NotFound,
            is ApiException.NotAllowed,
            is ApiException.Storage,
            -> SyncResult.Failed(error)
        }
}

/**
 * Implemented by the app's `Application`: the one [cn.wangge.core.FieldStore] of the
 * process (a store file may be open once), for [WanggeSyncWorker] to sync. Open it lazily
 * in the app's private storage, e.g. `File(filesDir, "wangge/field.db")`.
 */
interface WanggeStoreOwner {
    val fieldStore: FieldStoreInterface

    /** Called after each background sync, e.g. to wipe on [SyncResult.Revoked] or to
     * notify the worker on [SyncResult.NeedsEnrollment]. Runs on a background thread. */
    fun onSyncResult(result: SyncResult) {}
}
