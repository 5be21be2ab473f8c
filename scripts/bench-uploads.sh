#!/usr/bin/env bash
# The recording uploads benchmark (docs/benchmarks.md): 1,000 recordings of five minutes queued
# for the CRM at once, uploaded while the server's memory is sampled. The release server runs
# on core 0, this program (the CRM) on core 1. Pass `--quick` for 100 recordings, `--mbps N`
# to pace the CRM, `--db postgres` for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p switchboard
cargo bench --locked -p switchboard --bench uploads --no-run
export SWITCHBOARD_BIN="$target/release/switchboard"
if [[ " $* " == *" postgres "* ]]; then
    psql -h 127.0.0.1 -U root -d postgres -qc "DROP DATABASE IF EXISTS switchboard_bench WITH (FORCE)" -c "CREATE DATABASE switchboard_bench"
fi
taskset -c 1 cargo bench --locked -p switchboard --bench uploads -- "$@"
