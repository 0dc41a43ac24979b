#!/usr/bin/env bash
# Compiles and tests, on the JVM (no Android SDK), what of android/ does not need Android:
#   the generated bindings (target/kotlin/cn/wangge/core/wangge.kt, from scripts/bindings)
#   + android/wangge/src/main/kotlin minus the files that import android.* / androidx.*
#   + android/wangge/src/test/kotlin (JUnit 4: the changes() Flow on a real store, and
#     WanggeSync against a real wangge-server on 127.0.0.1)
# with kotlinc into target/android-jvm/, then runs the tests with
# -Djna.library.path=target/debug. Ends with a line in cargo's format, "test result: ok. N
# passed; M failed; ...", which scripts/test adds to its total; exits non-zero when
# compilation or a test fails.
# Needs what scripts/setup-bindings-tests installs (a JDK, JNA, JUnit 4, kotlinc from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup-bindings-tests
# shellcheck source=/dev/null
source target/tools/bindings-tests.env
./scripts/bindings >/dev/null

out=target/android-jvm
main=android/wangge/src/main/kotlin
tests=android/wangge/src/test/kotlin

mapfile -t pure < <(grep -rLE '^import (android|androidx)\.' --include='*.kt' "$main" | sort)
mapfile -t android_only < <(grep -rlE '^import (android|androidx)\.' --include='*.kt' "$main" | sort)
mapfile -t test_sources < <(find "$tests" -name '*.kt' | sort)
echo "check-jvm: compiling ${pure[*]#"$main/"} with the generated bindings and ${#test_sources[@]} test files"
echo "check-jvm: not compiled here (Android classes): ${android_only[*]#"$main/"}"

rm -rf "$out"
mkdir -p "$out"
JAVA_OPTS="${KOTLINC_JAVA_OPTS:--Xmx1g -Xms256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}" \
    "$KOTLINC" -nowarn -d "$out/classes" -cp "$KOTLIN_COMPILE_CLASSPATH" \
    target/kotlin/cn/wangge/core/wangge.kt "${pure[@]}" "${test_sources[@]}"

mapfile -t test_classes < <(
    grep -lE '^\s*@Test' "${test_sources[@]}" | xargs -n1 basename | sed 's/\.kt$//; s/^/cn.wangge.android./'
)
status=0
java -cp "$out/classes:$KOTLIN_RUNTIME_CLASSPATH" \
    -Djna.library.path="$PWD/target/debug" -Dwangge.server="$PWD/target/debug/wangge-server" \
    org.junit.runner.JUnitCore "${test_classes[@]}" | tee "$out/junit.log" || status=$?

# JUnitCore ends with "OK (N tests)" or "Tests run: N,  Failures: F".
if ok=$(sed -n 's/^OK (\([0-9]*\) tests\{0,1\})$/\1/p' "$out/junit.log") && [[ -n $ok ]]; then
    echo "test result: ok. $ok passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
elif summary=$(sed -n 's/^Tests run: \([0-9]*\), *Failures: \([0-9]*\)$/\1 \2/p' "$out/junit.log") && [[ -n $summary ]]; then
    read -r run failed <<<"$summary"
    echo "test result: FAILED. $((run - failed)) passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
    status=1
else
    echo "check-jvm: no JUnit summary (see $out/junit.log)" >&2
    status=1
fi
exit "$status"
