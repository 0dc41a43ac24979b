// The Android side of wangge: the library module `wangge` (the uniffi bindings, the native
// libraries and a small Kotlin layer) and the `sample` app. See README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "wangge-android"
include(":wangge", ":sample")
