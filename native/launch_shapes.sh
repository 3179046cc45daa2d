#!/usr/bin/env bash
# Turns the launch shapes of kernels/common/launch.cuh (every `constexpr int NAME = value; // why`)
# into Java constants: OUTDIR/io/hintgrpo/engine/cuda/LaunchShapes.java. Run by Maven in engine's
# generate-sources phase (so the Java launchers compile against the header the kernels include),
# or by hand: native/launch_shapes.sh OUTDIR. A line it cannot read fails the build.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: native/launch_shapes.sh OUTDIR" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HEADER=$ROOT/kernels/common/launch.cuh
DIR=$1/io/hintgrpo/engine/cuda
mkdir -p "$DIR"
tmp=$(mktemp "$DIR/.LaunchShapes.XXXXXX")
trap 'rm -f "$tmp"' EXIT
perl -ne '
  BEGIN {
    print "package io.hintgrpo.engine.cuda;\n\n";
    print "/** Launch shapes shared with the kernels: generated from kernels/common/launch.cuh by native/launch_shapes.sh; edit the header. */\n";
    print "final class LaunchShapes {\n    private LaunchShapes() {}\n";
    $n = 0;
  }
  if (/^\s*constexpr\s+int\s+([A-Z][A-Z0-9_]*)\s*=\s*([0-9]+)\s*;\s*(?:\/\/\s*(.*?))?\s*$/) {
    my ($name, $value, $why) = ($1, $2, $3 // "");
    $why =~ s/\*\//* \//g;
    print "\n    /** $why */\n" if length $why;
    print "    static final int $name = $value;\n";
    $n++;
  } elsif (/^\s*constexpr/) {
    die "native/launch_shapes.sh: kernels/common/launch.cuh line $.: not `constexpr int NAME = digits; // why`: $_";
  }
  END {
    die "native/launch_shapes.sh: no launch shapes in kernels/common/launch.cuh\n" if $n == 0;
    print "}\n";
  }
' "$HEADER" > "$tmp"
mv "$tmp" "$DIR/LaunchShapes.java"
trap - EXIT
