# Shared by bench/engine/run.sh and bench/engine/profile.sh (sourced, not run): the benchmark's records,
# the broker, and producing into it. Expects $BIN (the release binaries) and $WORK (a scratch directory);
# `start_broker` sets $BOOT and appends the broker's pid to the caller's PIDS array.

# The first line of a file another process is writing, once there is one (20 s at most).
first_line() { for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.1; done; head -1 "$1"; }

start_broker() { # topic:partitions… → sets BOOT
  local args=()
  for topic in "$@"; do args+=(--topic "$topic"); done
  "$BIN/kafka-mock-broker" "${args[@]}" >"$WORK/broker" </dev/null &
  PIDS+=($!)
  BOOT=$(first_line "$WORK/broker")
}

gen_records() { # count → stdout: ~239-byte JSON log lines, like the talk's (85 MB/s at 375k records/s)
  python3 - "$1" <<'PY'
import sys
svcs = ["checkout", "payments", "search", "auth"]
w = sys.stdout.write
for i in range(int(sys.argv[1])):
    w('{"ts":"2024-05-01T12:%02d:%02d.%03dZ","level":"info","service":"%s","host":"web-%02d","trace_id":"%016x","status":200,"latency_ms":%d,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","msg":"GET /api/v1/items/%d handled in time"}\n'
      % (i // 60000 % 60, i // 1000 % 60, i % 1000, svcs[i % 4], i % 32, i * 2654435761 % (1 << 64), i % 997, i))
PY
}

produce() { # topic [kcat options…] < lines; fails on any delivery error
  local topic=$1; shift
  kcat -P -b "$BOOT" -t "$topic" -X linger.ms=20 -X batch.num.messages=10000 \
    -X sticky.partitioning.linger.ms=0 -X queue.buffering.max.messages=1000000 "$@" 2>"$WORK/produce.err"
  if grep -qi 'fail\|error' "$WORK/produce.err"; then cat "$WORK/produce.err" >&2; exit 1; fi
}

held() { kcat -C -b "$BOOT" -t "$1" -o beginning -e -q -f '%o\n' | wc -l; }
