package cn.wangge.core.tests

import cn.wangge.core.coreVersion
import cn.wangge.core.storeSchemaVersion
import org.junit.Test
import kotlin.test.assertTrue

/** The library answers through the generated Kotlin bindings (JNA). */
class CoreTest {
    @Test
    fun coreVersionIsSemver() {
        val version = coreVersion()
        assertTrue(Regex("""^\d+\.\d+\.\d+""").containsMatchIn(version), "core version $version")
    }

    @Test
    fun storeSchemaVersionIsPositive() {
        assertTrue(storeSchemaVersion() > 0)
    }
}
