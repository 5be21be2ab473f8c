#!/usr/bin/env bash
# The voice benchmarks (docs/benchmarks.md): the call rate, and 1,000 concurrent bridged calls,
# with sipp on loopback. Switchboard (release build, demo center on SQLite) runs on core 0 and
# sipp on core 1. Settings: BENCH_RATES (cps steps), BENCH_CALLS, BENCH_HOLD_SECONDS,
# BENCH_WINDOW_SECONDS, BENCH_SKIP_RATE=1, BENCH_SKIP_BRIDGED=1, BENCH_RECORD=on|off|both,
# BENCH_MONITOR=off|listen|barge|all.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/system-packages.sh
install_system_packages bench
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked -p switchboard
exec python3 scripts/bench_voice.py "$@"
