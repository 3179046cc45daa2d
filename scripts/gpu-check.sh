#!/usr/bin/env bash
# GPU check: runs on a GPU machine from the bundle that scripts/gpu-bundle.sh builds (no Maven,
# no network and no Java needed there: the bundle brings its own runtime).
#
#   gpu-check.sh OUTDIR [--bench] [--emu] [--scale]
#
# Tier 1 (default, under 3 minutes): the GPU, driver and compute capability (nvidia-smi and the
# JCuda probe); the fragment-layout probe of the tensor-core wrappers; the whole parity suite on
# the cuda backend; the Hugging Face golden fixture (scripts/hf_fixture.py with the machine's
# transformers) and our cpu model checked against it. Tier 2 (--bench): per-kernel and model-level
# timings against torch in the same run (GpuBench; bench.json, bench-jmh.json, bench-targets.txt).
# Writes OUTDIR/results.json, OUTDIR/logs/*.log, JUnit reports and the fixture into OUTDIR, and
# prints a compact table last. Exit status: 0 when nothing failed, 1 otherwise. --emu adds the
# same parity suite on cuda-emu (the CUDA emulator inside the bundle): a check of the bundle
# itself on any linux-x86_64 machine. --scale (minutes; the memory plan issue's item 4): one LoRA GRPO
# step of Qwen2.5-7B's shape on a frozen bf16 base with recompute (GpuBench section "scale"): each
# phase's peak device memory against MemoryPlan, and its time (scale.json, the memory rows printed).
#
# Runs from the bundle (its own copy of this script) or from a source tree where
# build/gpu-bundle/hintgrpo-gpu exists.
set -uo pipefail

usage() { echo "usage: gpu-check.sh OUTDIR [--bench] [--emu] [--scale]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUTDIR=$1; shift
BENCH=0; EMU=0; SCALE=0
for a in "$@"; do
  case "$a" in --bench) BENCH=1 ;; --emu) EMU=1 ;; --scale) SCALE=1 ;; *) usage ;; esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -x "$HERE/jre/bin/java" ]; then B=$HERE
elif [ -x "$HERE/../build/gpu-bundle/hintgrpo-gpu/jre/bin/java" ]; then B=$(cd "$HERE/../build/gpu-bundle/hintgrpo-gpu" && pwd)
else echo "gpu-check: no bundle next to this script nor at build/gpu-bundle/hintgrpo-gpu: run scripts/gpu-bundle.sh" >&2; exit 2
fi
mkdir -p "$OUTDIR/logs" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
LOGS=$OUTDIR/logs
START=$(date +%s)

JAVA=$B/jre/bin/java
CP=$(ls "$B"/lib/*.jar "$B"/test/hintgrpo-*.jar | tr '\n' ':')
# the bundled runtime is a recent JDK: say yes up front to JNI loading (JCuda, LWJGL, the
# emulator) and LWJGL's sun.misc.Unsafe, rather than print warnings in every log
JOPTS=(--add-modules jdk.incubator.vector -Xmx8g)
if "$JAVA" --enable-native-access=ALL-UNNAMED -version >/dev/null 2>&1; then JOPTS+=(--enable-native-access=ALL-UNNAMED); fi
if "$JAVA" --sun-misc-unsafe-memory-access=allow -version >/dev/null 2>&1; then JOPTS+=(--sun-misc-unsafe-memory-access=allow); fi

# the python with torch (the GPU image's plain python3 holds it)
PY=${GPU_CHECK_PYTHON:-python3}

# results: one line per check, tab-separated: name, status (pass/fail/skip), seconds, detail
RESULTS=$OUTDIR/results.tsv
: > "$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(printf '%s' "$4" | tr '\t\n' '  ' | cut -c1-300)" >> "$RESULTS"; }

# Tier 1 must end within 3 minutes: each step's limit is cut to what is left of that
DEADLINE=$((START + 175))

# runs a step with a time limit; its output goes to logs/NAME.log; returns the command's status
step() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  local left=$((DEADLINE - t0))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 0 ]; then
    echo "gpu-check: no time left in the budget" > "$LOGS/$name.log"
    STEP_SECONDS=0
    return 124
  fi
  timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  STEP_SECONDS=$(( $(date +%s) - t0 ))
  [ $rc -eq 124 ] && echo "gpu-check: timed out after ${limit}s" >> "$LOGS/$name.log"
  return $rc
}

# JUnit's console launcher: junit_cmd REPORTNAME PROPERTIES... sets JUNIT to the command (then
# append selectors); a command, not a function, so that timeout can run it
junit_cmd() {
  local report=$1; shift
  JUNIT=("$JAVA" "${JOPTS[@]}" "$@" -jar "$(ls "$B"/test/junit-platform-console-standalone-*.jar)" execute
    --disable-banner --details=tree --class-path "$CP" --reports-dir "$OUTDIR/junit-$report")
}

# the JUnit summary for a table detail (assumption failures count as "aborted": a test that
# skipped itself on the GPU machine deserves a look)
junit_summary() {
  local log=$1 what n out=""
  for what in successful failed aborted skipped; do
    n=$(sed -n "s/.*\[ *\([0-9]*\) tests $what.*/\1/p" "$log" | tail -1)
    out+="${n:-0} $what, "
  done
  echo "${out%, }"
}

# the largest of the per-op relative errors the parity suites report (driver, op, error per line)
worst() {
  [ -s "$1" ] || return 0
  sort -t$'\t' -k3,3g "$1" | tail -1 | awk -F'\t' '{ printf "; max rel err %s (%s)", $3, $2 }'
}

# ---- 1. GPU, driver, compute capability -------------------------------------------------------
if command -v nvidia-smi >/dev/null 2>&1; then
  if step gpu 30 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader; then
    record gpu pass "$STEP_SECONDS" "$(head -1 "$LOGS/gpu.log")"
  else
    record gpu fail "$STEP_SECONDS" "nvidia-smi failed: $(tail -1 "$LOGS/gpu.log")"
  fi
else
  record gpu skip 0 "nvidia-smi not found"
fi

step probe 60 "$JAVA" "${JOPTS[@]}" -cp "$CP" io.hintgrpo.engine.cuda.JCudaDriver
PROBE_RC=$?
PROBE=$(grep -E '^(usable: |no usable GPU: )' "$LOGS/probe.log" | tail -1)
if [ $PROBE_RC -eq 0 ]; then
  record probe pass "$STEP_SECONDS" "${PROBE#usable: }"
  USABLE=1
else
  record probe fail "$STEP_SECONDS" "${PROBE:-the probe crashed (exit $PROBE_RC): $(tail -1 "$LOGS/probe.log")}"
  USABLE=0
fi
NO_GPU="no usable GPU (see the probe line)"

# ---- 2. fragment layouts of the tensor-core wrappers on hardware -------------------------------
if [ ! -f "$B/kernels/common/ptx.cuh" ] || [ ! -f "$B/scripts/gpu-fragment-probe.py" ]; then
  record fragment-layout skip 0 "no wrappers yet: the bundle has no kernels/common/ptx.cuh and probe"
elif [ $USABLE -eq 0 ]; then
  record fragment-layout skip 0 "$NO_GPU"
elif step fragment-layout 90 "$PY" "$B/scripts/gpu-fragment-probe.py" "$B" "$OUTDIR/fragment-layout"; then
  record fragment-layout pass "$STEP_SECONDS" "$(tail -1 "$LOGS/fragment-layout.log")"
else
  record fragment-layout fail "$STEP_SECONDS" "$(tail -1 "$LOGS/fragment-layout.log")"
fi

# ---- 3. the parity suite on cuda ----------------------------------------------------------------
# every kernel's parity test, the driver's own test and the allocator's, run against the real GPU
if [ $USABLE -eq 0 ]; then
  record parity-cuda skip 0 "$NO_GPU"
else
  junit_cmd parity-cuda -Dhintgrpo.test.driver=cuda -Dhintgrpo.test.report="$OUTDIR/parity-cuda-errors.tsv"
  # (the emulator's own tests stay out: they load its test library, one emulator library per JVM)
  step parity-cuda 150 "${JUNIT[@]}" --fail-if-no-tests --select-package io.hintgrpo.engine.cuda \
    --exclude-classname '.*\.Emu.*Test'
  rc=$?
  if [ $rc -eq 0 ]; then record parity-cuda pass "$STEP_SECONDS" "$(junit_summary "$LOGS/parity-cuda.log")$(worst "$OUTDIR/parity-cuda-errors.tsv")"
  else record parity-cuda fail "$STEP_SECONDS" "exit $rc: $(junit_summary "$LOGS/parity-cuda.log")$(worst "$OUTDIR/parity-cuda-errors.tsv")"
  fi
fi

# ---- 4. the Hugging Face golden fixture, and our cpu model against it ---------------------------
FIXTURE=$OUTDIR/hf-qwen2-tiny
if ! timeout 60 "$PY" -c 'import torch, transformers, safetensors' > "$LOGS/hf-fixture.log" 2>&1; then
  record hf-fixture skip 0 "$PY lacks torch/transformers/safetensors: $(tail -1 "$LOGS/hf-fixture.log")"
elif step hf-fixture 120 "$PY" "$B/scripts/hf_fixture.py" "$FIXTURE"; then
  record hf-fixture pass "$STEP_SECONDS" "$(tail -1 "$LOGS/hf-fixture.log")"
else
  record hf-fixture fail "$STEP_SECONDS" "$(tail -1 "$LOGS/hf-fixture.log")"
fi
if [ -f "$FIXTURE/outputs.safetensors" ]; then
  junit_cmd hf-fixture -Dhintgrpo.hf.fixture="$FIXTURE"
  if step hf-fixture-cpu 90 "${JUNIT[@]}" --fail-if-no-tests --select-class io.hintgrpo.tests.HfFixtureTest; then
    record hf-fixture-cpu pass "$STEP_SECONDS" "cpu model vs transformers: $(grep -E '^ *logits ' "$LOGS/hf-fixture-cpu.log" | tr -s ' ' | head -1)"
  else
    record hf-fixture-cpu fail "$STEP_SECONDS" "$(grep -m1 -E 'rel err|disagrees|Exception' "$LOGS/hf-fixture-cpu.log")"
  fi
else
  record hf-fixture-cpu skip 0 "no fixture was written"
fi

# ---- --emu: the parity suite on the emulator inside the bundle (not tier 1) ----------------------
if [ $EMU -eq 1 ]; then
  DEADLINE=$(( $(date +%s) + 600 ))  # not tier 1: its own budget
  junit_cmd parity-emu -Dhintgrpo.test.driver=emu -Dhintgrpo.test.report="$OUTDIR/parity-emu-errors.tsv"
  step parity-emu 400 "${JUNIT[@]}" --fail-if-no-tests --select-package io.hintgrpo.engine.cuda \
    --exclude-classname '.*\.Emu.*Test'
  rc=$?
  if [ $rc -eq 0 ]; then record parity-emu pass "$STEP_SECONDS" "$(junit_summary "$LOGS/parity-emu.log")$(worst "$OUTDIR/parity-emu-errors.tsv")"
  else record parity-emu fail "$STEP_SECONDS" "exit $rc: $(junit_summary "$LOGS/parity-emu.log")$(worst "$OUTDIR/parity-emu-errors.tsv")"
  fi
fi

# ---- 5. tier 2: per-kernel and model-level timings against torch in the same run -------------------
# GpuBench (about 3-4 minutes on an H100): kernels, bf16 GEMMs vs torch.matmul, attention vs SDPA,
# decode with CUDA graphs, memory per component, training steps vs a PyTorch eager step, a GRPO
# step; it rewrites bench.json and bench-jmh.json after each section, so a timeout keeps the rest
DEADLINE=$(( $(date +%s) + 400 ))
if [ $BENCH -eq 0 ]; then
  record bench skip 0 "tier 2 not requested (--bench)"
elif [ $USABLE -eq 0 ]; then
  record bench skip 0 "$NO_GPU"
elif ! grep -q '^bench yes' "$B/BUNDLE"; then
  record bench skip 0 "no GPU benchmark harness in the bundle yet"
else
  # the torch references (scripts/torch_*_bench.py: cuBLAS, SDPA, a transformers training step)
  TORCH=()
  if timeout 60 "$PY" -c 'import torch; assert torch.cuda.is_available()' > /dev/null 2>&1; then
    TORCH=(-Dhintgrpo.bench.python="$PY" -Dhintgrpo.bench.scripts="$B/scripts")
  fi
  if step bench 330 "$JAVA" "${JOPTS[@]}" -Dhintgrpo.bench.out="$OUTDIR/bench.json" -Dhintgrpo.bench.jmh="$OUTDIR/bench-jmh.json" \
      ${TORCH[@]+"${TORCH[@]}"} -cp "$CP" io.hintgrpo.tests.GpuBench; then
    record bench pass "$STEP_SECONDS" "$(tail -1 "$LOGS/bench.log")"
  else
    record bench fail "$STEP_SECONDS" "$(grep '^GpuBench: section' "$LOGS/bench.log" | tail -1); $(tail -1 "$LOGS/bench.log")"
  fi
  [ ${#TORCH[@]} -eq 0 ] && record bench-torch skip 0 "$PY has no torch with CUDA: no in-run references"
  # the targets table (printed last by GpuBench) into the check's output
  sed -n '/^target  /,/^GpuBench: /p' "$LOGS/bench.log" > "$OUTDIR/bench-targets.txt"
fi

# ---- 6. the paper's scale: a 7B-shaped LoRA GRPO step, peak memory against the plan ----------------
if [ $SCALE -eq 0 ]; then
  record scale skip 0 "not requested (--scale)"
elif [ $USABLE -eq 0 ]; then
  record scale skip 0 "$NO_GPU"
else
  DEADLINE=$(( $(date +%s) + 420 ))
  if step scale 400 "$JAVA" "${JOPTS[@]}" -Xmx16g -Dhintgrpo.bench.sections=scale -Dhintgrpo.bench.out="$OUTDIR/scale.json" \
      -Dhintgrpo.bench.jmh="$OUTDIR/scale-jmh.json" -cp "$CP" io.hintgrpo.tests.GpuBench; then
    record scale pass "$STEP_SECONDS" "$(grep -c '^scale ' "$LOGS/scale.log") memory rows; $(tail -1 "$LOGS/scale.log")"
  else
    record scale fail "$STEP_SECONDS" "$(tail -1 "$LOGS/scale.log")"
  fi
  grep '^scale ' "$LOGS/scale.log" > "$OUTDIR/scale-memory.txt" || true
fi

# ---- results.json and the table -------------------------------------------------------------------
jstr() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
{
  echo "{"
  echo "  \"date\": $(jstr "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
  echo "  \"host\": $(jstr "$(hostname 2>/dev/null || echo unknown)"),"
  echo "  \"bundle\": $(jstr "$(tr '\n' ';' < "$B/BUNDLE" 2>/dev/null)"),"
  echo "  \"seconds\": $(( $(date +%s) - START )),"
  echo "  \"checks\": ["
  n=$(wc -l < "$RESULTS"); i=0
  while IFS=$'\t' read -r name status secs detail; do
    i=$((i + 1)); sep=","; [ $i -eq "$n" ] && sep=""
    echo "    {\"name\": $(jstr "$name"), \"status\": $(jstr "$status"), \"seconds\": $secs, \"detail\": $(jstr "$detail")}$sep"
  done < "$RESULTS"
  echo "  ]"
  echo "}"
} > "$OUTDIR/results.json"

FAILED=$(cut -f2 "$RESULTS" | grep -c '^fail$')
echo
echo "gpu-check: $OUTDIR ($(( $(date +%s) - START )) s; logs in logs/, results.json)"
printf '%-16s %-6s %6s  %s\n' check status time detail
while IFS=$'\t' read -r name status secs detail; do
  printf '%-16s %-6s %5ss  %s\n' "$name" "$status" "$secs" "$detail"
done < "$RESULTS"
if [ -s "$OUTDIR/scale-memory.txt" ]; then
  echo
  cat "$OUTDIR/scale-memory.txt"
fi
if [ -s "$OUTDIR/bench-targets.txt" ]; then
  echo
  grep -v '^GpuBench: ' "$OUTDIR/bench-targets.txt"
fi
[ "$FAILED" -eq 0 ]
