#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every tier that runs
# without a GPU (unit and gradient checks, the PyTorch oracle, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

# The PyTorch oracle runs on Debian's system python3 (the pyenv python3 first on PATH has no torch).
if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  echo "test.sh: installing python3-torch for the PyTorch oracle" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch >/dev/null
fi

mvn -B -ntp verify "$@"
