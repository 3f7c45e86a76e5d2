#!/usr/bin/env bash
# Builds (if needed) and runs one libFuzzer harness of fuzz/ for a while:
#
#   scripts/fuzz.sh NAME SECONDS [LIBFUZZER_ARGS...]     NAME: model_load, npy, npz, image,
#                                                        labels, pipeline or optimize
#
# The build is clang with AddressSanitizer + UndefinedBehaviorSanitizer + libFuzzer in
# build-fuzz/ (WHITTLE_FUZZ_BUILD_DIR), which also holds a sanitized whittle_tests. The corpus
# lives in .cache/fuzz/NAME/corpus, seeded once (.cache/fuzz/NAME/seeds) from ../shared/models
# (small .onnx), ../shared/data, models/ and fuzz/make_seeds.py; crashes go to
# .cache/fuzz/NAME/artifacts/. libFuzzer's final statistics (executions, exec/s, coverage) end
# the output. One process, one core (no -jobs/-workers). docs/fuzzing.md has the results.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh NAME SECONDS [LIBFUZZER_ARGS...]" >&2
  exit 2
fi
NAME=$1
TIME=$2
shift 2
case "$NAME" in
  model_load|optimize) MAX_LEN=2097152; DICT=fuzz/model.dict ;;
  npy) MAX_LEN=4096; DICT=fuzz/npy.dict ;;
  npz) MAX_LEN=262144; DICT=fuzz/npy.dict ;;
  image) MAX_LEN=32768; DICT=fuzz/image.dict ;;
  labels) MAX_LEN=16384; DICT= ;;
  pipeline) MAX_LEN=4096; DICT=fuzz/pipeline.dict ;;
  *) echo "fuzz.sh: unknown harness '$NAME' (model_load, npy, npz, image, labels, pipeline, optimize)" >&2; exit 2 ;;
esac

# What fuzzing needs beyond scripts/setup.sh: clang's compiler-rt (libFuzzer, sanitizers) and
# LLVM's OpenMP runtime (clang's -fopenmp).
APT_PACKAGES=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fuzz.sh: installing ${missing[*]}"
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${WHITTLE_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # -O2 with line tables (readable sanitizer stacks); NDEBUG left out so that asserts fire.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only" \
    -DWHITTLE_SANITIZE=ON -DWHITTLE_FUZZ=ON -DWHITTLE_CUDA=OFF >/dev/null
fi
# WHITTLE_FUZZ_NO_BUILD=1 runs the harness as built (while another build uses the folder).
if [ "${WHITTLE_FUZZ_NO_BUILD:-0}" != 1 ]; then
  nice -n 5 cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target "fuzz_$NAME"
fi

WORK=.cache/fuzz/$NAME
mkdir -p "$WORK/corpus" "$WORK/artifacts"
if [ ! -f "$WORK/seeds/.done" ]; then
  rm -rf "$WORK/seeds"
  mkdir -p "$WORK/seeds"
  PY=.venv/bin/python
  [ -x "$PY" ] || PY=python3
  "$PY" fuzz/make_seeds.py "$NAME" "$WORK/seeds"
  SHARED=../shared
  copy_small() {  # copy_small MAX_BYTES FILE...: seeds no larger than MAX_BYTES
    local max=$1
    shift
    for f in "$@"; do
      [ -f "$f" ] || continue
      if [ "$(stat -c %s "$f")" -le "$max" ]; then
        cp "$f" "$WORK/seeds/$(echo "${f#"$SHARED"/}" | tr '/' '_')"
      fi
    done
  }
  shopt -s nullglob
  case "$NAME" in
    model_load|optimize) copy_small 2000000 "$SHARED"/models/*.onnx models/*.onnx ;;
    npz) copy_small "$MAX_LEN" "$SHARED"/data/*/*.npz ;;
    image) copy_small 20000 "$SHARED"/data/photos/*.jpg "$SHARED"/data/imagenet-sample/images/*.JPEG ;;
    labels) copy_small "$MAX_LEN" "$SHARED"/data/*/*.csv "$SHARED"/data/*/*.tsv "$SHARED"/data/*/*labels*.txt \
              "$SHARED"/data/mnist/*labels*.gz ;;
  esac
  touch "$WORK/seeds/.done"
fi

# Inputs go to files for the readers that take a path: keep them in memory (a disk write per
# execution costs a context switch).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
# Single-threaded kernels (fuzz_optimize folds constants on the runtime): one core.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
args=(-max_total_time="$TIME" -rss_limit_mb=2048 -timeout=10 -max_len="$MAX_LEN" -print_final_stats=1
      -artifact_prefix="$WORK/artifacts/")
[ -n "$DICT" ] && args+=(-dict="$DICT")
echo "fuzz.sh: $BUILD_DIR/fuzz/fuzz_$NAME ${args[*]} $* $WORK/corpus $WORK/seeds"
nice -n 5 "$BUILD_DIR/fuzz/fuzz_$NAME" "${args[@]}" "$@" "$WORK/corpus" "$WORK/seeds"
