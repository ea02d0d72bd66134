#!/usr/bin/env bash
# Instruction-count profile of the engine on a fixed workload, stable on a shared machine:
# Kafka (mock broker, 16 partitions) → pipeline-engine (default settings, under callgrind) →
# bench-bulk-sink. Prints instructions per record and the top self-cost functions.
# Usage: bench/engine/profile.sh [RECORDS] (default 100000). Needs valgrind and kcat.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECORDS=${1:-100000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-engine}
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release -q -p pipeline-engine -p test-support --bins --example bench-bulk-sink

# shellcheck source=bench/engine/lib.sh
. bench/engine/lib.sh
start_broker bench:16
gen_records "$RECORDS" | produce bench

"$BIN/examples/bench-bulk-sink" >"$WORK/sink" 2>/dev/null </dev/null &
PIDS+=($!)
SINK=$(first_line "$WORK/sink")
cat >"$WORK/engine.yaml" <<YAML
pipeline: {name: bench}
kafka: {brokers: '$BOOT', topics: [bench], group_id: profile}
elasticsearch: {urls: ['$SINK']}
index: {pattern: 'logs-{service}-%Y.%m.%d'}
transform: {timestamp: {source: ts}}
dead_letter: {kind: file, path: '$WORK/dead.jsonl'}
control: {listen: '127.0.0.1:0'}
metrics: {listen: '127.0.0.1:0'}
YAML
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --dump-instr=no \
  "$BIN/pipeline-engine" --config "$WORK/engine.yaml" 2>"$WORK/engine.log" &
EP=$!; PIDS+=("$EP")
count() { curl -s "$SINK/_count" | sed -E 's/.*"count":([0-9]+).*/\1/'; }
end=$(($(date +%s) + 1200))
until [ "$(count)" -ge "$RECORDS" ]; do
  [ "$(date +%s)" -lt "$end" ] || { echo "timed out" >&2; tail "$WORK/engine.log" >&2; exit 1; }
  sleep 1
done
kill -TERM "$EP"; wait "$EP" || true
TOTAL=$(callgrind_annotate "$WORK/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "records: $RECORDS; instructions (whole process, start-up and group join included): $TOTAL;"
echo "per record: $((TOTAL / RECORDS))"
echo "top self cost (callgrind_annotate):"
callgrind_annotate --inclusive=no "$WORK/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -"${TOP:-30}"
