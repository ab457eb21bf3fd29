#!/usr/bin/env bash
# STIR/SHAKEN throughput on one core: SHAKEN verifications with the certificate at hand
# (warm cache), the ES256 check alone, signatures, and a cold chain validation. Figures
# are per second of CPU time of the benchmarking thread, so other load on a shared
# machine does not distort the per-core figure. Target: >= 5,000 verifications/s/core.
#
# Usage: bench/identity.sh [seconds-per-row]        (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-2}"
cargo bench -p sbc-core --bench identity --no-run >/dev/null 2>&1 \
    || cargo bench -p sbc-core --bench identity --no-run
echo "STIR/SHAKEN, $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg), ${seconds}s per row"
SBC_BENCH_CPU_SECONDS="$seconds" cargo bench -p sbc-core --bench identity 2>/dev/null | grep '^|'
