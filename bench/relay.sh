#!/usr/bin/env bash
# Relayed RTP packets per second per relay core, beside a bare recvmmsg/sendmmsg reflector
# measured in the same run on the same machine (the practical limit of the machine).
#
# A batched load generator (sendmmsg) sends 172-byte RTP packets round-robin to N relay
# sessions on ONE relay worker, which forwards them to a sink (recvmmsg); then the same load
# goes through the bare reflector (N sockets, epoll, recvmmsg, sendmmsg, no session logic).
# Loopback only; every run is bounded in time. Forwarders run on core 1, the generator and
# sink on core 0. Figures per core use the forwarder thread's CPU time, so other load on a
# shared machine does not distort them (the wall-clock rate and the loss do depend on it).
#
# Rows: sessions:packets-per-second-per-session (max = saturation; 50 = G.711 at 20 ms).
#   relay        the relay as configured by default (GSO for runs of equal-sized datagrams)
#   relay-mmsg   the relay with `gso = false`: one sendmmsg per run from one socket
#   srtp→rtp     the generator's leg is SDES-SRTP (AES_CM_128_HMAC_SHA1_80): the relay
#                verifies, decrypts and forwards plain RTP (ratio: to the plain relay row)
#   rtp→srtp     the sink's leg is SDES-SRTP: the relay encrypts what it forwards
# Target: relay >= 80% of the reflector's packets/s per core.
#
# Usage: bench/relay.sh [seconds-per-run] [runs]     (default 3, "1:max,100:max,1000:max,2000:50")
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-3}"
runs="${2:-1:max,100:max,1000:max,2000:50}"
runs="${runs//max/0}"
cargo build --release -p media-relay --example rtp_bench >/dev/null 2>&1 \
    || cargo build --release -p media-relay --example rtp_bench
echo "media relay, $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 target/release/examples/rtp_bench --seconds "$seconds" --runs "$runs"
