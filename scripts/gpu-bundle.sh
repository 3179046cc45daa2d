#!/usr/bin/env bash
# Builds the GPU check bundle: everything scripts/gpu-check.sh needs on a GPU machine that has no
# Maven, no network and perhaps no Java. Output (ignored by git):
#   build/gpu-bundle/hintgrpo-gpu/        the bundle, runnable in place
#   build/gpu-bundle/hintgrpo-gpu.tar.gz  the same, packed to carry (at most 60 MiB)
# Contents: a jlinked Java runtime (from a Temurin JDK when one is installed: its builds need an
# older glibc than Debian's, so they travel to other images more safely), the engine jar (with the
# fatbin and the emulator library when they were built), the dependency jars, the test classes,
# JUnit's console launcher, scripts/hf_fixture.py, the torch references of the GPU benchmarks
# (scripts/torch_{gemm,attention,train}_bench.py) and gpu-check.sh itself.
#
# Usage: scripts/gpu-bundle.sh [extra mvn flags, e.g. -o]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/gpu-bundle
B=$OUT/hintgrpo-gpu
LIMIT_MIB=60

# jlink from a JDK new enough to link its own runtime; prefer Temurin, else the default JDK
JDK=${GPU_BUNDLE_JDK:-}
if [ -z "$JDK" ]; then
  for d in /usr/lib/jvm/temurin-*-jdk-amd64 /usr/lib/jvm/java-17-openjdk-amd64; do
    [ -x "$d/bin/jlink" ] && { JDK=$d; break; }
  done
fi
[ -n "$JDK" ] && [ -x "$JDK/bin/jlink" ] || { echo "gpu-bundle: no JDK with jlink found (set GPU_BUNDLE_JDK)" >&2; exit 1; }
JDK_MAJOR=$("$JDK/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')

pomprop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" pom.xml | head -1; }
JUNIT_PLATFORM=$(pomprop junit-platform.version)
JCUDA=$(pomprop jcuda.version)

echo "gpu-bundle: building (mvn package, tests compiled, not run)" >&2
rm -rf "$OUT"
mkdir -p "$B/lib" "$B/test" "$B/scripts"
# one reactor run, so engine and trainer come from this tree, never from ~/.m2
mvn -B -ntp -q "$@" -DskipTests -pl tests -am package dependency:copy-dependencies \
  -DincludeScope=test -DoutputDirectory="$OUT/deps"
mvn -B -ntp -q "$@" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_PLATFORM" \
  -DoutputDirectory="$B/test" -N

# runtime jars; JUnit's own jars are inside the console launcher
for j in "$OUT"/deps/*.jar; do
  case "$(basename "$j")" in
    junit-*|opentest4j-*|apiguardian-*) ;;
    jcuda-natives-*) ;;
    onnxruntime-*) ;; # 54 MB; only export onnx and the benchmarks use it, neither runs in the GPU check
    *) cp "$j" "$B/lib/" ;;
  esac
done
# DJL's tokenizers jar carries its native library for five platforms (56 MB unpacked): keep
# linux-x86_64's, the GPU machines'
for j in "$B"/lib/tokenizers-*.jar; do
  [ -f "$j" ] || continue
  rm -rf "$OUT/slim" && mkdir -p "$OUT/slim"
  (cd "$OUT/slim" && "$JDK/bin/jar" xf "$j")
  find "$OUT/slim/native/lib" -mindepth 1 -maxdepth 1 -type d ! -name linux-x86_64 -exec rm -rf {} +
  "$JDK/bin/jar" cfM "$j" -C "$OUT/slim" .
  rm -rf "$OUT/slim"
done
# JCuda's natives jar also carries the runtime, NVRTC and PTX-compiler bindings (24 MB of .so);
# the driver API binding is all we load, so the bundle keeps only that
mkdir -p "$OUT/natives"
(cd "$OUT/natives" && "$JDK/bin/jar" xf "$OUT/deps/jcuda-natives-$JCUDA-linux-x86_64.jar" "lib/libJCudaDriver-$JCUDA-linux-x86_64.so")
"$JDK/bin/jar" cf "$B/lib/jcuda-natives-$JCUDA-linux-x86_64-driver-only.jar" -C "$OUT/natives" lib
"$JDK/bin/jar" cf "$B/test/hintgrpo-engine-tests.jar" -C engine/target/test-classes .
"$JDK/bin/jar" cf "$B/test/hintgrpo-tests-tests.jar" -C tests/target/test-classes .

FATBIN=no; EMULATOR=no; BENCH=no
[ -f tests/target/test-classes/io/hintgrpo/tests/GpuBench.class ] && BENCH=yes
"$JDK/bin/jar" tf "$B"/lib/hintgrpo-engine-*.jar | grep -q '^native/hintgrpo.fatbin$' && FATBIN=yes
"$JDK/bin/jar" tf "$B"/lib/hintgrpo-engine-*.jar | grep -q '^native/.*\.so$' && EMULATOR=yes
[ $FATBIN = yes ] || echo "gpu-bundle: WARNING: the engine jar has no native/hintgrpo.fatbin (built without nvcc?): the cuda backend will report no usable GPU" >&2

# the runtime: what the engine, JCuda, LWJGL (jdk.unsupported), the CPU backend
# (jdk.incubator.vector) and JUnit's console launcher need: java.sql, which brings java.xml for
# its reports, and jdk.zipfs, without which its package scan cannot look inside jars
MODULES=java.base,java.logging,jdk.unsupported,java.management,jdk.incubator.vector,java.sql,jdk.zipfs
COMPRESS="--compress=zip-9"
[ "$JDK_MAJOR" -lt 21 ] && COMPRESS="--compress=2"
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages $COMPRESS --output "$B/jre"
# Temurin ships libjvm.so with its symbol table (5 MB); crash logs lose names, the bundle gets lighter
command -v strip >/dev/null && strip --strip-unneeded "$B/jre/lib/server/libjvm.so"

cp scripts/gpu-check.sh "$B/gpu-check.sh"
cp scripts/hf_fixture.py scripts/torch_timing.py scripts/torch_gemm_bench.py scripts/torch_attention_bench.py scripts/torch_train_bench.py "$B/scripts/"

# the fragment-layout probe: prebuilt here (static CUDA runtime: it needs only libcuda.so.1
# there), with its source and the headers so the GPU machine's nvcc can rebuild it if need be
PROBE=no
if [ -f kernels/common/ptx.cuh ]; then
  mkdir -p "$B/kernels/common" "$B/bin"
  cp kernels/common/*.cuh "$B/kernels/common/"
  cp scripts/gpu-fragment-probe.cu scripts/gpu-fragment-probe.py "$B/scripts/"
  if command -v nvcc >/dev/null; then
    nvcc -std=c++17 -O2 -I kernels -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
      -gencode arch=compute_89,code=sm_89 -gencode 'arch=compute_90,code=[sm_90,compute_90]' \
      -o "$B/bin/gpu-fragment-probe" scripts/gpu-fragment-probe.cu
    PROBE=prebuilt
  else
    PROBE=source
  fi
fi
cat > "$B/BUNDLE" <<EOF
commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo " (with uncommitted changes)")
built $(date -u +%Y-%m-%dT%H:%M:%SZ)
java $("$B/jre/bin/java" -version 2>&1 | head -1) (jlinked from $JDK)
fatbin $FATBIN
emulator $EMULATOR
bench $BENCH
fragment-probe $PROBE
EOF
rm -rf "$OUT/deps" "$OUT/natives"

tar -C "$OUT" -czf "$OUT/hintgrpo-gpu.tar.gz" hintgrpo-gpu
packed=$(stat -c %s "$OUT/hintgrpo-gpu.tar.gz")
unpacked=$(du -sb "$B" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "gpu-bundle: $B ($(mib "$unpacked") unpacked: runtime $(mib "$(du -sb "$B/jre" | cut -f1)"), $OUT/hintgrpo-gpu.tar.gz ($(mib "$packed")); fatbin $FATBIN, emulator $EMULATOR, fragment probe $PROBE, bench $BENCH"
if [ "$packed" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "gpu-bundle: the packed bundle is over $LIMIT_MIB MiB" >&2
  exit 1
fi
