#!/usr/bin/env bash
# The live page benchmark (docs/benchmarks.md): 500 supervisor pages watching a center with
# 2,000 agents and 1,000 queued contacts. The release server runs on core 0, this load on
# core 1. Pass `--quick` for 50 pages and a 5 s run, `--db postgres` for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p switchboard
cargo bench --locked -p switchboard --bench live_watchers --no-run
export SWITCHBOARD_BIN="$target/release/switchboard"
if [[ " $* " == *" postgres "* ]]; then
    psql -h 127.0.0.1 -U root -d postgres -qc "DROP DATABASE IF EXISTS switchboard_bench WITH (FORCE)" -c "CREATE DATABASE switchboard_bench"
fi
taskset -c 1 cargo bench --locked -p switchboard --bench live_watchers -- "$@"
