#!/usr/bin/env bash
# Fuzz smoke run, called by tests/run.sh after the test suite: builds every cargo-fuzz
# target and runs each one from its committed seeds for a bounded time (FUZZ_SECONDS,
# default 20). A crash fails the run and leaves its input under fuzz/artifacts/.
#
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 unlocks them on the stable
# toolchain (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-20}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: installing cargo-fuzz"
    cargo install --locked cargo-fuzz@0.13.2
fi
export RUSTC_BOOTSTRAP=1

declare -A seeds=([sip_parser]=sip [stream_framer]=framer [sdp_parser]=sdp [srtp_unprotect]=srtp [media_demux]=media [identity]=identity)
cargo fuzz build --fuzz-dir fuzz

logs="$(mktemp -d)"
for target in sip_parser stream_framer sdp_parser srtp_unprotect media_demux identity; do
    corpus="$(mktemp -d)"
    if cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" "fuzz/seeds/${seeds[$target]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$logs/$target.log" 2>&1; then
        runs="$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo '?')"
        echo "fuzz $target: ok, $runs runs in ${seconds}s"
    else
        tail -n 40 "$logs/$target.log"
        echo "fuzz $target: FAILED (input saved under fuzz/artifacts/$target/)"
        exit 1
    fi
    rm -rf "$corpus"
done
