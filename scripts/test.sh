#!/usr/bin/env bash
# Runs every check and test (the README's test command; .ci/run calls it): rustfmt, clippy
# with warnings denied, and all tests on SQLite and on the PostgreSQL at 127.0.0.1:5432.
# Ends with one line that totals the tests: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh
install_system_packages test
ensure_postgres
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --workspace 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
