#!/usr/bin/env bash
# Benchmark of the pipeline engine, side by side in one run, all on loopback:
#   (a) kcat consume-only on the same broker: the ceiling the broker allows;
#   (b) the engine, Kafka → contract-faithful Elasticsearch test server;
#   (c) rsyslog imkafka → omelasticsearch against the same kind of test server;
#   (d) the engine's resident memory while Elasticsearch stalls with the topic full.
# Usage: bench/engine/run.sh [RECORDS] [STALL_SECONDS]   (defaults: 600000, 90)
set -euo pipefail
cd "$(dirname "$0")/../.."
RECORDS=${1:-600000}
STALL_SECS=${2:-90}
# librdkafka's mock cluster keeps only part of a large produce run (tens of MB), so the records are
# spread over many partitions and every run targets the count it really holds.
PARTITIONS=64
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-engine}
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

need=()
for p in kcat rsyslog rsyslog-kafka rsyslog-elasticsearch bc curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release -q -p pipeline-engine -p test-support --bins

TICK=$(getconf CLK_TCK)
cpu_secs() { awk -v t="$TICK" '{printf "%.3f", ($14+$15)/t}' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
es_count() { curl -s "$1/_count" | sed -E 's/.*"count":([0-9]+).*/\1/'; }
start_es() { # prints URL; pid in ES_PID
  "$BIN/es-test-server" --no-sources >"$WORK/es.$1" 2>/dev/null &
  ES_PID=$!; PIDS+=("$ES_PID")
  for _ in $(seq 100); do [ -s "$WORK/es.$1" ] && break; sleep 0.1; done
  head -1 "$WORK/es.$1"
}
wait_count() { # url target timeout_s → seconds waited
  local t0; t0=$(now)
  for _ in $(seq $(( $3 * 20 ))); do
    [ "$(es_count "$1")" -ge "$2" ] && break; sleep 0.05
  done
  echo "$(now) - $t0" | bc
}

"$BIN/kafka-mock-broker" --topic "bench:$PARTITIONS" --topic "stall:$PARTITIONS" >"$WORK/broker" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/broker" ] && break; sleep 0.1; done
BOOT=$(head -1 "$WORK/broker")

# ~230-byte JSON log lines, like the talk's (85 MB/s at 375k records/s).
python3 - "$RECORDS" >"$WORK/records" <<'PY'
import sys
svcs = ["checkout", "payments", "search", "auth"]
for i in range(int(sys.argv[1])):
    print('{"ts":"2024-05-01T12:%02d:%02d.%03dZ","level":"info","service":"%s","host":"web-%02d","trace_id":"%016x","status":200,"latency_ms":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","msg":"GET /api/v1/items/%d handled in time"}'
          % (i // 60000 % 60, i // 1000 % 60, i % 1000, svcs[i % 4], i % 32, i * 2654435761 % (1 << 64), i % 997, i))
PY
AVG=$(awk '{s+=length($0)} END {printf "%d", s/NR}' "$WORK/records")
kcat -P -b "$BOOT" -t bench -l -X linger.ms=20 -X batch.num.messages=10000 "$WORK/records"
echo "records: $RECORDS, average $AVG bytes, $PARTITIONS partitions, broker $BOOT"

# (a) kcat consume-only.
read -r KW KCPU < <(bench/engine/cputime.sh kcat -C -b "$BOOT" -t bench -o beginning -e -q -f '%o\n' -X fetch.wait.max.ms=10)
# The count the broker really holds (and kcat read) is the target for every run.
HELD=$(kcat -C -b "$BOOT" -t bench -o beginning -e -q -f '%o\n' | wc -l)
if [ "$HELD" -ne "$RECORDS" ]; then echo "broker holds $HELD of $RECORDS records; using $HELD"; RECORDS=$HELD; fi

# (b) the engine, default settings.
ES=$(start_es engine)
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
wait_count "$ES" "$RECORDS" 300 >/dev/null
EW=$(echo "$(now) - $T0" | bc); ECPU=$(cpu_secs "$EP"); EHWM=$(hwm_mib "$EP")
kill -TERM "$EP"; wait "$EP" || true

# (c) rsyslog imkafka → omelasticsearch, same test server kind, same records.
ES2=$(start_es rsyslog)
ESPORT=${ES2##*:}
cat >"$WORK/rsyslog.conf" <<CONF
global(workDirectory="$WORK")
module(load="imkafka")
module(load="omelasticsearch")
template(name="raw" type="string" string="%rawmsg%")
input(type="imkafka" topic="bench" broker=["$BOOT"] consumergroup="bench-rsyslog" confParam=["auto.offset.reset=smallest"] ruleset="es")
ruleset(name="es" queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="1000" queue.workerThreads="2") {
  action(type="omelasticsearch" server="127.0.0.1" serverport="$ESPORT" template="raw" searchIndex="logs-rsyslog"
         bulkmode="on" maxbytes="5m" action.resumeRetryCount="-1" errorFile="$WORK/rsyslog-errors.json")
}
CONF
T0=$(now)
rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" 2>"$WORK/rsyslog.log" &
RP=$!; PIDS+=("$RP")
wait_count "$ES2" "$RECORDS" 240 >/dev/null
RW=$(echo "$(now) - $T0" | bc); RCPU=$(cpu_secs "$RP"); RGOT=$(es_count "$ES2")
kill -TERM "$RP"; wait "$RP" || true

# (d) memory while Elasticsearch stalls, default settings, the whole record set waiting.
kcat -P -b "$BOOT" -t stall -l -X linger.ms=20 -X batch.num.messages=10000 "$WORK/records"
STALLED=$(kcat -C -b "$BOOT" -t stall -o beginning -e -q -f '%o\n' | wc -l)
ES3=$(start_es stall)
curl -s -X PUT -H 'content-type: application/json' -d '{"stalled":true}' "$ES3/_test/faults" >/dev/null
sed -e "s#topics: \[bench\]#topics: [stall]#" -e "s#bench-engine#bench-stall#" -e "s#'$ES'#'$ES3'#" "$WORK/engine.yaml" >"$WORK/stall.yaml"
RUST_LOG=warn "$BIN/pipeline-engine" --config "$WORK/stall.yaml" 2>"$WORK/stall.log" &
SP=$!; PIDS+=("$SP")
sleep "$STALL_SECS"
SRSS=$(rss_mib "$SP"); SHWM=$(hwm_mib "$SP")
curl -s -X PUT -H 'content-type: application/json' -d '{"stalled":false}' "$ES3/_test/faults" >/dev/null
wait_count "$ES3" "$STALLED" 300 >/dev/null
SHWM2=$(hwm_mib "$SP")
kill -TERM "$SP"; wait "$SP" || true

r() { echo "scale=1; $1" | bc; }
echo
echo "| run | wall s | records/s | CPU s | records per CPU-second |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| kcat consume-only | $KW | $(r "$RECORDS / $KW") | $KCPU | $(r "$RECORDS / $KCPU") |"
echo "| pipeline-engine → ES test server | $EW | $(r "$RECORDS / $EW") | $ECPU | $(r "$RECORDS / $ECPU") |"
echo "| rsyslog imkafka → omelasticsearch ($RGOT indexed) | $RW | $(r "$RGOT / $RW") | $RCPU | $(r "$RGOT / $RCPU") |"
echo
echo "engine / kcat records/s: $(echo "scale=3; $KW / $EW" | bc)"
echo "engine / kcat records per CPU-second: $(echo "scale=3; $KCPU / $ECPU" | bc)"
echo "engine / rsyslog records/s: $(echo "scale=2; ($RECORDS / $EW) / ($RGOT / $RW)" | bc)"
echo "engine / rsyslog records per CPU-second: $(echo "scale=2; ($RECORDS / $ECPU) / ($RGOT / $RCPU)" | bc)"
echo "engine peak RSS during the throughput run: $EHWM MiB"
echo "engine RSS after ${STALL_SECS}s of Elasticsearch stall with $STALLED records waiting: $SRSS MiB (peak $SHWM MiB; peak $SHWM2 MiB including the catch-up)"
