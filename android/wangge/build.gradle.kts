// The wangge Android library: the uniffi bindings of wangge-ffi (generated into
// build/generated/uniffi/kotlin), libwangge_ffi.so per ABI (src/main/jniLibs, built by
// cargo-ndk), and the Kotlin layer in src/main/kotlin (package cn.wangge.android).
// scripts/build-android produces the first two; `buildRust` runs it before every build
// (cargo makes that quick when nothing changed). -Pwangge.skipRust=true builds with what
// is already there; -Pwangge.abis=arm64-v8a builds one ABI while developing.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

val repoRoot: File = rootProject.projectDir.parentFile
val abis: List<String> = providers.gradleProperty("wangge.abis").getOrElse("arm64-v8a,armeabi-v7a,x86_64")
    .split(',').map(String::trim).filter(String::isNotEmpty)
val skipRust: Boolean = providers.gradleProperty("wangge.skipRust").getOrElse("false").toBoolean()

val buildRust = tasks.register<Exec>("buildRust") {
    description = "Builds libwangge_ffi.so per ABI into src/main/jniLibs and generates the Kotlin bindings (scripts/build-android)."
    onlyIf { !skipRust }
    workingDir = repoRoot
    commandLine(listOf(File(repoRoot, "scripts/build-android").path) + abis.flatMap { listOf("--abi", it) })
}

val hostRust = tasks.register<Exec>("hostRust") {
    description = "Builds the host library and wangge-server into target/debug for the JVM unit tests (scripts/bindings)."
    onlyIf { !skipRust }
    workingDir = repoRoot
    commandLine(File(repoRoot, "scripts/bindings").path)
}

tasks.named("preBuild") { dependsOn(buildRust) }

android {
    namespace = "cn.wangge.core"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }

    sourceSets.getByName("main") {
        java.srcDir(layout.buildDirectory.dir("generated/uniffi/kotlin").get().asFile)
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    testOptions.unitTests.all { test ->
        // Local unit tests run on the build machine, against the host library and a real
        // wangge-server, both from scripts/bindings (target/debug).
        test.dependsOn(hostRust)
        test.systemProperty("jna.library.path", File(repoRoot, "target/debug").path)
        test.systemProperty("wangge.server", File(repoRoot, "target/debug/wangge-server").path)
    }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // The generated bindings call libwangge_ffi.so through JNA; the AAR carries JNA's
    // native part for each Android ABI.
    implementation("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    api(libs.kotlinx.coroutines.core)
    // WanggeSyncWorker is a CoroutineWorker.
    api(libs.androidx.work.runtime.ktx)

    // The JVM unit tests load JNA from its jar (with the desktop native part), not the AAR.
    testImplementation("net.java.dev.jna:jna:${libs.versions.jna.get()}@jar")
    testImplementation(libs.junit)
    testImplementation(libs.kotlin.test.junit)
}
