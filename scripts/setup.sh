#!/usr/bin/env bash
# Installs and starts what the build and the tests need on a fresh Debian machine of the project's kind.
# Idempotent: skips what is already there.
set -euo pipefail

packages=(
  cmake libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev libzstd-dev pkg-config # rdkafka's cmake-build (libzstd-dev: its zstd-pkg-config feature)
  prometheus # the real server, started by the manager's tests
  kcat       # a real Kafka client for scripts and benchmarks
  openjdk-17-jdk-headless unzip # Apache Flink's JVM, javac for the probe job, unzip for Flink's wheels
  chromium   # the status page's browser tests (headless)
  curl       # the docs' curl examples, run as written by services/tests/docs.rs
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tests start their own Prometheus on free ports; a packaged one running on :9090 does not matter.

# Postgres runs on this kind of machine; start it if it stopped.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

scripts/install-flink.sh

rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
