#!/usr/bin/env bash
# Registrar contention: REGISTER refreshes and lookups per second (wall time) with 1, 2
# and 4 shards sharing the registrar, in three arrangements measured side by side (one
# mutex, the concurrent map in use, owner threads reached by messages), with the
# persister's sweep every 100 ms; lookup latency p99 and maximum. See
# sbc-core/benches/registrar.rs. On a shared machine the wall-time figures move with
# other load: the arrangements take turns within each row so it falls on all alike.
#
# Usage: bench/registrar.sh [users] [seconds-per-run] [repeats]   (10000 1 3)
set -euo pipefail
cd "$(dirname "$0")/.."

users="${1:-10000}"
seconds="${2:-1}"
repeats="${3:-3}"
cargo bench -p sbc-core --bench registrar --no-run >/dev/null 2>&1 \
    || cargo bench -p sbc-core --bench registrar --no-run
echo "Registrar, ${users} users, $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
SBC_BENCH_USERS="$users" SBC_BENCH_SECONDS="$seconds" SBC_BENCH_REPEATS="$repeats" \
    cargo bench -p sbc-core --bench registrar 2>/dev/null | grep '^|'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
