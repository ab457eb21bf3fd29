#!/usr/bin/env bash
# SRTP protect and unprotect per second per core for 160-byte (G.711, 20 ms) payloads: the
# relay's implementation beside libsrtp (Debian libsrtp2-dev) measured in the same run on
# the same machine, each suite the same way (batches of 1024 packets of one SSRC, replay
# protection on, thread CPU time so that other load does not distort the per-core rate).
#
# "pairs/s" is one protect plus one unprotect (what converting a packet SRTP -> RTP -> SRTP
# costs); "x libsrtp" compares pairs. Target: 3x libsrtp on the AES-CM suites, at least
# libsrtp's rate on GCM.
#
# Usage: bench/srtp.sh [seconds-per-suite]     (default 2; runs each side 3 times, medians)
#        bench/srtp.sh --criterion             (criterion's wall-clock benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--criterion" ]]; then
    exec cargo bench -p media-relay --bench srtp
fi
seconds="${1:-2}"

if [[ ! -e /usr/include/srtp2/srtp.h ]]; then
    echo "bench/srtp.sh: libsrtp2-dev is missing (tests/install-deps.sh installs it)" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -o "$work/libsrtp_bench" bench/srtp/libsrtp_bench.c -lsrtp2
cargo build --release -p media-relay --example srtp_bench >/dev/null 2>&1 \
    || cargo build --release -p media-relay --example srtp_bench

echo "SRTP, 160-byte payloads, $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
    "libsrtp $(dpkg-query -W -f='${Version}' libsrtp2-1 2>/dev/null || echo '?'), ${seconds}s per suite, median of 3"
for run in 1 2 3; do
    timeout 300 target/release/examples/srtp_bench "$seconds" | sed 's/^/relay /' >>"$work/runs"
    timeout 300 "$work/libsrtp_bench" "$seconds" | sed 's/^/libsrtp /' >>"$work/runs"
done
python3 - "$work/runs" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, suite, protect, unprotect = line.split()
    rows.setdefault((suite, who), []).append((float(protect), float(unprotect)))
def median(samples):
    p = statistics.median(s[0] for s in samples)
    u = statistics.median(s[1] for s in samples)
    return p, u, 1 / (1 / p + 1 / u)
print(f"{'suite':<24} {'impl':<8} {'protect/s':>11} {'unprotect/s':>12} {'pairs/s':>11} {'x libsrtp':>10}")
for suite in dict.fromkeys(s for s, _ in rows):
    base = median(rows[(suite, "libsrtp")])
    for who in ("relay", "libsrtp"):
        p, u, pairs = median(rows[(suite, who)])
        print(f"{suite:<24} {who:<8} {p:>11,.0f} {u:>12,.0f} {pairs:>11,.0f} {pairs / base[2]:>9.1f}x")
PY
