#!/usr/bin/env bash
# Call-rate, concurrency and memory benchmarks of the real `sbc` binary, driven by SIPp.
#
#   SIPp UAC (127.0.77.3) → sbc (127.0.77.1:5060, B2BUA + media relay) → SIPp UAS (127.0.77.2)
#
# 1. Call rate, signalling only: INVITE/180/200/ACK/BYE/200 without SDP
#    (bench/scenarios/uac_nosdp.xml, uas_nosdp.xml), at rising rates, each for a few
#    seconds on one SBC; stops rising once 0.1 % or more of the calls failed. Then the highest
#    clean rate once more for 34 s on a fresh SBC: the SBC keeps finished transactions for
#    32 s (RFC 3261/6026 timers J, L, M), so only a run longer than that shows whether the
#    rate is sustainable or only a burst. If it is not, one more 34 s run at the rate the
#    SBC's room for transactions allows (calls started before the first failure / 32 s).
# 2. Call rate, media anchored: the same with SIPp's stock `uac`/`uas` scenarios, whose
#    INVITE and 200 carry SDP, so the relay allocates (binds) two RTP/RTCP port pairs per
#    call. No RTP flows in this table (bench/relay.sh measures the packet path). One call
#    first checks that the INVITE reaching the UAS offers the relay's address.
# 3. Concurrent calls and memory: N calls held open, without SDP, with SDP (relay
#    sessions allocated, no RTP), and with RTP flowing both ways (SIPp's rtp_stream plays
#    50 packets/s per call from the caller, bench/scenarios/uac_rtp.xml, and the callee
#    echoes them), the SBC's VmRSS before the calls and once all are up, and for the RTP
#    row the relay's forwarding rate from /metrics over 5 s. RSS counts user-space memory
#    only; the kernel's socket buffers (4 UDP sockets per call with SDP) are not in it.
#    The SDP rows are capped by the open-file limit (4 sockets per call).
#    The UAC is a trunk of the SBC's (a carrier): the access side's digest challenge and
#    per-source rate limits do not apply to it.
#
# A call is successful when SIPp's UAC completes the scenario; "failed" counts every call
# the UAC started but did not complete (SIPp's FailedCall plus calls still open when the
# run's time bound hit). CPU figures come from /proc/PID/stat (utime + stime), so they are
# CPU time actually spent, whatever else runs on the machine; SIPp shares the 2 cores.
#
# Everything runs on loopback (127.0.77.1-3), every SIPp run is bounded in calls (-m) and
# seconds (`timeout`), and everything started here is killed on exit. About 3 minutes, 4 when
# a sustained run fails and is retried at a lower rate.
#
# Usage: bench/calls.sh
# Tunables (environment): RATES ("250 500 1000 1500 2000 3000 4000"), SECONDS_PER_RATE (3),
#   SUSTAIN_SECONDS (34; 0 skips the sustained runs), CONCURRENT (10000), CONCURRENT_RATE
#   (1000), TABLES ("nosdp sdp concurrent": which tables to print), KEEP_TMP (1 keeps the
#   temporary directory with logs and SIPp statistics).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rates=${RATES:-250 500 1000 1500 2000 3000 4000}
seconds_per_rate=${SECONDS_PER_RATE:-3}
sustain_seconds=${SUSTAIN_SECONDS:-34}
# How long the SBC keeps a finished call's transactions: 64·T1 (timers J, L, M) with the
# default T1 of 500 ms.
linger_seconds=32
concurrent=${CONCURRENT:-10000}
concurrent_rate=${CONCURRENT_RATE:-1000}
tables=${TABLES:-nosdp sdp concurrent}
max_failed_ppm=1000 # 0.1 %

sbc_ip=127.0.77.1
uas_ip=127.0.77.2
uac_ip=127.0.77.3
sip_port=5060
admin_port=18077
sipp_buffer=2097152
clock_ticks=$(getconf CLK_TCK)

# ── process bookkeeping ───────────────────────────────────────────────────────────────────

# shellcheck source=bench/lib.sh
source bench/lib.sh # the working directory is the repository
bench_setup calls # $work, and $started: every PID this script started
sbc_pid=""
sbc_log=""
sbc_warnings=()


# Take a PID off the list of processes to kill on exit.
forget() {
    local pid=$1 p remaining=()
    for p in "${started[@]}"; do
        [[ $p == "$pid" ]] || remaining+=("$p")
    done
    started=("${remaining[@]}")
}

# Stop one process started here (TERM, then KILL after 5 s) and forget it.
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

sbc_log_tail() {
    if [[ -n $sbc_log && -f $sbc_log ]]; then
        echo "── sbc log ($(wc -l <"$sbc_log") lines), last 40 ──" >&2
        tail -n 40 "$sbc_log" >&2
    fi
}

fail() {
    echo "error: $*" >&2
    sbc_log_tail
    exit 1
}

# ── /proc readings ────────────────────────────────────────────────────────────────────────

# utime + stime of a process in clock ticks (fields 14 and 15; the name may hold spaces).
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

slab_kib() {
    awk '/^Slab:/ { print $2 }' /proc/meminfo
}

fd_count() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

assert_sbc_alive() {
    kill -0 "$sbc_pid" 2>/dev/null || fail "sbc (pid $sbc_pid) died during $1"
}

# ── the SBC ───────────────────────────────────────────────────────────────────────────────

# start_sbc NAME PORT_MIN PORT_MAX: write a config, start sbc, wait for GET /ready.
start_sbc() {
    local name=$1 port_min=$2 port_max=$3 dir="$work/$1"
    mkdir -p "$dir"
    cat >"$dir/sbc.toml" <<EOF
data_dir = "data"

[sip]
[[sip.listen]]
transport = "udp"
address = "$sbc_ip:$sip_port"

[admin]
listen = "$sbc_ip:$admin_port"

[media]
address = "$sbc_ip"
port_min = $port_min
port_max = $port_max

[[trunk]]
name = "uas"
targets = ["$uas_ip:$sip_port"]
transport = "udp"
keepalive_secs = 0

# The UAC plays a carrier: thousands of calls a second come from trunks, which skip the
# access side's digest challenge and per-source rate limits.
[[trunk]]
name = "carrier"
targets = ["$uac_ip:$sip_port"]
transport = "udp"
keepalive_secs = 0

[[route]]
name = "to-uas"
to_trunk = "uas"
EOF
    sbc_log="$dir/sbc.log"
    RUST_LOG=info target/release/sbc --config "$dir/sbc.toml" </dev/null >"$sbc_log" 2>&1 &
    sbc_pid=$!
    started+=("$sbc_pid")
    local deadline=$((SECONDS + 20))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
        "http://$sbc_ip:$admin_port/ready" 2>/dev/null) == 200 ]]; do
        assert_sbc_alive "start-up"
        ((SECONDS < deadline)) || fail "sbc not ready on http://$sbc_ip:$admin_port/ready within 20 s"
        sleep 0.1
    done
}

stop_sbc() {
    stop "$sbc_pid"
    sbc_pid=""
    if grep -qE ' (WARN|ERROR) ' "$sbc_log"; then
        sbc_warnings+=("$sbc_log")
    fi
}

# The WARN and ERROR lines the SBCs stopped since the last call logged (a few of each log).
print_sbc_warnings() {
    local log
    for log in "${sbc_warnings[@]}"; do
        echo
        echo "sbc log $(basename "$(dirname "$log")"): $(grep -cE ' WARN ' "$log" || true) WARN," \
            "$(grep -cE ' ERROR ' "$log" || true) ERROR lines; the first:"
        echo
        grep -E ' (WARN|ERROR) ' "$log" | head -n 5 | cut -c1-300 | sed 's/^/    /'
    done
    sbc_warnings=()
}

# ── SIPp ──────────────────────────────────────────────────────────────────────────────────

# start_uas NAME SCENARIO-ARGS...: a SIPp UAS on $uas_ip; sets uas_pid.
start_uas() {
    local name=$1
    shift
    sipp -i "$uas_ip" -p "$sip_port" "$@" -nostdin -buff_size "$sipp_buffer" \
        -l 200000 -timeout 300 -trace_err -error_file "$work/$name.uas-errors.log" \
        </dev/null >"$work/$name.uas.out" 2>&1 &
    uas_pid=$!
    started+=("$uas_pid")
    sleep 0.5
    kill -0 "$uas_pid" 2>/dev/null || {
        cat "$work/$name.uas.out" >&2
        fail "SIPp UAS did not start"
    }
}

# Column NAME of the last line of SIPp's statistics file FILE ("" when absent).
stat_column() {
    local file=$1 column=$2
    [[ -s $file ]] || return 0
    awk -F';' -v want="$column" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) col = i; next }
        { last = $col }
        END { if (col) print last }' "$file"
}

# run_uac NAME RATE CALLS SECONDS SCENARIO-ARGS...: one SIPp UAC run of CALLS calls at RATE
# calls/s, bounded by SECONDS (SIPp's -timeout lets calls in progress finish, so `timeout`
# bounds it for good), and stopped as soon as 0.1 % of CALLS have failed (the verdict cannot
# change any more). Sets uac_stats (the -trace_stat CSV), uac_errors (its log of unexpected
# messages), uac_cpu_ms (its user + system CPU time) and uac_stopped_early (0 or 1).
run_uac() {
    local name=$1 rate=$2 calls=$3 seconds=$4
    shift 4
    uac_stats="$work/$name.stat.csv"
    uac_errors="$work/$name.uac-errors.log"
    uac_stopped_early=0
    local TIMEFORMAT='%3U %3S'
    {
        time {
            exit_status=0
            timeout -k 2 "$((seconds + 2))" sipp "$sbc_ip:$sip_port" -i "$uac_ip" -p "$sip_port" \
                "$@" -nostdin -buff_size "$sipp_buffer" -r "$rate" -rp 1000 -m "$calls" \
                -l "$calls" -timeout "${seconds}s" -trace_stat -stf "$uac_stats" -fd 200ms \
                -trace_err -error_file "$uac_errors" </dev/null >"$work/$name.uac.out" 2>&1 ||
                exit_status=$?
            echo "$exit_status" >"$work/$name.uac.status"
        }
    } 2>"$work/$name.uac.time" &
    local runner=$! guard=""
    started+=("$runner")
    for _ in $(seq 100); do
        guard=$(awk '{ print $1 }' "/proc/$runner/task/$runner/children" 2>/dev/null || true)
        [[ -z $guard ]] || break
        sleep 0.02
    done
    [[ -z $guard ]] || started+=("$guard")
    local failed_now
    while kill -0 "$runner" 2>/dev/null; do
        sleep 0.25
        failed_now=$(stat_column "$uac_stats" "FailedCall(C)")
        if ((uac_stopped_early == 0 && ${failed_now:-0} * 1000000 >= calls * max_failed_ppm)); then
            uac_stopped_early=1
            [[ -z $guard ]] || kill -TERM "$guard" 2>/dev/null || true
        fi
    done
    wait "$runner" 2>/dev/null || true
    forget "$runner"
    [[ -z $guard ]] || forget "$guard"
    local status
    status=$(cat "$work/$name.uac.status" 2>/dev/null || echo missing)
    uac_cpu_ms=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$work/$name.uac.time")
    # 0: all calls succeeded, 1: some failed, 97/99: normal exits, 124/137/143: stopped.
    case $status in
    0 | 1 | 97 | 99 | 124 | 137 | 143) ;;
    *)
        tail -n 20 "$work/$name.uac.out" >&2
        fail "SIPp UAC run $name exited with $status"
        ;;
    esac
    [[ -s $uac_stats ]] || {
        tail -n 20 "$work/$name.uac.out" >&2
        fail "SIPp UAC run $name wrote no statistics"
    }
}

# Successful and failed calls of the last UAC run of CALLS calls: sets successful, failed
# (every call not completed counts as failed, whether SIPp counted it or the run's time
# bound cut it short).
count_calls() {
    local calls=$1 failed_reported
    if ((uac_stopped_early)); then
        calls=$(stat_column "$uac_stats" "OutgoingCall(C)")
        calls=${calls:-0}
    fi
    started_calls=$calls
    successful=$(stat_column "$uac_stats" "SuccessfulCall(C)")
    successful=${successful:-0}
    failed_reported=$(stat_column "$uac_stats" "FailedCall(C)")
    failed=$((calls - successful))
    ((failed >= ${failed_reported:-0})) || failed=$failed_reported
}

# The rate at which the last UAC run started its calls: calls / time from its first
# statistics line to the first line where all were started.
rate_reached() {
    awk -F';' -v calls="$1" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == "OutgoingCall(C)") col = i; next }
        { split($3, now, "\t"); t = now[3] }
        NR == 2 { start = t }
        col && $col >= calls && !done { done = 1; end = t }
        END {
            if (!done || end <= start) print "-"
            else printf "%.0f", calls / (end - start)
        }' "$uac_stats"
}

# How the last UAC run's calls failed, from its error log and statistics: the responses
# that aborted calls ("503 ×945, 408 ×46") and the calls still unfinished when it stopped.
failure_summary() {
    local unfinished
    unfinished=$(stat_column "$uac_stats" "CurrentCall")
    {
        if [[ -s $uac_errors ]]; then
            grep -o "Aborting call on unexpected message.*received '[^ ]* [^ ]*" "$uac_errors" |
                sed "s/.*received '//; s/^SIP\/2.0 //" | sort | uniq -c | sort -rn | head -n 4
        fi
        ((${unfinished:-0} == 0)) || echo "$unfinished unfinished"
    } | awk '{ printf "%s%s ×%d", sep, $2, $1; sep = ", " }'
}

# The time from the last UAC run's start to its first failed call and the calls started by
# then ("27.3 40998"), or nothing when no call failed.
first_failure() {
    awk -F';' '
        NR == 1 {
            for (i = 1; i <= NF; i++) {
                if ($i == "FailedCall(C)") failed = i
                if ($i == "OutgoingCall(C)") started = i
            }
            next
        }
        { split($3, now, "\t") }
        NR == 2 { start = now[3] }
        failed && $failed > 0 { printf "%.1f %d\n", now[3] - start, $started; exit }
    ' "$uac_stats"
}

# ── tables 1 and 2: call rate ─────────────────────────────────────────────────────────────

# One call through the SBC with SDP, the UAS tracing what it receives: the INVITE that
# reaches the UAS must offer the relay's address (127.0.77.1), not the UAC's.
check_media_anchored() {
    start_sbc check 10000 31999
    start_uas check -sn uas -m 1 -trace_msg -message_file "$work/check.uas-messages.log"
    run_uac check 1 1 5 -sn uac
    assert_sbc_alive "the SDP check call"
    count_calls 1
    ((successful == 1)) || fail "the SDP check call failed (see $work/check.*)"
    grep -q "^c=IN IP4 $sbc_ip" "$work/check.uas-messages.log" ||
        fail "the INVITE reaching the UAS does not offer the relay address $sbc_ip"
    if grep -q "$uac_ip" "$work/check.uas-messages.log"; then
        fail "the UAC's address $uac_ip reached the UAS (topology hiding)"
    fi
    stop "$uas_pid"
    stop_sbc
}

# rate_row LABEL TAG RATE SECONDS UAC-SCENARIO-ARGS...: one run against the running SBC and
# UAS; prints a table row and sets row_failed.
rate_row() {
    local label=$1 tag=$2 rate=$3 seconds=$4
    shift 4
    local calls=$((rate * seconds)) sbc_before uas_before
    sbc_before=$(cpu_ticks "$sbc_pid")
    uas_before=$(cpu_ticks "$uas_pid")
    run_uac "$tag-$rate-$seconds" "$rate" "$calls" $((seconds + 5)) "$@"
    sleep 0.5 # the last BYEs and 200s reach the UAS
    assert_sbc_alive "the $rate calls/s run"
    local sbc_ticks=$(($(cpu_ticks "$sbc_pid") - sbc_before))
    local uas_ticks=$(($(cpu_ticks "$uas_pid") - uas_before))
    local reached
    reached=$(rate_reached "$calls")
    count_calls "$calls"
    row_calls=$((started_calls > 0 ? started_calls : 1))
    row_failed=$failed
    ((uac_stopped_early == 0)) || label="$label, stopped at 0.1 % failed"
    awk -v label="$label" -v rate="$rate" -v reached="$reached" -v calls="$row_calls" \
        -v failed="$failed" -v sbc="$sbc_ticks" -v uas="$uas_ticks" -v uac_ms="$uac_cpu_ms" \
        -v hz="$clock_ticks" -v why="$(failure_summary)" '
        BEGIN {
            printf "| %s | %d | %s | %d | %d | %.3f | %.1f | %.1f | %s |\n", label, rate, reached,
                calls, failed, 100 * failed / calls, sbc * 1e6 / hz / calls,
                (uas * 1e6 / hz + uac_ms * 1e3) / calls, why
        }'
}

# rate_table TITLE TAG UAC-SCENARIO-ARGS... -- UAS-SCENARIO-ARGS...: rising rates for
# $seconds_per_rate each on one SBC, up to the first with >= 0.1 % failed calls; then the
# highest clean rate again for $sustain_seconds on a fresh SBC (longer than the 32 s that
# finished transactions are kept, so the SBC reaches its steady state).
rate_table() {
    local title=$1 tag=$2 uac_args=() uas_args=()
    shift 2
    while [[ $1 != -- ]]; do
        uac_args+=("$1")
        shift
    done
    shift
    uas_args=("$@")

    echo
    echo "### $title"
    echo
    echo "| run | rate tried (calls/s) | rate reached | calls | failed | failed % | sbc CPU µs/call | SIPp CPU µs/call (UAC+UAS) | how calls failed (UAC) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    start_sbc "$tag" 10000 31999
    start_uas "$tag" "${uas_args[@]}"
    local best=0 rate
    for rate in $rates; do
        rate_row "${seconds_per_rate} s" "$tag" "$rate" "$seconds_per_rate" "${uac_args[@]}"
        ((row_failed * 1000000 / row_calls < max_failed_ppm)) || break
        best=$rate
        sleep 1 # let the previous run's transactions wind down
    done
    stop "$uas_pid"
    stop_sbc

    # The highest clean rate again, long enough to reach the steady state. If it fails and
    # the failures began only once ~$linger_seconds s of calls had piled up, the SBC ran out of
    # room for finished transactions: try once more at the rate that room allows (the calls
    # started before the first failure, spread over $linger_seconds s). If they began
    # earlier, the machine could not keep the pace (a burst's queues hid it): try the next
    # lower rate of the list.
    local verdict="" try=$best tries=0 outcome
    while ((try > 0 && sustain_seconds > 0 && tries < 3)); do
        tries=$((tries + 1))
        start_sbc "$tag-sustained-$try" 10000 31999
        start_uas "$tag-sustained-$try" "${uas_args[@]}"
        rate_row "${sustain_seconds} s, fresh sbc" "$tag-sustained" "$try" "$sustain_seconds" \
            "${uac_args[@]}"
        outcome=$(first_failure)
        stop "$uas_pid"
        stop_sbc
        if ((row_failed * 1000000 / row_calls < max_failed_ppm)); then
            verdict="$verdict${verdict:+; }**$try calls/s held for ${sustain_seconds} s**"
            break
        fi
        local room=0 lower=0 candidate first_seconds
        for candidate in $rates; do
            ((candidate < try)) && lower=$candidate
        done
        if [[ -n $outcome ]]; then
            verdict="$verdict${verdict:+; }$try calls/s not held for ${sustain_seconds} s (first failed call after ${outcome% *} s and ${outcome#* } calls)"
            first_seconds=${outcome% *}
            if ((${first_seconds%.*} >= linger_seconds - 2)); then
                room=$((${outcome#* } / linger_seconds / 100 * 100))
            fi
        else
            verdict="$verdict${verdict:+; }$try calls/s not held for ${sustain_seconds} s (calls left unfinished)"
        fi
        if ((room > 0 && room < try)); then
            try=$room
        elif ((lower > 0)); then
            try=$lower
        else
            try=$((try / 2 / 100 * 100))
        fi
    done
    echo
    if ((best > 0)); then
        echo "**$title: highest rate with < 0.1 % failed calls in ${seconds_per_rate} s runs: $best calls/s.**"
        [[ -z $verdict ]] || echo "Sustained: $verdict."
    else
        echo "**$title: no rate tried had < 0.1 % failed calls.**"
    fi
    print_sbc_warnings
}

# ── table 3: concurrent calls and memory ──────────────────────────────────────────────────

# Column NAME of the last line of SIPp's message-count file FILE (0 when absent).
count_column() {
    local file=$1 pattern=$2
    [[ -s $file ]] || { echo 0; return 0; }
    awk -F';' -v want="$pattern" '
        NR == 1 { for (i = 1; i <= NF; i++) if (!col && $i ~ want) col = i; next }
        { last = $col }
        END { print (col && last != "") ? last : 0 }' "$file"
}

# concurrent_row TAG CALLS LABEL UAC-SCENARIO-ARGS... -- UAS-SCENARIO-ARGS...: hold CALLS
# calls open and print one table row.
concurrent_row() {
    local tag=$1 calls=$2 label=$3 uac_args=() uas_args=()
    shift 3
    while [[ $1 != -- ]]; do
        uac_args+=("$1")
        shift
    done
    shift
    uas_args=("$@")
    # Two port pairs per call, 10 % spare (released pairs rest before reuse).
    local port_min=10000 port_max=$((10000 + calls * 4 * 11 / 10 + 99))
    ((port_max % 2 == 1)) || port_max=$((port_max + 1))
    ((port_max <= 65535)) || fail "$calls calls need relay ports up to $port_max"
    start_sbc "$tag" "$port_min" "$port_max"
    sleep 1
    local rss_before fds_before slab_before
    rss_before=$(rss_kib "$sbc_pid")
    fds_before=$(fd_count "$sbc_pid")
    slab_before=$(slab_kib)

    start_uas "$tag" "${uas_args[@]}"
    local ramp=$(((calls + concurrent_rate - 1) / concurrent_rate))
    local hold_ms=$(((ramp + 30) * 1000))
    # SIPp writes its message counts to <scenario>_<pid>_counts.csv in its working directory.
    local dir="$work/$tag-uac"
    mkdir -p "$dir"
    # The RTP row's stream (uac_rtp.xml): one second of A-law silence, looped.
    head -c 8000 /dev/zero | tr '\0' '\325' >"$dir/tone.alaw"
    (cd "$dir" && exec timeout -k 2 "$((ramp + 40))" sipp "$sbc_ip:$sip_port" -i "$uac_ip" -p "$sip_port" "${uac_args[@]}" \
        -d "$hold_ms" -nostdin -buff_size "$sipp_buffer" -r "$concurrent_rate" -rp 1000 \
        -m "$calls" -l "$calls" -timeout "$((ramp + 60))s" -trace_stat -stf stat.csv \
        -trace_counts -fd 1 -trace_err -error_file errors.log </dev/null >uac.out 2>&1) &
    local uac_pid=$!
    started+=("$uac_pid")

    # Wait until every call is answered or failed, bounded by the ramp time + 20 s.
    local deadline=$((SECONDS + ramp + 20)) answered=0 failed_calls=0 counts=""
    while ((SECONDS < deadline)); do
        sleep 1
        assert_sbc_alive "the concurrent calls"
        kill -0 "$uac_pid" 2>/dev/null || break
        counts=$(find "$dir" -name '*_counts.csv' | head -n 1)
        [[ -n $counts ]] || continue
        answered=$(count_column "$counts" '^[0-9]+_200_Recv$')
        failed_calls=$(stat_column "$dir/stat.csv" "FailedCall(C)")
        ((answered + ${failed_calls:-0} < calls)) || break
    done
    sleep 2 # the last ACKs reach the SBC and the UAS; memory settles
    assert_sbc_alive "the concurrent calls"
    answered=$(count_column "$counts" '^[0-9]+_200_Recv$')
    failed_calls=$(stat_column "$dir/stat.csv" "FailedCall(C)")
    if [[ $tag == held-rtp ]]; then
        relay_rate_note "$label" "$answered"
    fi
    local rss_after fds_after udp_sockets slab_after
    rss_after=$(rss_kib "$sbc_pid")
    fds_after=$(fd_count "$sbc_pid")
    slab_after=$(slab_kib)
    udp_sockets=$(awk '/^UDP:/ { print $3 }' /proc/net/sockstat)

    awk -v label="$label" -v tried="$calls" -v held="$answered" -v failed="${failed_calls:-0}" \
        -v before="$rss_before" -v after="$rss_after" -v fb="$fds_before" -v fa="$fds_after" \
        -v udp="$udp_sockets" -v slab="$((slab_after - slab_before))" '
        BEGIN {
            per = held > 0 ? (after - before) * 1024 / held : 0
            slab_per = held > 0 ? slab * 1024 / held : 0
            printf "| %s | %d | %d | %d | %.1f MiB | %.1f MiB | %.0f B (%.1f kB) | %.1f kB | %d / %d | %d |\n",
                label, tried, held, failed, before / 1024, after / 1024, per, per / 1000,
                slab_per / 1000, fb, fa, udp
        }'
    if ((answered < calls)); then
        concurrent_notes+=("$label: only $answered of $calls calls were answered; SIPp UAC errors: $(head -c 300 "$dir/errors.log" 2>/dev/null | tr '\n' ' ')")
    fi
    stop "$uac_pid"
    stop "$uas_pid"
    stop_sbc
}

# Sum of the relay's forwarded-packet counters over its workers.
relay_forwarded() {
    curl -s --max-time 2 "http://$sbc_ip:$admin_port/metrics" |
        awk '/^sbc_relay_packets_forwarded_total\{/ { sum += $2 } END { printf "%d\n", sum }'
}

# relay_rate_note LABEL CALLS: the relay's forwarding rate over 5 s while CALLS calls are
# held, against the 100 packets/s each call would carry if SIPp fed every stream (50/s
# from the caller's stream, 50/s echoed back by the callee).
relay_rate_note() {
    local label=$1 calls=$2 first second
    first=$(relay_forwarded)
    sleep 5
    second=$(relay_forwarded)
    awk -v label="$label" -v calls="$calls" -v n=$((second - first)) 'BEGIN {
        pps = n / 5
        share = calls > 0 ? pps * 100 / (calls * 100) : 0
        printf "%s: the relay forwarded %.0f packets/s while %d calls were held, %.0f %% of the %d/s that 100 packets/s per call would be.\n",
            label, pps, calls, share, calls * 100
    }' >>"$work/rtp-notes"
}

concurrent_table() {
    # The relay holds 4 UDP sockets per call (RTP and RTCP on each leg), and the SBC cannot
    # have more descriptors than its open-file limit.
    local fd_limit media_calls
    fd_limit=$(ulimit -n)
    media_calls=$(((fd_limit - 200) / 4))
    ((media_calls < concurrent)) || media_calls=$concurrent
    concurrent_notes=()

    echo
    echo "### Concurrent calls held open ($concurrent_rate calls/s ramp)"
    echo
    echo "| calls | tried | held | failed | sbc RSS before | sbc RSS with calls held | RSS per call | kernel slab Δ per call (machine-wide, noisy) | sbc open fds before / after | UDP sockets (machine) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    concurrent_row held-nosdp "$concurrent" "signalling only (no SDP)" \
        -sf "$repo/bench/scenarios/uac_nosdp.xml" -- -sf "$repo/bench/scenarios/uas_nosdp.xml"
    if ((media_calls > 0)); then
        concurrent_row held-sdp "$media_calls" "SDP, relay session allocated (no RTP)" \
            -sn uac -- -sn uas
        concurrent_row held-rtp "$media_calls" "SDP, RTP flowing both ways" \
            -sf "$repo/bench/scenarios/uac_rtp.xml" -mi "$uac_ip" -- \
            -sn uas -mi "$uas_ip" -mp 7000 -rtp_echo
    fi
    echo
    echo "RSS counts the SBC's user-space memory only. The kernel's share (sockets, epoll entries)"
    echo "shows in the growth of the machine's slab memory (/proc/meminfo Slab), which other"
    echo "processes move too; UDP socket buffers of idle sockets are empty."
    if ((media_calls < concurrent)); then
        echo "The SDP row is capped at $media_calls calls by the open-file limit ($fd_limit, hard" \
            "limit $(ulimit -Hn), not raisable here): the relay holds 4 UDP sockets per call."
    fi
    if [[ -s $work/rtp-notes ]]; then
        echo
        cat "$work/rtp-notes"
        echo "RTP: SIPp's rtp_stream plays 50 packets/s of 160-byte A-law per call from the caller;"
        echo "the callee's SIPp echoes them (-rtp_echo), so each held call crosses the relay twice."
    fi
    local note
    for note in "${concurrent_notes[@]}"; do
        echo
        echo "**$note**"
    done
    print_sbc_warnings
}

# ── main ──────────────────────────────────────────────────────────────────────────────────

command -v sipp >/dev/null || fail "sipp not found (apt-get install sip-tester)"
command -v curl >/dev/null || fail "curl not found (apt-get install curl)"
# The relay holds 4 sockets per call; SIPp raises its own limit up to the hard one.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
for address in "$sbc_ip:$sip_port" "$uas_ip:$sip_port" "$uac_ip:$sip_port"; do
    if ss -Huan "src $address" 2>/dev/null | grep -q .; then
        fail "UDP $address is already in use (another run of this script?)"
    fi
done

cargo build --release --locked >"$work/build.log" 2>&1 || {
    tail -n 30 "$work/build.log" >&2
    fail "cargo build --release --locked failed"
}

echo "## sbc call benchmarks (bench/calls.sh, SIPp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -n 1))"
echo
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) CPU(s), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "SIPp (UAC and UAS) runs on the same cores as the SBC, and the machine is shared: the"
echo "rates and failures depend on the other load; CPU per call (from /proc) depends less on it."
echo "UDP on loopback: UAC $uac_ip → sbc $sbc_ip:$sip_port → UAS $uas_ip;" \
    "$seconds_per_rate s per rate; failed = started but not completed by the UAC."

if [[ " $tables " == *" nosdp "* ]]; then
    rate_table "Call rate, signalling only (no SDP)" nosdp \
        -sf "$repo/bench/scenarios/uac_nosdp.xml" -- -sf "$repo/bench/scenarios/uas_nosdp.xml"
fi
if [[ " $tables " == *" sdp "* ]]; then
    check_media_anchored
    rate_table "Call rate, media anchored (SDP in INVITE and 200: relay ports allocated per call)" sdp \
        -sn uac -- -sn uas
fi
if [[ " $tables " == *" concurrent "* ]]; then
    concurrent_table
fi
echo
echo "Total time: ${SECONDS} s."
