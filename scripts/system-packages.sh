# System tools Switchboard needs, installed from Debian's archive when missing, and the
# PostgreSQL the tests use. Sourced by demo.sh and test.sh.

# "command:debian-package" per purpose. The runtime speaks voice prompts with flite (run as a
# separate process; without it prompts are tones). Tests call with real SIP peers: sipp and
# baresip. Benchmarks also pin processes (taskset) and make audio (sox).
RUNTIME_TOOLS=(flite:flite)
TEST_TOOLS=(pg_isready:postgresql-client chromium:chromium node:nodejs npm:npm sipp:sip-tester baresip:baresip)
BENCH_TOOLS=(sipp:sip-tester sox:sox taskset:util-linux python3:python3)

install_system_packages() {
    local wanted=("${RUNTIME_TOOLS[@]}")
    if [ "${1:-}" = test ]; then
        wanted+=("${TEST_TOOLS[@]}")
    fi
    if [ "${1:-}" = bench ]; then
        wanted+=("${BENCH_TOOLS[@]}")
    fi
    local missing=()
    for entry in "${wanted[@]}"; do
        command -v "${entry%%:*}" >/dev/null || missing+=("${entry#*:}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing system packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
    if ! command -v cargo >/dev/null; then
        echo "cargo is needed: install Rust (https://rustup.rs) and run this again" >&2
        exit 1
    fi
}

# The tests need PostgreSQL on 127.0.0.1:5432 (override with SWITCHBOARD_TEST_POSTGRES); start
# the local cluster if it is installed but stopped.
ensure_postgres() {
    if [ "${SWITCHBOARD_TEST_SKIP_POSTGRES:-}" = 1 ]; then
        return
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        return
    fi
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "starting the local PostgreSQL cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && return
        sleep 1
    done
    echo "PostgreSQL is not answering on 127.0.0.1:5432; start it, or set SWITCHBOARD_TEST_SKIP_POSTGRES=1 to test SQLite only" >&2
    exit 1
}
