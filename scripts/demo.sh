#!/usr/bin/env bash
# Builds Switchboard and starts a demo center on SQLite (the README's run command).
# The database and files go to ./data unless SWITCHBOARD_DATA_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/system-packages.sh
install_system_packages runtime
export SWITCHBOARD_DATA_DIR="${SWITCHBOARD_DATA_DIR:-$PWD/data}"
cargo build --release --locked -p switchboard
exec target/release/switchboard demo
