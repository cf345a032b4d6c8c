#!/usr/bin/env bash
# temper's main job on the embedded default, on one machine: installs dependencies, builds, starts
# the coordinator (which starts its own PostgreSQL), starts workers, submits a run (default
# examples/local.yaml: CPU only), follows it to the end, prints its summary, lineage and SQL view, and stops
# everything it started.
#
# Workers: the real eval worker (sandboxed rustc/clippy, services/eval-worker) and the real trainer
# worker (QLoRA on libtorch, CPU here; it trains a RANDOM tiny model when model.path does not
# exist) when they are built; GENERATE jobs go to the simulated worker (tests/sim_worker) until
# the trainer worker samples — the jobs table printed at the end says which worker ran what.
#   scripts/run-local.sh [run.yaml]
#   TEMPER_DATA_DIR=...  where the coordinator keeps its PostgreSQL cluster (reused next time)
#   TEMPER_BUILD_DIR=... build tree to use (default build/dev)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-examples/local.yaml}"
./scripts/setup.sh

export CCACHE_DIR="${CCACHE_DIR:-$PWD/.cache/ccache}"
bin="${TEMPER_BUILD_DIR:-build/dev}"
cmake --preset dev -B "$bin" >/dev/null
targets=(temper temper-coordinator sim-worker)
for optional in temper-eval-worker temper-trainer-worker; do
  if cmake --build "$bin" --target help | grep -q "$optional"; then targets+=("$optional"); fi
done
cmake --build "$bin" -j"$(nproc)" --target "${targets[@]}"
logs=$(mktemp -d /tmp/temper-local-XXXXXX)
chmod 755 "$logs"
if [ "$(id -u)" -eq 0 ]; then default_data=/var/lib/temper; else default_data="${XDG_STATE_HOME:-$HOME/.local/state}/temper"; fi
data_dir="${TEMPER_DATA_DIR:-$default_data}"
mkdir -p "$data_dir"

pids=()
cleanup() {
  # Workers first (they drain), the coordinator last: a worker whose coordinator is gone keeps
  # retrying its calls for a while before it gives up.
  local workers=("${pids[@]:1}")
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${#pids[@]}" -gt 0 ]; then kill -TERM "${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true; fi
  echo "logs: $logs"
}
trap cleanup EXIT

echo "== starting the coordinator (embedded PostgreSQL in $data_dir/postgres)"
"$bin/services/coordinator/temper-coordinator" --data-dir "$data_dir" --listen 127.0.0.1:0 \
  --metrics-listen 127.0.0.1:0 --address-file "$logs/address" >"$logs/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [ -s "$logs/address" ] && break; sleep 0.5; done
[ -s "$logs/address" ] || { echo "coordinator did not start:"; tail -20 "$logs/coordinator.log"; exit 1; }
export TEMPER_COORDINATOR=$(cat "$logs/address")
echo "   coordinator at $TEMPER_COORDINATOR; $(grep -o 'metrics [0-9.:]*' "$logs/coordinator.log" | head -1)"

sim_kinds=generate
if [ -x "$bin/services/eval-worker/temper-eval-worker" ]; then
  echo "== starting the eval worker (real sandboxed evaluation)"
  "$bin/services/eval-worker/temper-eval-worker" --coordinator "$TEMPER_COORDINATOR" --metrics-listen '' \
    >"$logs/eval-worker.log" 2>&1 &
  pids+=($!)
else
  sim_kinds+=,eval
fi
if [ -x "$bin/services/trainer-worker/temper-trainer-worker" ]; then
  echo "== starting the trainer worker (libtorch on the CPU; a RANDOM tiny model when model.path is missing)"
  "$bin/services/trainer-worker/temper-trainer-worker" --coordinator "$TEMPER_COORDINATOR" \
    --checkpoint-dir "$data_dir/checkpoints" --tiny-model missing >"$logs/trainer-worker.log" 2>&1 &
  pids+=($!)
else
  sim_kinds+=,train
fi
echo "== starting a simulated worker for: $sim_kinds (no real worker for these yet)"
"$bin/tests/sim_worker/sim-worker" --coordinator "$TEMPER_COORDINATOR" --kinds "$sim_kinds" --job-ms 1500 \
  --name simulated --log "$logs/sim-worker.jsonl" >"$logs/sim-worker.log" 2>&1 &
pids+=($!)

echo "== submitting $config"
run_id=$("$bin/cli/temper" submit "$config" --idempotency-key "local-$(date +%s)" --json |
         python3 -c 'import json,sys; d=json.load(sys.stdin); r=d["runs"][0] if "runs" in d else d.get("run", d); print(r["id"])')
echo "   run $run_id"
status=0
"$bin/cli/temper" watch "$run_id" || status=$?
echo "== run $run_id"
"$bin/cli/temper" runs show "$run_id"
echo "== jobs"
"$bin/cli/temper" jobs --run "$run_id"
echo "== workers"
"$bin/cli/temper" workers
last_ckpt=$("$bin/cli/temper" checkpoints list "$run_id" --json |
            python3 -c 'import json,sys; d=json.load(sys.stdin); c=d.get("checkpoints", d if isinstance(d, list) else []); print(c[-1]["id"] if c else "")')
if [ -n "$last_ckpt" ]; then
  echo "== checkpoint lineage of $last_ckpt"
  "$bin/cli/temper" checkpoints lineage "$last_ckpt"
fi
echo "== run history in SQL (the run_summary view; see docs/sql.md)"
psql "host=$data_dir/postgres/run port=5432 dbname=temper user=temper" -X -c \
  "SELECT id, name, state, round, total_rounds, jobs_total, jobs_succeeded, attempts, latest_checkpoint_id, elapsed
     FROM run_summary ORDER BY id DESC LIMIT 5" || true
exit "$status"
