#!/usr/bin/env bash
# Runs temper's whole test suite: installs dependencies, builds, then every CTest tier
# (unit, pg, e2e, slow; gpu tests skip themselves with a reason when no GPU is present), then the
# unit tier again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            everything
#   TEMPER_TEST_LABELS=unit scripts/test.sh    one tier (a CTest label regex)
#   TEMPER_SKIP_ASAN=1 scripts/test.sh         skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

jobs=$(nproc)
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.cache/ccache}"
labels="${TEMPER_TEST_LABELS:-unit|pg|e2e|gpu|slow}"

echo "== build (dev preset)"
cmake --preset dev >/dev/null
cmake --build build/dev -j"$jobs"

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "== gpu tier: skipped — no GPU here (nvidia-smi finds none); the CUDA tests are built only with"
  echo "   the cuda preset and run on a GPU machine by scripts/gpu/check_model.sh (docs/model.md)"
fi
echo "== tests: ${labels}"
(cd build/dev && ctest -L "$labels" --output-on-failure -j"$jobs" --timeout 900)

if [ "${TEMPER_SKIP_ASAN:-0}" != 1 ]; then
  echo "== unit tier under ASan+UBSan"
  cmake --preset asan >/dev/null
  # Build only what the unit tier runs: a sanitizer build of everything would double CI time.
  mapfile -t unit_tests < <(cd build/asan && ctest -N -L unit | sed -n 's/^ *Test *#[0-9]*: //p')
  cmake --build build/asan -j"$jobs" --target "${unit_tests[@]}"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest -L unit --output-on-failure -j"$jobs" --timeout 900)
fi
echo "== all tests passed"
