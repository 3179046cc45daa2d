#!/usr/bin/env bash
# The reliability soak (not in CI; docs/reliability.md): a tiny-model Hint-GRPO run of STEPS steps
# (default 2000) on cpu, sampling RSS and the JVM's allocator statistics every 100 steps. Writes
# soak.json and soak.md into OUT (default soak-out); exit 1 when RSS at the end is not within 5 % of
# step 200's.
#   scripts/soak.sh [STEPS] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
out=${2:-soak-out}
deps=target/soak-deps
rm -rf "$deps"
echo "soak: building (tests compiled, not run)" >&2
mvn -B -ntp -q -DskipTests -pl tests -am package dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$PWD/$deps"
rm -rf target/soak-classes && cp -r tests/target/test-classes target/soak-classes # a rebuild meanwhile does not touch the run
exec java --add-modules jdk.incubator.vector -Xmx1g -cp "target/soak-classes:$deps/*" io.hintgrpo.tests.Soak "$steps" "$out"
