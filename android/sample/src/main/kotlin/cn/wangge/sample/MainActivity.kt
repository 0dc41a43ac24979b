package cn.wangge.sample

import android.os.Build
import android.os.Bundle
import android.text.InputType
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.lifecycleScope
import androidx.lifecycle.repeatOnLifecycle
import cn.wangge.android.SyncResult
import cn.wangge.android.WanggeSync
import cn.wangge.android.WanggeSyncWorker
import cn.wangge.android.changes
import cn.wangge.android.reason
import cn.wangge.core.ApiException
import cn.wangge.core.NewHousehold
import cn.wangge.core.NewResident
import cn.wangge.core.Relation
import cn.wangge.core.ResidenceType
import kotlinx.coroutines.launch

/**
 * One screen: enroll with a code, capture a household with its head (works offline: it is
 * saved on the device at once), sync now or in the background, and the household list,
 * refreshed by the store's changes whatever made them (a capture here, or a sync).
 */
class MainActivity : ComponentActivity() {
    private val app get() = application as SampleApp
    private val store get() = app.fieldStore

    private lateinit var status: TextView
    private lateinit var households: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val column = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        fun field(hint: String, type: Int = InputType.TYPE_CLASS_TEXT) =
            EditText(this).apply { this.hint = hint; inputType = type }.also { column.addView(it, MATCH_PARENT, WRAP_CONTENT) }
        fun button(label: String, onClick: () -> Unit) =
            Button(this).apply { text = label; setOnClickListener { onClick() } }.also { column.addView(it, MATCH_PARENT, WRAP_CONTENT) }

        status = TextView(this).also { column.addView(it) }
        val serverUrl = field("服务器 server URL, e.g. http://10.0.2.2:7878", InputType.TYPE_TEXT_VARIATION_URI)
        val code = field("登记码 enrollment code")
        button("登记 Enroll") { enroll(serverUrl.text.toString().trim(), code.text.toString().trim()) }
        val address = field("地址 address")
        val head = field("户主姓名 head of household")
        button("采集住户 Add household (offline)") { addHousehold(address.text.toString(), head.text.toString()) }
        button("立即同步 Sync now") { syncNow() }
        button("后台同步 Sync in background (WorkManager)") { WanggeSyncWorker.syncNow(this) }
        households = TextView(this).also { column.addView(it) }
        setContentView(ScrollView(this).apply { addView(column) })

        lifecycleScope.launch {
            repeatOnLifecycle(Lifecycle.State.STARTED) {
                refresh()
                store.changes().collect { refresh() }
            }
        }
    }

    private fun grid(): String? = store.grids().firstOrNull()?.code

    private fun enroll(url: String, code: String) {
        lifecycleScope.launch {
            try {
                val worker = store.enroll(url, code, Build.MODEL)
                say("登记成功 enrolled as ${worker.person} (${worker.role})")
            } catch (error: ApiException) {
                say("登记失败 enrollment failed: ${error.reason}")
            }
        }
    }

    private fun addHousehold(address: String, head: String) {
        val grid = grid() ?: return say("请先登记 enroll first: the grids come with enrollment")
        try {
            val household = store.addHousehold(grid, NewHousehold(address = address, residenceType = ResidenceType.REGISTERED))
            store.addResident(
                grid,
                NewResident(household = household, name = head, relation = Relation.HEAD, residenceType = ResidenceType.REGISTERED),
            )
            say("已保存 saved on the device; ${store.syncStatus().pendingChanges} changes to sync")
        } catch (error: ApiException) {
            say("未保存 not saved: ${error.reason}")
        }
    }

    private fun syncNow() {
        lifecycleScope.launch {
            say("同步中 syncing…")
            when (val result = WanggeSync.syncOnce(store) { progress -> runOnUiThread { say("page ${progress.pages}: ${progress.bytesReceived} B") } }) {
                is SyncResult.Synced -> say("已同步 synced: ${result.report.changesPushed} changes up, ${result.report.docsPulled} documents down")
                is SyncResult.Retry -> say("无网络 offline, try later: ${result.error.reason}")
                is SyncResult.NeedsEnrollment -> say("请登记 enroll (again): ${result.error.reason}")
                is SyncResult.Revoked -> { app.forget(); say("设备已停用 this device was revoked; its data was wiped") }
                is SyncResult.Failed -> say("同步失败 sync failed: ${result.error.reason}")
            }
        }
    }

    private fun refresh() {
        val grid = grid()
        households.text = if (grid == null) {
            "未登记 not enrolled"
        } else {
            store.listHouseholds(grid).joinToString("\n") { "${it.address ?: it.room ?: it.id} · ${it.headName ?: "?"} · ${it.nResidents} 人" }
        }
    }

    private fun say(text: String) {
        status.text = text
    }
}
