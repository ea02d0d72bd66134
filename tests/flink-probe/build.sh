#!/usr/bin/env bash
# Builds the probe job's jar with javac and jar only, against a Flink distribution's lib/.
# usage: build.sh OUT_JAR     (FLINK_HOME from AUTOSCALER_FLINK_DIST, default /opt/flink-2.3.0)
# Skips the build when OUT_JAR is newer than every source (and this script). The jar is written
# to a temporary name and renamed, so concurrent builds and readers never see a partial jar.
set -euo pipefail
out=${1:?usage: build.sh OUT_JAR}
here=$(cd "$(dirname "$0")" && pwd)
flink=${AUTOSCALER_FLINK_DIST:-/opt/flink-2.3.0}
sources=("$here"/src/autoscaler/probe/*.java)

if [[ -f $out ]]; then
  stale=
  for f in "${sources[@]}" "$here/build.sh"; do [[ $f -nt $out ]] && stale=1; done
  [[ -z $stale ]] && { echo "$out"; exit 0; }
fi
[[ -d $flink/lib ]] || { echo "build.sh: no lib/ in $flink (set AUTOSCALER_FLINK_DIST)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
javac --release 11 -Xlint:all,-serial,-options -cp "$flink/lib/*" -d "$work/classes" "${sources[@]}"
tmp="$out.$$.tmp"
jar --create --file "$tmp" --main-class autoscaler.probe.ProbeJob -C "$work/classes" .
mv -f "$tmp" "$out"
echo "$out"
