# Shared by the bench scripts that start processes (source it; not run on its own).
#
# bench_setup NAME: a temporary directory in $work (kept with KEEP_TMP=1) and the list
# $started of PIDs that are stopped on exit (TERM, then KILL after 5 s).
# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks (the script
# defines `fail`).

bench_setup() {
    work=$(mktemp -d "/tmp/sbc-bench-$1.XXXXXX")
    started=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "temporary files kept in $work" >&2
    else
        rm -rf "$work"
    fi
}

cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat") || fail "process $1 is gone"
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
