#!/usr/bin/env bash
# Deployment figures: how fast Errand is ready from a cold start, how much
# memory it holds under load, and what running three processes on one
# PostgreSQL does to throughput. Prints a short report and writes it to
# bench/results/deploy-<date>.txt (raw wrk output and JSON beside it).
#
#   bash bench/deploy.sh                          # about 4 minutes after the build
#   SKIP_BUILD=1 DURATION=10 ROUNDS=1 COLD_RUNS=5 bash bench/deploy.sh   # a quick look
#
# Needs python3; wrk and PostgreSQL are installed if missing, PostgreSQL is
# started if stopped and given the role errand/errand (as bench/run.sh). The
# binary is $CARGO_TARGET_DIR/release/errand (default
# ~/.cache/errand/target), built first with `cargo build --release --locked`
# unless SKIP_BUILD=1. All traffic stays on 127.0.0.1, on free ports.
#
# The figures:
#
# 1. Cold start to ready (target <= 100 ms), on the embedded defaults: a
#    SQLite file and, with no ERRAND_KAFKA_BROKERS, the in-process Kafka
#    cluster. Time from just before the process is spawned to the first 200
#    from GET /readyz, polled every millisecond from Python
#    (bench/deploy_measure.py), so it includes exec, connecting, migrating,
#    loading keys and starting the embedded cluster and jobs. Two cases,
#    COLD_RUNS (15) each, interleaved: (a) a fresh file (every migration
#    runs), (b) an existing, migrated file (a restart: the scale-to-zero
#    case). Median, min and p90 (nearest rank) in ms; each run ends with
#    SIGTERM, and the median time to exit is reported too.
# 2. Resident memory under createTask load (target: peak <= 64 MB), same
#    defaults, fresh file: VmRSS of the errand process from
#    /proc/<pid>/status, idle before the load (median of 1 s), then sampled
#    every 100 ms while wrk drives bench/create.lua (MEMORY_CONNECTIONS, 16,
#    for DURATION s, no warm-up so first-touch growth counts): median and
#    peak, with the kernel's high-water mark (VmHWM) as a cross-check, and
#    the requests/s wrk reached.
# 3. Three processes against one on the same PostgreSQL (database
#    errand_bench_scale, created fresh and migrated with `errand migrate`):
#    A is one `errand serve` (role all) under wrk with CONNECTIONS (48); B is
#    three `errand serve` on three ports, each with its own embedded Kafka
#    cluster (ERRAND_KAFKA_BROKERS unset), and three wrk in parallel, a third
#    of the connections each, their requests/s summed. ROUNDS (3) of A then
#    B, each after a 2 s warm-up on freshly started processes; medians and
#    the ratio B/A. Every process has a pool of POOL (16) connections. The
#    replicas share one public URL (as behind a load balancer), so one set
#    of tokens works on all of them. On a 2-core machine the ratio measures
#    contention, not scale-out.
#
# Rate limits stay on, set high enough never to refuse, so their counting
# is paid for (as bench/run.sh). Parts 2 and 3 log at the default level
# (one line per request, to a file), as bench/run.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
ROUNDS="${ROUNDS:-3}"
COLD_RUNS="${COLD_RUNS:-15}"
CONNECTIONS="${CONNECTIONS:-48}"
MEMORY_CONNECTIONS="${MEMORY_CONNECTIONS:-16}"
USERS="${USERS:-64}"
POOL="${POOL:-16}"
ADMIN_URL="${BENCH_ADMIN_URL:-postgres://errand:errand@127.0.0.1:5432/postgres}"
DB=errand_bench_scale
DB_URL="${ADMIN_URL%/*}/$DB"
# The address the part 3 replicas say they are reached at (the issuer of
# their tokens); nothing needs to listen there.
PUBLIC_URL="http://127.0.0.1:18480"
RESULTS=bench/results
WORK="$(mktemp -d)"
mkdir -p "$RESULTS" "$WORK/pids"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/errand/target}"
ERRAND="$CARGO_TARGET_DIR/release/errand"
MEASURE=(python3 bench/deploy_measure.py)
REPORT="$RESULTS/deploy-$(date +%Y-%m-%d).txt"

if (( CONNECTIONS % 6 != 0 )); then
    echo "CONNECTIONS ($CONNECTIONS) must divide by 6: two wrk threads for one process, a third each for three" >&2
    exit 1
fi

SERVER_PIDS=()
WRK_PIDS=()
cleanup() {
    # Ours, and what deploy_measure.py started and had not reaped yet.
    local pids=(${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"} ${WRK_PIDS[@]+"${WRK_PIDS[@]}"})
    for f in "$WORK"/pids/*; do
        if [[ -e $f ]]; then pids+=("$(basename "$f")"); fi
    done
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v psql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
if ! pg_isready -q -h 127.0.0.1; then
    pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    sleep 2
fi
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'errand') THEN CREATE ROLE errand LOGIN CREATEDB PASSWORD 'errand'; END IF; END \$\$;"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    echo "==> building release"
    cargo build --release --locked --quiet
fi
[[ -x "$ERRAND" ]] || { echo "no binary at $ERRAND (build it, or unset SKIP_BUILD)" >&2; exit 1; }

# What the processes read must be this script's settings only: the embedded
# defaults in parts 1 and 2 (deploy_measure.py also drops every ERRAND_*
# variable it inherits), and no external broker in part 3.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^ERRAND_' || true)
unset DATABASE_URL

echo "==> 1. cold start to ready, SQLite + embedded Kafka ($COLD_RUNS runs per case)"
"${MEASURE[@]}" cold --errand "$ERRAND" --runs "$COLD_RUNS" --work "$WORK" --pid-dir "$WORK/pids" \
    --out "$RESULTS/deploy-cold.json"

echo "==> 2. resident memory under createTask load, SQLite + embedded Kafka (${DURATION}s)"
"${MEASURE[@]}" memory --errand "$ERRAND" --work "$WORK" --pid-dir "$WORK/pids" \
    --duration "$DURATION" --connections "$MEMORY_CONNECTIONS" --lua bench/create.lua \
    --wrk-out "$RESULTS/deploy-memory-wrk.txt" --out "$RESULTS/deploy-memory.json"

echo "==> 3. three processes against one on PostgreSQL ($ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections)"
MAX_PG="$(psql "$ADMIN_URL" -Atc 'SHOW max_connections')"
if (( 3 * POOL + 10 > MAX_PG )); then
    echo "three pools of $POOL connections do not fit PostgreSQL's max_connections ($MAX_PG); lower POOL" >&2
    exit 1
fi
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$ERRAND" migrate --database-url "$DB_URL" >"$WORK/migrate.log" 2>&1 \
    || { cat "$WORK/migrate.log" >&2; exit 1; }
echo "    minting tokens for $USERS users"
: >"$WORK/tokens"
for n in $(seq 1 "$USERS"); do
    "$ERRAND" token --user "u$n@example.com" --ttl 1h --database-url "$DB_URL" \
        --public-url "$PUBLIC_URL" 2>/dev/null >>"$WORK/tokens"
done
export ERRAND_BENCH_TOKENS="$WORK/tokens"

PORTS=()
start_servers() { # count
    read -r -a PORTS <<<"$("${MEASURE[@]}" free-ports "$1")"
    local i
    for i in "${!PORTS[@]}"; do
        ERRAND_RATE_LIMIT_USER=1000000/s ERRAND_RATE_LIMIT_CLIENT=1000000/s \
            ERRAND_DATABASE_MAX_CONNECTIONS="$POOL" ERRAND_PUBLIC_URL="$PUBLIC_URL" \
            "$ERRAND" serve --database-url "$DB_URL" --listen "127.0.0.1:${PORTS[$i]}" \
            >"$WORK/errand-$i.log" 2>&1 &
        SERVER_PIDS+=($!)
    done
    for i in "${!PORTS[@]}"; do
        local ready=
        for _ in $(seq 1 300); do
            curl -sf -o /dev/null "http://127.0.0.1:${PORTS[$i]}/readyz" && { ready=1; break; }
            kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || break
            sleep 0.1
        done
        if [[ -z $ready ]]; then
            echo "errand on port ${PORTS[$i]} did not become ready:" >&2
            tail -n 30 "$WORK/errand-$i.log" >&2
            exit 1
        fi
    done
    # As bench/run.sh: let the revocation watchers connect before the load.
    sleep 1
}
stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SERVER_PIDS=()
}
load() { # seconds output-prefix|-  (one wrk per running process, connections split evenly)
    local per=$((CONNECTIONS / ${#PORTS[@]})) threads=1 i out
    if (( ${#PORTS[@]} == 1 )); then threads=2; fi
    WRK_PIDS=()
    for i in "${!PORTS[@]}"; do
        if [[ $2 == - ]]; then
            out=/dev/null
        elif (( ${#PORTS[@]} == 1 )); then
            out="$2.txt"
        else
            out="$2-p$((i + 1)).txt"
        fi
        wrk -t"$threads" -c"$per" -d"$1s" --latency -s bench/create.lua \
            "http://127.0.0.1:${PORTS[$i]}" >"$out" &
        WRK_PIDS+=($!)
    done
    for i in "${WRK_PIDS[@]}"; do wait "$i"; done
    WRK_PIDS=()
}
rate() { awk '/Requests\/sec/ {s += $2} END {printf "%.0f", s}' "$@"; }

rm -f "$RESULTS"/deploy-scale-*.txt
for round in $(seq 1 "$ROUNDS"); do
    start_servers 1
    load 2 -
    load "$DURATION" "$RESULTS/deploy-scale-A-r$round"
    stop_servers
    echo "    round $round A (1 process):   $(rate "$RESULTS/deploy-scale-A-r$round.txt") req/s"
    start_servers 3
    load 2 -
    load "$DURATION" "$RESULTS/deploy-scale-B-r$round"
    stop_servers
    echo "    round $round B (3 processes): $(rate "$RESULTS/deploy-scale-B-r$round"-p*.txt) req/s"
done

echo
"${MEASURE[@]}" report --results "$RESULTS" --rounds "$ROUNDS" --connections "$CONNECTIONS" \
    --duration "$DURATION" --pool "$POOL" --cold-runs "$COLD_RUNS" \
    --memory-connections "$MEMORY_CONNECTIONS" | tee "$REPORT"
echo "(written to $REPORT)"
