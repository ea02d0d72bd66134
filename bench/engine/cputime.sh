#!/usr/bin/env bash
# Runs a command and prints "<wall seconds> <CPU seconds (user + system) of the command>".
set -euo pipefail
tmp=$(mktemp)
s=$(date +%s.%N)
"$@" >/dev/null
e=$(date +%s.%N)
times >"$tmp" # a builtin redirected, not a subshell: it sees this shell's children
cpu=$(tail -1 "$tmp" | sed -E 's/([0-9]+)m([0-9.]+)s/\1 \2/g' | awk '{print $1*60+$2+$3*60+$4}')
rm -f "$tmp"
echo "$(echo "$e - $s" | bc) $cpu"
