#!/usr/bin/env bash
# The policy benchmark: every shipped trace (services/traces/*.csv) through `autoscaler simulate` over
# several seeds, and the comparison table (medians over the seeds) written into README.md between the
# `<!-- simulate:begin -->` and `<!-- simulate:end -->` markers. Plots of the first seed go to
# target/simulate/<trace>.svg, the JSON reports to target/simulate/<trace>.json.
# Usage: bench/simulate/run.sh [SEEDS]   (default 5; a debug build is enough: a run takes about a second)
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${1:-5}
README=README.md
grep -q '<!-- simulate:begin -->' "$README" && grep -q '<!-- simulate:end -->' "$README" || {
  echo "error: $README has no <!-- simulate:begin --> / <!-- simulate:end --> markers" >&2
  exit 1
}
command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 1; }

cargo build -q -p autoscaler
BIN=${CARGO_TARGET_DIR:-target}/debug/autoscaler
OUT=${CARGO_TARGET_DIR:-target}/simulate
mkdir -p "$OUT"
TABLE=$(mktemp)
trap 'rm -f "$TABLE"' EXIT

TRACES=(step daily spike backlog sink-cap sublinear seasonal seasonal-peaks ramp)
# The traces of more than a day also run ours with the predictive rule on (`ours+predictive`).
PREDICTIVE=" seasonal seasonal-peaks "
for name in "${TRACES[@]}"; do
  extra=()
  [[ $PREDICTIVE == *" $name "* ]] && extra=(--predictive)
  "$BIN" simulate --trace "services/traces/$name.csv" --seeds "$SEEDS" --json "${extra[@]}" >"$OUT/$name.json"
  "$BIN" simulate --trace "services/traces/$name.csv" --plot "$OUT/$name.svg" "${extra[@]}" >/dev/null
done

# One decimal at most; "-" where a figure does not apply (a trace without load steps).
JQ_FMT='def f: if . == null then "-" elif (. * 10 | round) % 10 == 0 then (. | round | tostring) else ((. * 10 | round) / 10 | tostring) end;
        def pct: if . == null then "-" else ((. * 1000 | round) / 10 | tostring) end;'
{
  first="$OUT/${TRACES[0]}.json"
  jq -r '"Medians over \(.seeds | length) seeds (\(.seeds[0])..=\(.seeds[-1])); scrape every \(.settings.scrape_interval_seconds) s, actuation delay \(.settings.actuation_delay_seconds) s, restart \(.settings.restart_seconds) s, metric noise \(.settings.noise * 100) %, \(.model.capacity_per_worker) records/s per worker, \(.model.partitions) partitions unless the trace says otherwise. Written by `bench/simulate/run.sh` at commit '"$(git rev-parse --short HEAD)"'."' "$first"
  echo
  echo "| trace | policy | actions | reversals (within cooldown) | max actions after a step | lag > 5 min, min | on day 2, min | peak lag, s | longest drain, min | replica-hours | vs oracle | over % | under % |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for name in "${TRACES[@]}"; do
    jq -r --arg trace "$name" "$JQ_FMT"'
      (.policies[] | select(.policy == "oracle") | .median.replica_hours) as $oracle
      | .policies[]
      | .median as $m
      | "| \($trace) | \(.policy) | \($m.actions | f) | \($m.reversals | f) (\($m.quick_reversals | f)) | \($m.max_settle_actions | f) | \($m.lag_over_minutes | f) | \($m.lag_over_minutes_day_2 | f) | \($m.peak_lag_seconds | f) | \($m.longest_drain_minutes | f) | \($m.replica_hours | f) | \(if $oracle > 0 then (($m.replica_hours / $oracle - 1) * 100 | round | tostring) + " %" else "-" end) | \($m.over_provisioning | pct) | \($m.under_provisioning | pct) |"' \
      "$OUT/$name.json"
  done
  echo
  echo "The goals for ours (issues 7 and 16), trace by trace; the replica-hour bound is the trace's own \`# goal:\` line:"
  echo
  echo "| trace | settles in ≤ 2 actions | no reversal within cooldown | lag > 5 min ≤ oracle + delay + restart | replica-hours ≤ oracle + bound | never dominated | beats HPA | beats KEDA |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for name in "${TRACES[@]}"; do
    jq -r --arg trace "$name" '
      def mark: if .met == null then "n/a" elif .met then "met" else "**short**: " + .detail end;
      "| \($trace) | " + ([.goals[] | mark] | join(" | ")) + " |"' "$OUT/$name.json"
  done
} >"$TABLE"

awk -v table="$TABLE" '
  BEGIN { while ((getline line < table) > 0) block = block line "\n" }
  /<!-- simulate:begin -->/ { print; printf "%s", block; skip = 1; next }
  /<!-- simulate:end -->/ { skip = 0 }
  !skip { print }
' "$README" >"$README.tmp" && mv "$README.tmp" "$README"
# Cost against lag, each policy a point per trace: who dominates whom at a glance (docs/simulate-cost-vs-lag.svg).
reports=()
for name in "${TRACES[@]}"; do reports+=("$OUT/$name.json"); done
cargo run -q -p autoscaler --example cost_vs_lag -- docs/simulate-cost-vs-lag.svg "${reports[@]}"
echo "wrote the table into $README, the cost-against-lag plot into docs/simulate-cost-vs-lag.svg; plots and JSON in $OUT/"
