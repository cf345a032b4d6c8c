#!/usr/bin/env bash
# Runs ON THE GPU MACHINE (CUDA, PyTorch, transformers; build/gpu-deps carried, see pack_deps.sh):
#   1. builds model_generate_bench (bench/model) with libs/model standalone, TEMPER_WITH_CUDA=ON,
#      the cmake flags of check_model.sh;
#   2. runs it (Llama-3-8B-shaped random model; bf16 then NF4; batch 1, 16, 64; prompt 128,
#      128 new tokens, greedy) and scripts/gpu/hf_generate_bench.py (transformers.generate, bf16);
#   3. writes $OUT/generate_bench.json and the markdown table $OUT/generate_table.md.
# Time-boxed to ~7.5 minutes in all: each benchmark gets a budget and skips the batches left when
# it runs out (partial results are kept). Logs: $OUT/build.log, $OUT/temper.jsonl, $OUT/hf.jsonl.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/generate_bench_out}
mkdir -p "$OUT"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
summary="$OUT/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
export PYTHONUNBUFFERED=1
export PATH=/usr/local/cuda/bin:$PATH
BATCHES=${BATCHES:-1,16,64}

note "== machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -1
  python3 -c 'import torch,transformers;print("torch",torch.__version__,"cuda",torch.version.cuda,"transformers",transformers.__version__)'
  nproc; } 2>&1 | tee -a "$summary"

deps="$PWD/build/gpu-deps/usr"
[ -d "$deps" ] || note "build/gpu-deps missing: run scripts/gpu/pack_deps.sh here and carry build/gpu-deps"
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
libdir="$deps/lib/x86_64-linux-gnu"
export LD_LIBRARY_PATH="$libdir:${LD_LIBRARY_PATH:-}"
export TORCH_CUDA_ARCH_LIST=9.0
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
        -Dabsl_DIR="$libdir/cmake/absl" -DGTest_DIR="$libdir/cmake/GTest"
        -Dnlohmann_json_DIR="$deps/share/cmake/nlohmann_json"
        -DCMAKE_PREFIX_PATH="$torch_prefix" -DTEMPER_WITH_CUDA=ON)
dir=build/gpu-gen
bench="$dir/bench/model/model_generate_bench"
note "== build"
if ! { cmake -S libs/model/standalone -B "$dir" "${common[@]}" && cmake --build "$dir" -j 16 --target model_generate_bench; } >> "$OUT/build.log" 2>&1; then
  note "build failed; retrying without the allocator's memory statistics"
  grep -E "error" "$OUT/build.log" | tail -8 | tee -a "$summary"
  cmake -S libs/model/standalone -B "$dir" "${common[@]}" -DTEMPER_BENCH_NO_MEMSTATS=ON >> "$OUT/build.log" 2>&1 &&
    cmake --build "$dir" -j 16 --target model_generate_bench >> "$OUT/build.log" 2>&1
fi
if [ -x "$bench" ]; then note "build: ok ($(elapsed) s)"; else note "build: FAILED"; grep -E "error" "$OUT/build.log" | tail -15 | tee -a "$summary"; fi

# Budgets: the whole script stays under ~450 s; each run stops starting batches at its budget.
left=$(( 450 - $(elapsed) ))
ours_limit=$(( left * 55 / 100 )); [ "$ours_limit" -gt 230 ] && ours_limit=230
note "== temper (limit ${ours_limit} s)"
if [ -x "$bench" ]; then
  timeout "$ours_limit" "$bench" --batches "$BATCHES" --variants bf16,nf4 --prompt-len 128 --new-tokens 128 \
    --budget-s $(( ours_limit - 25 )) --threads 16 > "$OUT/temper.jsonl" 2> "$OUT/temper.err"
  note "temper: rc=$? ($(elapsed) s)"; cat "$OUT/temper.jsonl" | tee -a "$summary"; tail -5 "$OUT/temper.err" | tee -a "$summary"
fi
left=$(( 460 - $(elapsed) ))
note "== transformers (limit ${left} s)"
if [ "$left" -gt 40 ]; then
  timeout "$left" python3 scripts/gpu/hf_generate_bench.py --batches "$BATCHES" --prompt-len 128 --new-tokens 128 \
    --budget-s $(( left - 30 )) > "$OUT/hf.jsonl" 2> "$OUT/hf.err"
  note "transformers: rc=$? ($(elapsed) s)"; cat "$OUT/hf.jsonl" | tee -a "$summary"; grep -v Warning "$OUT/hf.err" | tail -5 | tee -a "$summary"
fi

python3 - "$OUT" <<'PY'
import json, os, subprocess, sys
out = sys.argv[1]
def rows(name):
    r = []
    p = os.path.join(out, name)
    if os.path.exists(p):
        for line in open(p):
            try: r.append(json.loads(line))
            except ValueError: pass
    return r
t, h = rows("temper.jsonl"), rows("hf.jsonl")
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = "unknown"
json.dump({"gpu": gpu, "temper": t, "transformers": h}, open(os.path.join(out, "generate_bench.json"), "w"), indent=1)
def get(rs, variant, b):
    for r in rs:
        if r.get("variant") == variant and r.get("batch") == b and "tokens_per_s" in r: return r
    return None
batches = sorted({r["batch"] for r in t + h if "batch" in r})
fr = lambda x: "—" if x is None else f"{x:.2f}×"
f = lambda x, d=1: "—" if x is None else f"{x:.{d}f}"
lines = ["| batch | temper bf16 tok/s | temper NF4 tok/s | transformers bf16 tok/s | ratio bf16 | ratio NF4 | peak GiB (temper bf16 / NF4 / transformers) |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
for b in batches:
    tb, tn, hb = get(t, "bf16", b), get(t, "nf4", b), get(h, "bf16", b)
    v = lambda r: None if r is None else r["tokens_per_s"]
    m = lambda r: None if r is None or r.get("peak_alloc_gib", -1) < 0 else r["peak_alloc_gib"]
    ratio = lambda r: None if r is None or hb is None else r["tokens_per_s"] / hb["tokens_per_s"]
    lines.append(f"| {b} | {f(v(tb))} | {f(v(tn))} | {f(v(hb))} | {fr(ratio(tb))} | {fr(ratio(tn))} | {f(m(tb))} / {f(m(tn))} / {f(m(hb))} |")
open(os.path.join(out, "generate_table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
note "== done ($(elapsed) s)"
