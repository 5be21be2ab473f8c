#!/usr/bin/env bash
# Architecture check: the sans-IO crates (the domain core, SIP, media and the call engine) take
# time and bytes as inputs. They must not depend on an async runtime, sockets or a database,
# and must not read the clock or open sockets themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
forbidden='^(tokio|mio|socket2|async_std|smol|sqlx|rusqlite|postgres|tokio_postgres|hyper|reqwest|axum|nix)$'
for crate in switchboard-core switchboard-sip switchboard-media switchboard-call; do
    [ -d "crates/$crate" ] || continue
    found=$(cargo tree --locked -e normal -p "$crate" --prefix none --format '{lib}' 2>/dev/null \
        | sed 's/ .*//' | sort -u | grep -E "$forbidden" || true)
    if [ -n "$found" ]; then
        echo "sans-IO crate $crate depends on: $found" >&2
        status=1
    fi
    reads=$(grep -rnE 'Instant::now|SystemTime::now|Utc::now|Local::now|UdpSocket|TcpStream|TcpListener' "crates/$crate/src" || true)
    if [ -n "$reads" ]; then
        echo "sans-IO crate $crate reads the clock or opens sockets:" >&2
        echo "$reads" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "sans-IO check: core, sip, media and call take time and bytes as inputs"
exit "$status"
