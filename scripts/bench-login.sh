#!/usr/bin/env bash
# The failed sign-in memory benchmark (docs/benchmarks.md): 1,000 failed sign-ins with random
# usernames at 32 at once against the release server (pinned to core 0), reporting the
# server's peak resident memory; once with throttling out of the way, once with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p switchboard
cargo bench --locked -p switchboard --bench login --no-run
export SWITCHBOARD_BIN="$target/release/switchboard"
taskset -c 1 cargo bench --locked -p switchboard --bench login "$@"
