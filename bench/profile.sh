#!/usr/bin/env bash
# CPU profile of an errand binary under wrk load, createTask and listTasks
# separately, plus the SQL statements / PostgreSQL round trips of one request.
#
#   bash bench/profile.sh ERRAND_BINARY OUTDIR
#   python3 bench/profile_buckets.py OUTDIR   # the tables bench/README.md quotes
#
# Env knobs: RUNS (3 perf runs per operation), PERF_SECS (10), USERS (200),
# CONNECTIONS (64), PORT (18190), CALLGRAPH (perf --call-graph arg, default "dwarf,65528"),
# FP_RUN (set to 1 for one extra run per operation with plain `perf record -g`, frame pointers),
# FREQ (999). Needs PostgreSQL running with role errand/errand (CREATEDB), wrk, perf, strace.
# Sends traffic only to 127.0.0.1.
set -euo pipefail

ERRAND="$(realpath "$1")"
OUT="$(mkdir -p "$2" && realpath "$2")"
RUNS="${RUNS:-3}"
PERF_SECS="${PERF_SECS:-10}"
USERS="${USERS:-200}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT="${PORT:-18190}"
CALLGRAPH="${CALLGRAPH:-dwarf,65528}"
FREQ="${FREQ:-999}"
ADMIN_URL="postgres://errand:errand@127.0.0.1:5432/postgres"
DB=errand_profile
DB_URL="postgres://errand:errand@127.0.0.1:5432/$DB"
BASE="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
PG_LOG="$(pg_lsclusters -h | awk 'NR==1 {print $7}')"
BODY='{"title":"Buy milk","notes":"two liters of oat milk","priority":"high","tags":["home","errand"]}'
SERVER_PID=
WRK_PID=

export DATABASE_URL="$DB_URL" ERRAND_PUBLIC_URL="$BASE" ERRAND_LOG=warn

cleanup() {
    [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null || true
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
    [[ -n "$SERVER_PID" ]] && wait "$SERVER_PID" 2>/dev/null || true
    runuser -u postgres -- psql -qc "ALTER DATABASE $DB RESET log_statement" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start_errand() {
    (cd "$WORK" && exec "$ERRAND" serve --listen "127.0.0.1:$PORT" >"$WORK/errand.log" 2>&1) &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null "$BASE/readyz" && return; sleep 0.1; done
    echo "errand did not start" >&2; cat "$WORK/errand.log" >&2; exit 1
}
stop_errand() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
mint() { (cd "$WORK" && "$ERRAND" token --user "$1" | tail -n1 | awk '{print $NF}'); }

echo "==> fresh database $DB"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
(cd "$WORK" && "$ERRAND" migrate >/dev/null 2>&1)

# ---------------------------------------------------------------- statements
echo "==> statements per request (log_statement = all, strace of PostgreSQL socket writes)"
runuser -u postgres -- psql -qc "ALTER DATABASE $DB SET log_statement = 'all'"
start_errand
PROBE="$(mint probe@example.com)"
create_req() { curl -sf -o /dev/null -X POST -H "Authorization: Bearer $PROBE" -H 'Content-Type: application/json' -d "$BODY" "$BASE/v1/tasks"; }
list_req() { curl -sf -o /dev/null -H "Authorization: Bearer $PROBE" "$BASE/v1/tasks?limit=20"; }
# Warm-up: prepared statements cached on the pooled connection(s).
for _ in 1 2 3; do create_req; list_req; done
for op in create list; do
    for i in 1 2 3; do
        sleep 0.3
        before=$(wc -l <"$PG_LOG")
        strace -f -qq -yy -e trace=write,writev,sendto,sendmsg,read,readv,recvfrom,recvmsg \
            -p "$SERVER_PID" -o "$WORK/strace-$op-$i.txt" &
        STRACE_PID=$!
        sleep 0.5
        "${op}_req"
        sleep 0.5
        kill -INT "$STRACE_PID"; wait "$STRACE_PID" 2>/dev/null || true
        tail -n +"$((before + 1))" "$PG_LOG" | grep -E "$DB (LOG|DETAIL):" >"$OUT/statements-$op-$i.log" || true
        cp "$WORK/strace-$op-$i.txt" "$OUT/strace-$op-$i.txt"
    done
done
stop_errand
runuser -u postgres -- psql -qc "ALTER DATABASE $DB RESET log_statement"
{
    for op in create list; do
        for i in 1 2 3; do
            n=$(grep -cE "LOG:  (statement|execute)" "$OUT/statements-$op-$i.log" || true)
            # Writes to / reads from the PostgreSQL socket (5432) by errand during the request.
            w=$(grep -E '^[0-9]+ +(write|writev|sendto|sendmsg)\(' "$OUT/strace-$op-$i.txt" | grep -c ':5432\]' || true)
            r=$(grep -E '^[0-9]+ +(read|readv|recvfrom|recvmsg)\(' "$OUT/strace-$op-$i.txt" | grep ':5432\]' | grep -vc 'EAGAIN' || true)
            echo "$op probe $i: statements=$n pg_socket_writes=$w pg_socket_reads_with_data=$r"
        done
    done
} | tee "$OUT/statements-summary.txt"

# ---------------------------------------------------------------- profiles
echo "==> starting errand (no statement logging), minting $USERS tokens"
start_errand
echo "errand pid $SERVER_PID" >"$OUT/pids.txt"
: >"$WORK/tokens"
for n in $(seq 1 "$USERS"); do mint "u$n@example.com" >>"$WORK/tokens"; done
python3 - "$WORK/tokens" "$WORK" "$BODY" <<'EOF'
import sys, os
tokens = open(sys.argv[1]).read().split()
work, body = sys.argv[2], sys.argv[3]
head = "local tokens = {\n" + ",\n".join('"%s"' % t for t in tokens) + "\n}\nlocal i = 0\n"
pick = "  i = i + 1\n  local t = tokens[(i % #tokens) + 1]\n"
open(os.path.join(work, "create.lua"), "w").write(head + "request = function()\n" + pick + (
    '  return wrk.format("POST", "/v1/tasks", {["Authorization"]="Bearer "..t, '
    "[\"Content-Type\"]=\"application/json\"}, '" + body + "')\nend\n"))
open(os.path.join(work, "list.lua"), "w").write(head + "request = function()\n" + pick + (
    '  return wrk.format("GET", "/v1/tasks?limit=20", {["Authorization"]="Bearer "..t})\nend\n'))
EOF
cp "$WORK/create.lua" "$WORK/list.lua" "$OUT/" 2>/dev/null || true
# Warm-up: pool connections, token cache, some tasks for every user to list.
wrk -t2 -c"$CONNECTIONS" -d5s -s "$WORK/create.lua" "$BASE" >/dev/null

for run in $(seq 1 "$RUNS"); do
    for op in create list; do
        echo "==> run $run $op: wrk $((PERF_SECS + 8))s, perf record ${PERF_SECS}s from second 4"
        wrk -t2 -c"$CONNECTIONS" -d"$((PERF_SECS + 8))s" --latency -s "$WORK/$op.lua" "$BASE" \
            >"$OUT/wrk-$op-r$run.txt" 2>&1 &
        WRK_PID=$!
        sleep 4
        perf record -q -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -p "$SERVER_PID" \
            -o "$OUT/perf-$op-r$run.data" -- sleep "$PERF_SECS" 2>"$OUT/perf-$op-r$run.record.log" || true
        wait "$WRK_PID" || true
        WRK_PID=
        grep -E "Requests/sec|99%|50%|Non-2xx|Socket errors" "$OUT/wrk-$op-r$run.txt" | tr -s ' ' | paste -sd' ' -
    done
done
if [[ "${FP_RUN:-0}" == 1 ]]; then
    for op in create list; do
        echo "==> $op with plain -g (frame-pointer call graphs), for comparison"
        wrk -t2 -c"$CONNECTIONS" -d"$((PERF_SECS + 8))s" --latency -s "$WORK/$op.lua" "$BASE" \
            >"$OUT/wrk-$op-fp.txt" 2>&1 &
        WRK_PID=$!
        sleep 4
        perf record -q -F "$FREQ" -g -p "$SERVER_PID" -o "$OUT/perffp-$op.data" -- sleep "$PERF_SECS" \
            2>"$OUT/perffp-$op.record.log" || true
        wait "$WRK_PID" || true
        WRK_PID=
        grep -E "Requests/sec|99%|50%" "$OUT/wrk-$op-fp.txt" | tr -s ' ' | paste -sd' ' -
    done
fi
stop_errand
echo "==> done; outputs in $OUT"
