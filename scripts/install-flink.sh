#!/usr/bin/env bash
# Installs Apache Flink 2.3.0 for the tests that run a real Flink, from the package registry's wheels:
# `apache-flink-libraries` holds the distribution's lib/, opt/ and plugins/ (metrics-prometheus among
# them), `apache-flink` its bin/ and conf/. Neither is pip-installed (Python is not needed to run
# Flink): both are unzipped into one FLINK_HOME. Pinned by version and sha256, cached, idempotent.
#
#   AUTOSCALER_FLINK_DIST  where Flink goes (default /opt/flink-2.3.0); the tests read the same variable
#   AUTOSCALER_CACHE       where the downloaded wheels are kept (default /var/cache/autoscaler)
set -euo pipefail

version=2.3.0
dist=${AUTOSCALER_FLINK_DIST:-/opt/flink-$version}
cache=${AUTOSCALER_CACHE:-/var/cache/autoscaler}/flink-$version
# The `apache-flink` wheel is built per CPython version; bin/ and conf/ are the same in each, so one is
# pinned whatever Python this machine has.
wheels=(
  "apache_flink_libraries-$version-py2.py3-none-any.whl 38ece876553286b3a285cf344c2d2038f8a7ca10da5df54d5107250386d64151"
  "apache_flink-$version-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64.manylinux2014_x86_64.whl 0e5f612704de1610b153e919c0564b62ad513cddfcf4960f5a021658cdf41a13"
)
stamp="$dist/.installed-by-autoscaler"
expected_stamp="flink $version ${wheels[*]}"
if [[ -f $stamp && $(cat "$stamp") == "$expected_stamp" ]]; then
  exit 0
fi

mkdir -p "$cache"
verified() { [[ -f $cache/$1 ]] && echo "$2  $cache/$1" | sha256sum --check --status; }
for entry in "${wheels[@]}"; do
  read -r file sum <<<"$entry"
  if ! verified "$file" "$sum"; then
    echo "install-flink: downloading $file"
    rm -f "$cache/$file"
    # Asks for exactly this wheel (platform and Python tags), so the same file comes whatever runs here.
    pip download --quiet --no-deps --only-binary=:all: --dest "$cache" \
      --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
      "$(cut -d- -f1 <<<"$file" | tr _ -)==$version"
    verified "$file" "$sum" || { echo "install-flink: $file does not match its pinned sha256" >&2; exit 1; }
  fi
done

echo "install-flink: unpacking Flink $version into $dist"
staging=$(mktemp -d "${dist%/*}/.flink-staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
for entry in "${wheels[@]}"; do
  read -r file _ <<<"$entry"
  unzip -q -o "$cache/$file" 'pyflink/bin/*' 'pyflink/conf/*' 'pyflink/lib/*' 'pyflink/opt/*' \
    'pyflink/plugins/*' -d "$staging" 2>/dev/null || [[ $? == 11 ]] # 11: a pattern this wheel lacks
done
for d in bin conf lib opt plugins; do
  [[ -d $staging/pyflink/$d ]] || { echo "install-flink: the wheels hold no $d/" >&2; exit 1; }
done
[[ -n $(ls "$staging"/pyflink/plugins/metrics-prometheus/*.jar 2>/dev/null) ]] ||
  { echo "install-flink: no metrics-prometheus plugin in the wheels" >&2; exit 1; }
chmod +x "$staging"/pyflink/bin/*
echo "$expected_stamp" >"$staging/pyflink/.installed-by-autoscaler"
rm -rf "$dist"
mv "$staging/pyflink" "$dist"
echo "install-flink: Flink $version is in $dist"
