#!/usr/bin/env bash
# What a rescale costs on a real Flink 2.3, on each path the autoscaler drives (reactive mode, savepoint
# and resubmit, the adaptive scheduler in place): runs the end-to-end Flink loops RUNS times, one test at
# a time, and prints for each path and direction the median of
#   - seconds from the rule firing (the decision's creation) to the job fully running at the new
#     parallelism, as Flink's REST API shows it (every subtask RUNNING);
#   - the longest stretch in that time with no new record in the probe job's sink (the sink flushes at
#     each checkpoint, every second, so this is good to about a second).
# Each run also prints every measurement with the decision's steps. Needs scripts/setup.sh (Flink,
# Prometheus, Postgres). Usage: bench/flink/run.sh [RUNS]   (default 3; about 4 minutes per path per run)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
OUT=${CARGO_TARGET_DIR:-target}/bench-flink
mkdir -p "$OUT"
LINES="$OUT/measurements.txt"
: >"$LINES"

cargo nextest run -p e2e --test flink_loop --no-run
for run in $(seq 1 "$RUNS"); do
  echo "bench/flink: run $run of $RUNS" >&2
  cargo nextest run -p e2e --test flink_loop --no-capture --test-threads 1 2>&1 |
    tee "$OUT/run-$run.log" | grep '^flink-e2e .* -> ' | tee -a "$LINES" >&2 ||
    echo "bench/flink: run $run had a failure; its log is $OUT/run-$run.log" >&2
done

echo "| path | rescale | runs | rule → running at the new parallelism (median s) | longest output gap (median s) |"
echo "| --- | --- | --- | --- | --- |"
# flink-e2e <Path> scale-<up|down> <from> -> <to>: rule to running at parallelism <p> in <s> s, longest output gap <g> s; steps: ...
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    key = $2 " " $3
    for (i = 1; i <= NF; i++) {
      if ($i == "in" && $(i + 2) == "s,") to_running[key] = to_running[key] " " $(i + 1)
      if ($i == "gap") { g = $(i + 1); sub(/s;?$/, "", g); gap[key] = gap[key] " " g }
    }
    count[key]++
  }
  END {
    for (key in count) {
      split(key, k, " ")
      printf "| %s | %s | %d | %.1f | %.1f |\n", k[1], k[2], count[key], median(to_running[key]), median(gap[key])
    }
  }
' "$LINES" | sort
