#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (CUDA 13, PyTorch 2.11, transformers, peft; no network, no gRPC/pqxx):
#   1. writes the model fixtures (scripts/gpu/make_model_fixtures.py) into tests/fixtures/model
#      and packs them as $OUT/fixtures.tar.gz;
#   2. builds libs/model alone (libs/model/standalone) against PyTorch's libtorch with
#      TEMPER_WITH_CUDA=ON, using the dependencies scripts/gpu/pack_deps.sh carried in
#      build/gpu-deps;
#   3. runs every libs/model test (unit, slow, gpu), fixtures included.
# Logs: $OUT/fixtures.log, $OUT/build.log, $OUT/test.log, $OUT/summary.txt. Each step goes on
# when an earlier one fails, falling back to smaller builds, so one call says as much as it can.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/check_model_out}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
export PYTHONUNBUFFERED=1
export PATH=/usr/local/cuda/bin:$PATH

note "== machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -1
  python3 -c 'import torch,transformers;print("torch",torch.__version__,"cuda",torch.version.cuda,"transformers",transformers.__version__)'
  python3 -c 'import peft;print("peft",peft.__version__)'; g++ --version | head -1; cmake --version | head -1; } 2>&1 | tee -a "$summary"

note "== fixtures"
if python3 scripts/gpu/make_model_fixtures.py --out tests/fixtures/model > "$OUT/fixtures.log" 2>&1; then
  tar -czf "$OUT/fixtures.tar.gz" -C tests/fixtures/model . && note "fixtures: ok ($(du -sh "$OUT/fixtures.tar.gz" | cut -f1))"
else
  note "fixtures: FAILED (tail of fixtures.log below)"; tail -20 "$OUT/fixtures.log" | tee -a "$summary"
fi

deps="$PWD/build/gpu-deps/usr"
if [ ! -d "$deps" ]; then note "build/gpu-deps missing: run scripts/gpu/pack_deps.sh here and carry build/gpu-deps"; fi
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
libdir="$deps/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$libdir:${LD_LIBRARY_PATH:-}"
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
        -Dabsl_DIR="$libdir/cmake/absl" -DGTest_DIR="$libdir/cmake/GTest"
        -Dnlohmann_json_DIR="$deps/share/cmake/nlohmann_json")
export TORCH_CUDA_ARCH_LIST=9.0

build() {  # build NAME extra-cmake-args...
  local name=$1; shift
  local dir="build/gpu-$name"
  note "== build $name"
  if cmake -S libs/model/standalone -B "$dir" "${common[@]}" "$@" >> "$OUT/build.log" 2>&1 &&
     cmake --build "$dir" -j 16 >> "$OUT/build.log" 2>&1; then
    note "build $name: ok"
    (cd "$dir" && ctest --output-on-failure --timeout 300 -V) > "$OUT/test-$name.log" 2>&1
    local rc=$?
    note "tests $name: rc=$rc"
    grep -E "tests passed|Test +#|NF4|max \|diff\||GB/s|Skipped|SKIPPED|FAILED" "$OUT/test-$name.log" | head -60 | tee -a "$summary"
    return $rc
  fi
  note "build $name: FAILED"; grep -E "error|Error" "$OUT/build.log" | tail -15 | tee -a "$summary"
  return 1
}

if ! build full -DCMAKE_PREFIX_PATH="$torch_prefix" -DTEMPER_WITH_CUDA=ON; then
  # Separate the failures: the kernel without libtorch, then libtorch without the kernel.
  build kernel -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON -DTEMPER_WITH_CUDA=ON
  build torch -DCMAKE_PREFIX_PATH="$torch_prefix" -DTEMPER_WITH_CUDA=OFF
fi
cat "$OUT"/test-*.log > "$OUT/test.log" 2>/dev/null
rm -f "$OUT"/test-*.log
note "== done"
