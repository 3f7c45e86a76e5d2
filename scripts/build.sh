#!/usr/bin/env bash
# Configures and builds whittle (Release) in build/. Extra arguments go to CMake.
# WHITTLE_TARGET=whittle builds only the command line (what the demo needs), not the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${WHITTLE_BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [ ! -f "$BUILD_DIR/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS" ${WHITTLE_TARGET:+--target "$WHITTLE_TARGET"}
