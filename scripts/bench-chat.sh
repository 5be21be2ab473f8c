#!/usr/bin/env bash
# The web chat benchmark on SQLite and on PostgreSQL (docs/benchmarks.md). The server runs on
# core 0, this load on core 1. Needs many file descriptors: 10,000 connections on each side.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p switchboard
cargo bench --locked -p switchboard --bench chat --no-run
psql -h 127.0.0.1 -U root -d postgres -qc "DROP DATABASE IF EXISTS switchboard_bench WITH (FORCE)" -c "CREATE DATABASE switchboard_bench"
for db in sqlite postgres; do
    taskset -c 1 cargo bench --locked -p switchboard --bench chat -- --db "$db" "$@"
done
