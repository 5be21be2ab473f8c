#!/usr/bin/env bash
# Runs every check and test (the README's test command; .ci/run calls it): rustfmt, clippy
# with warnings denied, all Rust tests on SQLite and on the PostgreSQL at 127.0.0.1:5432, and
# the end-to-end tests in Debian's Chromium. Ends with one line that totals every test:
# "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh
install_system_packages test
ensure_postgres
cargo fmt --all --check
./scripts/check-sans-io.sh
cargo clippy --locked --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --workspace 2>&1 | tee "$log" || status=$?
if [ "$status" -eq 0 ]; then
    # The browser tests drive the binary the Rust tests just built.
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee -a "$log" || status=$?
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
