#!/usr/bin/env bash
# Benchmark of the pipeline engine, side by side in one run, all on loopback:
#   (a) kcat consume-only on the same broker: the ceiling the broker allows;
#   (b) the engine (default settings), Kafka → bench-bulk-sink, a multi-threaded `_bulk` sink that
#       answers per item like Elasticsearch but checks documents only after the run, so that it does
#       not set the pace: the engine's own ceiling, with re-sends per record and the verification;
#   (b') the engine (default settings), Kafka → contract-faithful Elasticsearch test server (which
#       parses and maps every document under one lock, and so sets the pace);
#   (c) rsyslog doing the same job: imkafka → mmjsonparse → omelasticsearch, documents with
#       @timestamp, routed to logs-<service>-<date> like the engine, against the same kind of server;
#   (d) the engine's resident memory (default settings) while Elasticsearch stalls for minutes with
#       millions of records waiting in the topic.
# Usage: bench/engine/run.sh [RECORDS] [STALL_SECONDS] [STALL_RECORDS]
#        (defaults: 600000, 180, 3000000; STALL_SECONDS=0 skips (d))
# Environment: RSYSLOG=0 skips (c) and (c'); PROFILE=1 records (b) with `perf record -g` and prints
# the top entries of the profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECORDS=${1:-600000}
STALL_SECS=${2:-180}
STALL_RECORDS=${3:-3000000}
# librdkafka's mock cluster keeps at most 5 MiB of record batches per partition and silently drops
# the oldest beyond that. So records are spread evenly (no sticky partitioning) over 64 partitions:
# 600k uncompressed ~ 2.7 MiB each. The stall topic is produced lz4-compressed, as log shippers
# usually do, so that millions of records fit (3M ~ 13.6 MiB per partition before compression).
# (lz4 rather than zstd only so that figures stay comparable with earlier runs; zstd is read too.)
PARTITIONS=64
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-engine}
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

need=()
wanted=(kcat bc curl python3)
[ "${RSYSLOG:-1}" = 1 ] && wanted+=(rsyslog rsyslog-kafka rsyslog-elasticsearch)
[ "${PROFILE:-0}" = 1 ] && wanted+=(linux-perf)
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -q -p pipeline-engine -p test-support --bins --example bench-bulk-sink

TICK=$(getconf CLK_TCK)
cpu_secs() { awk -v t="$TICK" '{printf "%.3f", ($14+$15)/t}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { echo "scale=1; $1 / 1024" | bc; }
now() { date +%s.%N; }
es_count() { curl -s "$1/_count" | sed -E 's/.*"count":([0-9]+).*/\1/'; }
start_es() { # name → URL in ES, pid in ES_PID
  "$BIN/es-test-server" --no-sources >"$WORK/es.$1" 2>/dev/null </dev/null &
  ES_PID=$!; PIDS+=("$ES_PID")
  ES=$(first_line "$WORK/es.$1")
}
wait_count() { # url target timeout_s; returns 1 on timeout
  local end=$(($(date +%s) + $3))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ "$(es_count "$1")" -ge "$2" ] && return 0; sleep 0.05
  done
  return 1
}
# shellcheck source=bench/engine/lib.sh
. bench/engine/lib.sh
start_broker "bench:$PARTITIONS" "stall:$PARTITIONS"

gen_records "$RECORDS" >"$WORK/records"
AVG=$(awk '{s+=length($0)} END {printf "%d", s/NR}' "$WORK/records")
produce bench <"$WORK/records"
HELD=$(held bench)
if [ "$HELD" -ne "$RECORDS" ]; then echo "the broker holds $HELD of $RECORDS records" >&2; exit 1; fi
echo "records: $RECORDS (all held by the broker), average $AVG bytes, $PARTITIONS partitions, broker $BOOT"

# (a) kcat consume-only.
read -r KW KCPU < <(bench/engine/cputime.sh kcat -C -b "$BOOT" -t bench -o beginning -e -q -f '%o\n' -X fetch.wait.max.ms=10)

# (b) the engine, default settings, → bench-bulk-sink.
"$BIN/examples/bench-bulk-sink" >"$WORK/sink" 2>/dev/null </dev/null &
SINK_PID=$!; PIDS+=("$SINK_PID")
for _ in $(seq 100); do [ -s "$WORK/sink" ] && break; sleep 0.1; done
SINK=$(head -1 "$WORK/sink")
cat >"$WORK/sink.yaml" <<YAML
pipeline: {name: bench}
kafka: {brokers: '$BOOT', topics: [bench], group_id: bench-engine-sink}
elasticsearch: {urls: ['$SINK']}
index: {pattern: 'logs-{service}-%Y.%m.%d'}
transform: {timestamp: {source: ts}}
dead_letter: {kind: file, path: '$WORK/dead-sink.jsonl'}
control: {listen: '127.0.0.1:0'}
metrics: {listen: '127.0.0.1:0'}
YAML
T0=$(now)
RUST_LOG=info "$BIN/pipeline-engine" --config "$WORK/sink.yaml" 2>"$WORK/engine-sink.log" &
BP=$!; PIDS+=("$BP")
if [ "${PROFILE:-0}" = 1 ]; then
  perf record -F 999 -g -p "$BP" -o "$WORK/perf.data" 2>/dev/null &
  PERF=$!
fi
# Start-up and the group join are part of the wall time; also time from the first document indexed.
wait_count "$SINK" 1 600 || { echo "engine → bench sink: nothing arrived" >&2; exit 1; }
T1=$(now)
wait_count "$SINK" "$RECORDS" 600 || { echo "engine → bench sink: timed out" >&2; exit 1; }
BW=$(echo "$(now) - $T0" | bc); BW1=$(echo "$(now) - $T1" | bc); BCPU=$(cpu_secs "$BP"); BHWM=$(kib "$BP" VmHWM)
BSCPU=$(cpu_secs "$SINK_PID")
if [ "${PROFILE:-0}" = 1 ]; then kill -INT "$PERF"; wait "$PERF" || true; fi
BADDR=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/engine-sink.log" | grep -o 'metrics_addr=[0-9.:]*' | head -1 | cut -d= -f2)
BMETRICS=$(curl -s "http://$BADDR/metrics")
BOUT=$(echo "$BMETRICS" | awk '/^engine_records_out_total/ {print $2}')
BRESENT=$(echo "$BMETRICS" | awk '/^engine_records_resent_total/ {print $2}')
kill -TERM "$BP"; wait "$BP" || true
VERIFY=$(curl -s "$SINK/_verify")

# (b') the engine, default settings, → Elasticsearch test server.
start_es engine; ES_ENGINE=$ES
cat >"$WORK/engine.yaml" <<YAML
pipeline: {name: bench}
kafka: {brokers: '$BOOT', topics: [bench], group_id: bench-engine}
elasticsearch: {urls: ['$ES']}
index: {pattern: 'logs-{service}-%Y.%m.%d'}
transform: {timestamp: {source: ts}}
dead_letter: {kind: file, path: '$WORK/dead.jsonl'}
control: {listen: '127.0.0.1:0'}
metrics: {listen: '127.0.0.1:0'}
YAML
T0=$(now)
RUST_LOG=warn "$BIN/pipeline-engine" --config "$WORK/engine.yaml" 2>"$WORK/engine.log" &
EP=$!; PIDS+=("$EP")
wait_count "$ES" "$RECORDS" 600 || { echo "engine: timed out" >&2; exit 1; }
EW=$(echo "$(now) - $T0" | bc); ECPU=$(cpu_secs "$EP"); EHWM=$(kib "$EP" VmHWM)
ESCPU=$(cpu_secs "$ES_PID")
kill -TERM "$EP"; wait "$EP" || true

# (c) rsyslog, same records, same job, same kind of sink. imkafka has one consumer thread; the
# action queue has two workers sending bulk requests of up to 1000 documents (the engine's default
# batch) or 5 MB.
cat >"$WORK/rsyslog.conf.in" <<CONF
global(workDirectory="$WORK")
module(load="imkafka")
module(load="mmjsonparse")
module(load="omelasticsearch")
template(name="doc" type="list") {
  constant(value="{\"@timestamp\":\"") property(name="\$!ts") constant(value="\",")
  property(name="\$!all-json" position.from="2")
}
template(name="index" type="list") {
  constant(value="logs-") property(name="\$!service") constant(value="-")
  property(name="\$!ts" position.from="1" position.to="4") constant(value=".")
  property(name="\$!ts" position.from="6" position.to="7") constant(value=".")
  property(name="\$!ts" position.from="9" position.to="10")
}
input(type="imkafka" topic="bench" broker=["$BOOT"] consumergroup="bench-rsyslog"
      confParam=["auto.offset.reset=smallest", "fetch.wait.max.ms=10"] ruleset="es")
ruleset(name="es" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="1000" queue.workerThreads="2") {
  action(type="mmjsonparse" cookie="" useRawMsg="on")
  action(type="omelasticsearch" server="127.0.0.1" serverport="@PORT@" template="doc"
         searchIndex="index" dynSearchIndex="on" bulkmode="on" maxbytes="5m"
         action.resumeRetryCount="-1" errorFile="$WORK/rsyslog-errors.json")
}
CONF
run_rsyslog() { # name config → RUN_W (wall s), RUN_CPU, RUN_SINK (sink CPU s)
  start_es "$1"
  sed "s/@PORT@/${ES##*:}/" "$2" >"$WORK/$1.conf"
  local t0 p; t0=$(now)
  rsyslogd -n -f "$WORK/$1.conf" -i "$WORK/$1.pid" 2>"$WORK/$1.log" &
  p=$!; PIDS+=("$p")
  wait_count "$ES" "$RECORDS" 600 || { echo "$1: timed out" >&2; exit 1; }
  RUN_W=$(echo "$(now) - $t0" | bc); RUN_CPU=$(cpu_secs "$p"); RUN_SINK=$(cpu_secs "$ES_PID")
  kill -TERM "$p"; wait "$p" || true
}
if [ "${RSYSLOG:-1}" = 1 ]; then
run_rsyslog rsyslog "$WORK/rsyslog.conf.in"
RW=$RUN_W; RCPU=$RUN_CPU; RSCPU=$RUN_SINK
# (c') the lighter job rsyslog was measured with before: raw lines to one index, no parsing.
sed -e 's/consumergroup="bench-rsyslog"/consumergroup="bench-rsyslog-raw"/' \
    -e 's/template="doc"/template="raw"/' -e 's/searchIndex="index" dynSearchIndex="on"/searchIndex="logs-rsyslog"/' \
    -e '/action(type="mmjsonparse"/d' -e 's/^template(name="doc" type="list") {/template(name="raw" type="string" string="%rawmsg%")\ntemplate(name="doc" type="list") {/' \
    "$WORK/rsyslog.conf.in" >"$WORK/rsyslog-raw.conf.in"
run_rsyslog rsyslog-raw "$WORK/rsyslog-raw.conf.in"
PW=$RUN_W; PCPU=$RUN_CPU; PSCPU=$RUN_SINK
fi

r() { printf '%.0f' "$(echo "scale=3; $1" | bc)"; }
f() { printf '%.2f' "$1"; }
echo
echo "| run | wall s | records/s | CPU s | records per CPU-second | sink CPU s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
echo "| kcat consume-only | $(f "$KW") | $(r "$RECORDS / $KW") | $(f "$KCPU") | $(r "$RECORDS / $KCPU") | |"
echo "| pipeline-engine → bench-bulk-sink | $(f "$BW") | $(r "$RECORDS / $BW") | $(f "$BCPU") | $(r "$RECORDS / $BCPU") | $(f "$BSCPU") |"
echo "| pipeline-engine → ES test server | $(f "$EW") | $(r "$RECORDS / $EW") | $(f "$ECPU") | $(r "$RECORDS / $ECPU") | $(f "$ESCPU") |"
if [ "${RSYSLOG:-1}" = 1 ]; then
echo "| rsyslog imkafka → mmjsonparse → omelasticsearch | $(f "$RW") | $(r "$RECORDS / $RW") | $(f "$RCPU") | $(r "$RECORDS / $RCPU") | $(f "$RSCPU") |"
echo "| rsyslog, raw lines to one index (no parsing; less work) | $(f "$PW") | $(r "$RECORDS / $PW") | $(f "$PCPU") | $(r "$RECORDS / $PCPU") | $(f "$PSCPU") |"
fi
echo
echo "engine (bench sink) / kcat records/s: $(f "$(echo "scale=4; $KW / $BW" | bc)")"
echo "engine (bench sink) records/s from the first document indexed: $(r "$RECORDS / $BW1") ($(f "$BW1") s; / kcat: $(f "$(echo "scale=4; $KW / $BW1" | bc)"))"
echo "engine (bench sink) / kcat records per CPU-second: $(f "$(echo "scale=4; $KCPU / $BCPU" | bc)")"
echo "engine (bench sink) re-sends per record: $(echo "scale=4; ${BRESENT:-0} / ${BOUT:-1}" | bc) (${BRESENT:-0} of ${BOUT:-0})"
echo "bench sink verification after the run: $VERIFY"
echo "engine (bench sink) peak RSS: $(mib "$BHWM") MiB"
echo "engine (ES test server) / kcat records/s: $(f "$(echo "scale=4; $KW / $EW" | bc)")"
echo "engine (ES test server) / kcat records per CPU-second: $(f "$(echo "scale=4; $KCPU / $ECPU" | bc)")"
if [ "${RSYSLOG:-1}" = 1 ]; then
echo "engine / rsyslog records/s: $(f "$(echo "scale=4; $RW / $EW" | bc)")"
echo "engine / rsyslog records per CPU-second: $(f "$(echo "scale=4; $RCPU / $ECPU" | bc)")"
echo "engine / rsyslog raw (lighter job) records per CPU-second: $(f "$(echo "scale=4; $PCPU / $ECPU" | bc)")"
fi
echo "engine peak RSS during the throughput run (ES test server): $(mib "$EHWM") MiB"
if [ "${PROFILE:-0}" = 1 ]; then
  echo
  echo "profile of the engine → bench-bulk-sink run (perf, self time, top entries):"
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]+\.[0-9]+%' | head -25
fi

[ "$STALL_SECS" -gt 0 ] || exit 0
# (d) memory while Elasticsearch stalls: default settings, millions of records waiting.
T0=$(now)
gen_records "$STALL_RECORDS" | produce stall -z lz4
STALLED=$(held stall)
if [ "$STALLED" -ne "$STALL_RECORDS" ]; then echo "the broker holds $STALLED of $STALL_RECORDS stall records" >&2; exit 1; fi
echo
echo "stall topic: $STALLED records held (lz4, produced and counted in $(echo "$(now) - $T0" | bc) s)"
start_es stall; ES3=$ES
curl -s -X PUT -H 'content-type: application/json' -d '{"stalled":true}' "$ES3/_test/faults" >/dev/null
sed -e "s#topics: \[bench\]#topics: [stall]#" -e "s#bench-engine#bench-stall#" -e "s#'$ES_ENGINE'#'$ES3'#" "$WORK/engine.yaml" >"$WORK/stall.yaml"
RUST_LOG=info "$BIN/pipeline-engine" --config "$WORK/stall.yaml" 2>"$WORK/stall.log" &
SP=$!; PIDS+=("$SP")
MAXRSS=0
END=$(($(date +%s) + STALL_SECS))
while [ "$(date +%s)" -lt "$END" ]; do
  R=$(kib "$SP" VmRSS); [ "$R" -gt "$MAXRSS" ] && MAXRSS=$R
  sleep 1
done
SRSS=$(kib "$SP" VmRSS); SHWM=$(kib "$SP" VmHWM)
MADDR=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/stall.log" | grep -o 'metrics_addr=[0-9.:]*' | head -1 | cut -d= -f2)
CONSUMED=$(curl -s "http://$MADDR/metrics" | awk '/^engine_records_in_total/ {print $2}')
INDEXED=$(es_count "$ES3")
curl -s -X PUT -H 'content-type: application/json' -d '{"stalled":false}' "$ES3/_test/faults" >/dev/null
T0=$(now)
CATCHUP_LIMIT=${CATCHUP_SECS:-240}
if wait_count "$ES3" "$STALLED" "$CATCHUP_LIMIT"; then
  CATCHUP="all $STALLED indexed $(echo "$(now) - $T0" | bc) s after the stall ended"
else
  CATCHUP="$(es_count "$ES3") of $STALLED indexed within ${CATCHUP_LIMIT} s after the stall ended"
fi
SHWM2=$(kib "$SP" VmHWM)
kill -TERM "$SP"; wait "$SP" || true
echo "engine (default settings) during ${STALL_SECS} s of Elasticsearch stall with $STALLED records in the topic:"
echo "  consumed $CONSUMED, indexed $INDEXED, so $((STALLED - INDEXED)) waiting"
echo "  RSS at the end $(mib "$SRSS") MiB, highest sampled $(mib "$MAXRSS") MiB, VmHWM $(mib "$SHWM") MiB"
echo "  catch-up: $CATCHUP; VmHWM including the catch-up $(mib "$SHWM2") MiB"
