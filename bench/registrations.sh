#!/usr/bin/env bash
# Registrations per second through the real `sbc` binary, driven by SIPp.
#
#   SIPp phones (127.0.78.2) → sbc (127.0.78.1:5060, registrar with digest auth)
#
# USERS digest users are created through the admin API (POST /users, one curl process
# keeping its connection), then SIPp registers them with bench/scenarios/register.xml at
# rising rates, SECONDS_PER_RATE seconds each: REGISTER, 401 challenge, REGISTER with
# credentials, 200. The users are taken in turn, so the first pass adds bindings and the
# later ones refresh them from new Call-IDs. Rate limits are off (every phone is behind
# the one SIPp address). For each rate: registrations completed and failed, the rate
# reached (completed / wall time of the run), the SBC's CPU time per registration (from
# /proc/PID/stat, so CPU actually spent whatever else runs), the registrar's counters and
# the 1-minute load average. At the end, the bindings the SBC holds (the store's count
# after its persister ran) must equal the users.
#
# Everything runs on loopback (127.0.78.1-2), every SIPp run is bounded in registrations
# (-m) and seconds (`timeout`), and everything started here is killed on exit. About 30 s.
#
# Usage: bench/registrations.sh
# Tunables (environment): USERS (1000), RATES ("500 1000 2000 4000 8000"),
#   SECONDS_PER_RATE (3), KEEP_TMP (1 keeps the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."

users=${USERS:-1000}
rates=${RATES:-500 1000 2000 4000 8000}
seconds_per_rate=${SECONDS_PER_RATE:-3}

sbc_ip=127.0.78.1
phones_ip=127.0.78.2
sip_port=5060
admin_port=18078
realm=sbc.test
clock_ticks=$(getconf CLK_TCK)

for tool in sipp curl awk; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is needed (tests/install-deps.sh installs it)" >&2
        exit 1
    }
done

# shellcheck source=bench/lib.sh
source bench/lib.sh # the working directory is the repository
bench_setup registrations # $work, and $started: every PID this script started
sbc_pid=""


fail() {
    echo "error: $*" >&2
    [[ -f $work/sbc.log ]] && tail -n 40 "$work/sbc.log" >&2
    exit 1
}

load1() {
    cut -d' ' -f1 /proc/loadavg
}

# The value of metric sample $1 (labels included, as printed) on /metrics.
metric() {
    curl -s --max-time 5 "http://$sbc_ip:$admin_port/metrics" |
        awk -v want="$1" '$1 == want { printf "%d\n", $2; found = 1 } END { if (!found) print 0 }'
}

# Column NAME of the last line of SIPp's statistics file FILE (0 when absent).
stat_column() {
    local file=$1 column=$2
    [[ -s $file ]] || {
        echo 0
        return
    }
    awk -F';' -v want="$column" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) col = i; next }
        { last = $col }
        END { print (col && last != "") ? last : 0 }' "$file"
}

# ── the SBC ─────────────────────────────────────────────────────────────────────────────

if [[ ! -x target/release/sbc || -n $(find src sbc-core/src media-relay/src -newer target/release/sbc -name '*.rs' -print -quit) ]]; then
    cargo build --release --locked --bin sbc
fi

cat >"$work/sbc.toml" <<EOF
data_dir = "data"

[sip]
[[sip.listen]]
transport = "udp"
address = "$sbc_ip:$sip_port"

[admin]
listen = "$sbc_ip:$admin_port"

[media]
address = "$sbc_ip"

[auth]
realm = "$realm"

[security]
scanner_user_agents = []

[security.rate_limits]
enabled = false
EOF
RUST_LOG=warn target/release/sbc --config "$work/sbc.toml" </dev/null >"$work/sbc.log" 2>&1 &
sbc_pid=$!
started+=("$sbc_pid")
deadline=$((SECONDS + 20))
until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://$sbc_ip:$admin_port/ready" 2>/dev/null) == 200 ]]; do
    kill -0 "$sbc_pid" 2>/dev/null || fail "sbc died during start-up"
    ((SECONDS < deadline)) || fail "sbc not ready within 20 s"
    sleep 0.1
done
token=$(cat "$work/data/admin-token")

# ── users ───────────────────────────────────────────────────────────────────────────────

{
    echo "SEQUENTIAL"
    for ((n = 0; n < users; n++)); do
        echo "user$n;[authentication username=user$n password=pw-$n-secret]"
    done
} >"$work/users.csv"
{
    for ((n = 0; n < users; n++)); do
        ((n == 0)) || echo "next"
        echo "url = \"http://$sbc_ip:$admin_port/users\""
        echo "header = \"Authorization: Bearer $token\""
        echo "header = \"Content-Type: application/json\""
        echo "data = \"{\\\"username\\\":\\\"user$n\\\",\\\"realm\\\":\\\"$realm\\\",\\\"password\\\":\\\"pw-$n-secret\\\",\\\"attributes\\\":{}}\""
        echo "output = \"/dev/null\""
        echo "write-out = \"%{http_code}\\n\""
        echo "max-time = 10"
    done
} >"$work/users.curl"
provision_started=$(date +%s.%N)
curl -s --config "$work/users.curl" >"$work/users.status" || true
provision_seconds=$(awk -v a="$provision_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
created=$(grep -c '^201$' "$work/users.status" || true)
((created == users)) || fail "$created of $users users created ($(sort "$work/users.status" | uniq -c | tr '\n' ' '))"

echo "Registrations through sbc (release), $users digest users (created in ${provision_seconds} s" \
    "through the admin API), $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| offered/s | registrations | 200 OK | failed | reached/s | SBC CPU µs/registration | new bindings | refreshes | load avg 1 min |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

# ── the runs ────────────────────────────────────────────────────────────────────────────

for rate in $rates; do
    calls=$((rate * seconds_per_rate))
    name="rate-$rate"
    registered_before=$(metric 'sbc_registrar_events_total{event="registered"}')
    refreshed_before=$(metric 'sbc_registrar_events_total{event="refreshed"}')
    cpu_before=$(cpu_ticks "$sbc_pid")
    began=$(date +%s.%N)
    status=0
    timeout -k 2 "$((seconds_per_rate * 4 + 10))" sipp "$sbc_ip:$sip_port" -i "$phones_ip" -p "$sip_port" \
        -sf bench/scenarios/register.xml -inf "$work/users.csv" -nostdin \
        -r "$rate" -rp 1000 -m "$calls" -l "$calls" -buff_size 2097152 \
        -timeout "$((seconds_per_rate * 4))s" -recv_timeout 5000 \
        -trace_stat -stf "$work/$name.stat.csv" -fd 1 \
        </dev/null >"$work/$name.out" 2>&1 || status=$?
    ended=$(date +%s.%N)
    case $status in
    0 | 1 | 97 | 99 | 124 | 137 | 143) ;;
    *)
        tail -n 20 "$work/$name.out" >&2
        fail "SIPp run at $rate/s exited with $status"
        ;;
    esac
    cpu_after=$(cpu_ticks "$sbc_pid")
    ok=$(stat_column "$work/$name.stat.csv" "SuccessfulCall(C)")
    failed=$((calls - ok))
    registered=$(($(metric 'sbc_registrar_events_total{event="registered"}') - registered_before))
    refreshed=$(($(metric 'sbc_registrar_events_total{event="refreshed"}') - refreshed_before))
    awk -v rate="$rate" -v calls="$calls" -v ok="$ok" -v failed="$failed" \
        -v began="$began" -v ended="$ended" -v ticks="$((cpu_after - cpu_before))" \
        -v hz="$clock_ticks" -v new="$registered" -v refreshed="$refreshed" -v load="$(load1)" '
        BEGIN {
            wall = ended - began
            cpu = ok > 0 ? ticks / hz * 1e6 / ok : 0
            printf "| %d | %d | %d | %d | %.0f | %.0f | %d | %d | %s |\n",
                rate, calls, ok, failed, ok / wall, cpu, new, refreshed, load
        }'
done

# The persister writes twice a second: every user's binding reaches the store.
stored=0
for _ in $(seq 20); do
    stored=$(metric sbc_registrations)
    ((stored == users)) && break
    sleep 0.25
done
echo
echo "bindings held at the end (sbc_registrations): $stored of $users users;" \
    "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
((stored == users)) || fail "the store holds $stored bindings, not $users"
if grep -qE ' (WARN|ERROR) ' "$work/sbc.log"; then
    echo "sbc logged $(grep -cE ' (WARN|ERROR) ' "$work/sbc.log") WARN/ERROR lines; the first:"
    grep -E ' (WARN|ERROR) ' "$work/sbc.log" | head -n 5 | cut -c1-300 | sed 's/^/    /'
fi
