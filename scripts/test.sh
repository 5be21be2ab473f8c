#!/usr/bin/env bash
# Runs every check and test (the README's test command; .ci/run calls it): rustfmt, clippy
# with warnings denied, and all tests on SQLite and on the PostgreSQL at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh
install_system_packages test
ensure_postgres
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
