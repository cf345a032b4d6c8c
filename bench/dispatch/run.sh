#!/usr/bin/env bash
# Runs the dispatch benchmark (release build) and writes its section of docs/benchmarks.md.
#   bench/dispatch/run.sh [extra dispatch_bench flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset release >/dev/null
cmake --build build/release --target dispatch_bench >/dev/null
# Saturated (workers complete at once), then 200 workers that each work 90 ms per job: an offered
# load of about 2,000 jobs/s, where acquire latency is what a worker actually waits.
table=$(build/release/bench/dispatch/dispatch_bench --workers 1,10,50,200,500 --jobs 4000 "$@")
loaded=$(build/release/bench/dispatch/dispatch_bench --workers 200 --jobs 6000 --job-ms 90 "$@" | tail -1)
table="$table
$loaded"
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
section=$(cat <<MD
<!-- dispatch:begin -->
## Job dispatch (issue 3)

End to end through gRPC: an in-process coordinator on a fresh PostgreSQL 15 cluster (fsync on,
synchronous_commit on), W worker threads in the same process each long-polling \`AcquireJob\`
and completing every job at once with \`CompleteJob\` (fenced; its run event is written in the same
transaction). Baseline in the same run, on the same database: min(W, 150) threads each with its own
connection running \`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)\` then a
completing \`UPDATE\`, two transactions per job. Acquire latency is the time of one \`AcquireJob\`
call (temper) or of the leasing transaction (raw). Jobs belong to closed runs of 50 jobs each,
so only dispatch is measured.

Machine: ${machine}. Measured $(date -u +%Y-%m-%d) with \`bench/dispatch/run.sh $*\`; load
average when it finished: $(cut -d' ' -f1-3 /proc/loadavg) (other work shares these 2 cores).

${table}

Target (DESIGN.md): ≥ 2,000 jobs/s and p99 acquire < 25 ms with 200 workers.
<!-- dispatch:end -->
MD
)
python3 - "$section" <<'PY'
import re, sys, pathlib
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section says the machine, the command and the baseline it was compared with in the same run.\n"
section = sys.argv[1]
if "<!-- dispatch:begin -->" in text:
    text = re.sub(r"<!-- dispatch:begin -->.*?<!-- dispatch:end -->", lambda m: section, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + section + "\n"
path.write_text(text)
PY
echo "$table"
