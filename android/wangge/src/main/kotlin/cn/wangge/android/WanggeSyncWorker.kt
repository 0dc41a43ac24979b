package cn.wangge.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import androidx.work.workDataOf
import cn.wangge.core.ApiException
import java.util.concurrent.TimeUnit

/**
 * Syncs the app's store in the background with WorkManager. The `Application` implements
 * [WanggeStoreOwner]; schedule with [schedulePeriodic] (e.g. in `Application.onCreate`)
 * and [syncNow] (a "sync" button, or after a capture).
 *
 * Results: synced → success (the report as output data); a network failure → retry
 * (WorkManager's exponential backoff); not enrolled, revoked, refused → failure, after
 * [WanggeStoreOwner.onSyncResult] has seen it.
 */
class WanggeSyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val owner = applicationContext as? WanggeStoreOwner
            ?: error("the Application must implement cn.wangge.android.WanggeStoreOwner")
        val result = WanggeSync.syncOnce(owner.fieldStore) { progress ->
            setProgressAsync(workDataOf(KEY_PAGES to progress.pages, KEY_BYTES_RECEIVED to progress.bytesReceived))
        }
        owner.onSyncResult(result)
        return when (result) {
            is SyncResult.Synced -> Result.success(
                workDataOf(
                    KEY_PAGES to result.report.pages,
                    KEY_BYTES_SENT to result.report.bytesSent,
                    KEY_BYTES_RECEIVED to result.report.bytesReceived,
                    KEY_CHANGES_PUSHED to result.report.changesPushed,
                    KEY_DOCS_PULLED to result.report.docsPulled,
                ),
            )
            is SyncResult.Retry -> Result.retry()
            is SyncResult.NeedsEnrollment -> failure("needs_enrollment", result.error)
            is SyncResult.Revoked -> failure("revoked", result.error)
            is SyncResult.Failed -> failure("failed", result.error)
        }
    }

    private fun failure(outcome: String, error: ApiException): Result =
        Result.failure(workDataOf(KEY_OUTCOME to outcome, KEY_ERROR to error.reason))

    companion object {
        const val PERIODIC_WORK = "wangge-sync"
        const val ONE_TIME_WORK = "wangge-sync-now"
        const val KEY_PAGES = "pages"
        const val KEY_BYTES_SENT = "bytes_sent"
        const val KEY_BYTES_RECEIVED = "bytes_received"
        const val KEY_CHANGES_PUSHED = "changes_pushed"
        const val KEY_DOCS_PULLED = "docs_pulled"
        /** On failure: `needs_enrollment`, `revoked` or `failed`. */
        const val KEY_OUTCOME = "outcome"
        const val KEY_ERROR = "error"

        private val connected = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

        /** A sync every [hours] hours (at least 1) while a network is up; kept across restarts. */
        fun schedulePeriodic(context: Context, hours: Long = 1) {
            val request = PeriodicWorkRequestBuilder<WanggeSyncWorker>(hours.coerceAtLeast(1), TimeUnit.HOURS)
                .setConstraints(connected)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context)
                .enqueueUniquePeriodicWork(PERIODIC_WORK, ExistingPeriodicWorkPolicy.KEEP, request)
        }

        /** A sync as soon as a network is up; one already waiting is kept, not doubled. */
        fun syncNow(context: Context) {
            val request = OneTimeWorkRequestBuilder<WanggeSyncWorker>()
                .setConstraints(connected)
                .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork(ONE_TIME_WORK, ExistingWorkPolicy.KEEP, request)
        }
    }
}
