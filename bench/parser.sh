#!/usr/bin/env bash
# SIP parser/printer throughput on one core.
#
# Prints a table of messages per second of CPU time (parse, print, parse + print) for a
# typical 938-byte INVITE with SDP and a 1120-byte proxied one. CPU time of the
# benchmarking thread is used instead of wall time so that other load on a shared
# machine does not distort the per-core figure. The target is > 1,000,000 INVITEs
# parsed per second per core.
#
# Usage: bench/parser.sh [seconds-per-row]        (default 3)
#        bench/parser.sh --criterion              (criterion's wall-clock benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--criterion" ]]; then
    exec cargo bench -p sbc-core --bench parser
fi

seconds="${1:-3}"
cargo bench -p sbc-core --bench parser --no-run >/dev/null 2>&1 \
    || cargo bench -p sbc-core --bench parser --no-run
echo "SIP parser, $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg), ${seconds}s per row"
SBC_BENCH_CPU_SECONDS="$seconds" cargo bench -p sbc-core --bench parser 2>/dev/null | grep '^|'
