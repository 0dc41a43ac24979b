package cn.wangge.core.tests

import org.junit.Test
import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import java.io.File
import java.lang.reflect.Modifier
import java.util.Locale
import kotlin.system.exitProcess

/**
 * The JUnit 4 runner of scripts/test-bindings: runs every class under the classes directory
 * (first argument) that has a `@Test` method, and reports like cargo test: a line per test,
 * the failures with their traces, then `test result: ok. N passed; M failed; ...`, the line
 * scripts/test adds up. Exits 1 when a test failed or no test class was found.
 */
fun main(args: Array<String>) {
    val root = File(args.firstOrNull() ?: error("usage: RunTests <classes dir>"))
    val loader = Thread.currentThread().contextClassLoader
    val classes = root.walkTopDown()
        .filter { it.isFile && it.name.endsWith(".class") && '$' !in it.name }
        .map { it.relativeTo(root).path.removeSuffix(".class").replace(File.separatorChar, '.') }
        .sorted()
        .mapNotNull { name ->
            try {
                // Not initialized: loading the bindings' classes loads no native library.
                Class.forName(name, false, loader).takeIf { isTestClass(it) }
            } catch (e: LinkageError) {
                null
            }
        }
        .toList()
    if (classes.isEmpty()) {
        println("no Kotlin test classes in $root\n\ntest result: FAILED. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s")
        exitProcess(1)
    }

    val listener = CargoStyleListener()
    val core = JUnitCore()
    core.addListener(listener)
    val started = System.nanoTime()
    val result = core.run(*classes.toTypedArray())
    val seconds = (System.nanoTime() - started) / 1e9

    if (result.failures.isNotEmpty()) {
        println("\nfailures:\n")
        for (failure in result.failures) {
            println("---- ${failure.description.displayName} ----")
            println(failure.trace)
        }
        println("failures:")
        result.failures.forEach { println("    ${it.description.displayName}") }
    }
    val failed = result.failureCount
    val ignored = result.ignoreCount + listener.assumptionFailures
    val outcome = if (failed == 0) "ok" else "FAILED"
    println(
        "\ntest result: $outcome. ${listener.passed} passed; $failed failed; $ignored ignored; 0 measured; " +
            "0 filtered out; finished in ${"%.2f".format(Locale.ROOT, seconds)}s",
    )
    System.out.flush()
    exitProcess(if (failed == 0) 0 else 1)
}

private fun isTestClass(type: Class<*>) =
    !Modifier.isAbstract(type.modifiers) && type.methods.any { it.isAnnotationPresent(Test::class.java) }

private class CargoStyleListener : RunListener() {
    var passed = 0
    var assumptionFailures = 0
    private val failed = mutableSetOf<Description>()
    private val assumed = mutableSetOf<Description>()

    override fun testRunStarted(description: Description) {
        println("running ${description.testCount()} tests")
    }

    override fun testFailure(failure: Failure) {
        failed += failure.description
        // A class-level failure (@BeforeClass, an initializer) finishes no test: say it here.
        if (failure.description.methodName == null) println("${failure.description.displayName} ... FAILED")
    }

    override fun testAssumptionFailure(failure: Failure) {
        assumed += failure.description
        assumptionFailures++
    }

    override fun testIgnored(description: Description) {
        println("test ${name(description)} ... ignored")
    }

    override fun testFinished(description: Description) {
        when (description) {
            in failed -> println("test ${name(description)} ... FAILED")
            in assumed -> println("test ${name(description)} ... ignored (assumption)")
            else -> {
                passed++
                println("test ${name(description)} ... ok")
            }
        }
    }

    private fun name(description: Description) = "${description.className}::${description.methodName}"
}
