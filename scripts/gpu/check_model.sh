#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (CUDA 13, PyTorch 2.11, transformers, peft; no network, no gRPC/pqxx):
#   1. writes the model fixtures (scripts/gpu/make_model_fixtures.py) into tests/fixtures/model
#      and packs them as $OUT/fixtures.tar.gz;
#   2. builds libs/model alone (libs/model/standalone) against PyTorch's libtorch with
#      TEMPER_WITH_CUDA=ON, using the dependencies scripts/gpu/pack_deps.sh carried in
#      build/gpu-deps;
#   3. runs every libs/model test (unit, slow, gpu), fixtures included (greedy generation against
#      transformers.generate is part of model_fixture_test);
#   4. NF4 + LoRA against PEFT: nf4_peft_export writes our NF4 model's dequantized weights and our
#      NF4 + LoRA logits, scripts/gpu/check_nf4_peft.py runs PEFT on those weights and compares.
# BUILD_TYPE (default Release) sets CMAKE_BUILD_TYPE, e.g. RelWithDebInfo for gdb.
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
common=(-G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" -DCMAKE_CUDA_ARCHITECTURES=90
        -Dabsl_DIR="$libdir/cmake/absl" -DGTest_DIR="$libdir/cmake/GTest"
        -Dnlohmann_json_DIR="$deps/share/cmake/nlohmann_json")
export TORCH_CUDA_ARCH_LIST=9.0

tests_failed=0
build() {  # build NAME extra-cmake-args...: 1 when the build fails (test failures count in tests_failed)
  local name=$1; shift
  local dir="build/gpu-$name"
  note "== build $name"
  if cmake -S libs/model/standalone -B "$dir" "${common[@]}" "$@" >> "$OUT/build.log" 2>&1 &&
     cmake --build "$dir" -j 16 >> "$OUT/build.log" 2>&1; then
    note "build $name: ok"
    (cd "$dir" && ctest --output-on-failure --timeout 300 -V) > "$OUT/test-$name.log" 2>&1
    local rc=$?
    note "tests $name: rc=$rc"
    tests_failed=$((tests_failed + (rc != 0)))
    grep -E "tests passed|Test +#|NF4|max \|diff\||hf fp32|greedy|GB/s|Skipped|SKIPPED|FAILED" "$OUT/test-$name.log" | head -80 | tee -a "$summary"
    return 0
  fi
  note "build $name: FAILED"; grep -E "error|Error" "$OUT/build.log" | tail -15 | tee -a "$summary"
  return 1
}

nf4_peft() {  # nf4_peft BUILD_DIR
  note "== NF4 + LoRA vs PEFT ($1)"
  local exe="$1/libs/model/nf4_peft_export"
  if [ ! -x "$exe" ]; then note "nf4_peft: $exe was not built"; return; fi
  for kind in llama qwen2; do
    "$exe" "tests/fixtures/model/$kind" "$1/nf4_peft/$kind" >> "$OUT/nf4_peft.log" 2>&1 &&
      python3 scripts/gpu/check_nf4_peft.py "$1/nf4_peft/$kind" "tests/fixtures/model/$kind" >> "$OUT/nf4_peft.log" 2>&1
    note "nf4_peft $kind: rc=$?"
  done
  grep -E "max \|diff\||Error|error" "$OUT/nf4_peft.log" | tail -12 | tee -a "$summary"
}

if build full -DCMAKE_PREFIX_PATH="$torch_prefix" -DTEMPER_WITH_CUDA=ON; then
  nf4_peft build/gpu-full
else
  # Separate the failures: the kernel without libtorch, then libtorch without the kernel.
  build kernel -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON -DTEMPER_WITH_CUDA=ON
  build torch -DCMAKE_PREFIX_PATH="$torch_prefix" -DTEMPER_WITH_CUDA=OFF
fi
cat "$OUT"/test-*.log > "$OUT/test.log" 2>/dev/null
rm -f "$OUT"/test-*.log
note "== done (test runs with failures: $tests_failed)"
