#!/usr/bin/env bash
# Registrar contention: REGISTER refreshes and lookups per second (wall time) with 1, 2
# and 4 shards sharing the registrar, in three arrangements measured side by side (one
# mutex, the concurrent map in use, owner threads reached by messages), with the
# persister's sweep every 100 ms; lookup latency p99 and maximum. See
# sbc-core/benches/registrar.rs. On a shared machine the wall-time figures move with
# other load: the arrangements take turns within each row so it falls on all alike.
#
# "Before": the same benchmark at BEFORE (default 12901e8, the last commit where the
# registrar was one table behind one mutex, sweeping every binding on each operation),
# exported with `git archive` to a temporary directory and built into this target
# directory, runs first and prints its own table. BEFORE= (empty) skips it.
#
# Usage: bench/registrar.sh [users] [seconds-per-run] [repeats]   (10000 1 3)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

users="${1:-10000}"
seconds="${2:-1}"
repeats="${3:-3}"
before="${BEFORE-12901e8}"
export SBC_BENCH_USERS="$users" SBC_BENCH_SECONDS="$seconds" SBC_BENCH_REPEATS="$repeats"

work=$(mktemp -d /tmp/sbc-bench-registrar.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The benchmark executable cargo built for the workspace in directory $1.
build() {
    (cd "$1" && CARGO_TARGET_DIR="$repo/target" cargo bench -p sbc-core --bench registrar \
        --no-run --locked --message-format json 2>"$work/build.log") |
        awk -F'"executable":"' 'NF > 1 { split($2, a, "\""); print a[1] }' | tail -n 1
}

after_bench=$(build "$repo")
[[ -x $after_bench ]] || {
    cat "$work/build.log" >&2
    exit 1
}
if [[ -n $before ]]; then
    mkdir -p "$work/before"
    git archive "$before" | tar -x -C "$work/before"
    before_bench=$(build "$work/before")
    [[ -x $before_bench ]] || {
        cat "$work/build.log" >&2
        exit 1
    }
fi

echo "Registrar, ${users} users, $(nproc) CPU(s), median of ${repeats} x ${seconds} s"
if [[ -n $before ]]; then
    echo
    echo "Before ($before: one registrar behind one mutex), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    "$before_bench" --bench 2>/dev/null | grep '^|'
fi
echo
echo "After (this tree), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$after_bench" --bench 2>/dev/null | grep '^|'
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
