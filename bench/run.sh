#!/usr/bin/env bash
# Errand load benchmark: createTask and listTasks over HTTP (wrk, 64
# connections, 20 s each) against pgbench running the same SQL those two
# operations send, in one run on one machine. Prints requests/s, p50/p99 and
# Errand's throughput as a ratio of pgbench's. See bench/README.md.
#
#   bash bench/run.sh            # needs PostgreSQL 15 (started if stopped), wrk
#   DURATION=10 bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-20}"
# Each measurement is taken ROUNDS times, interleaved, and the report gives
# medians: one machine's numbers move by a fifth from run to run.
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
USERS=64
POOL="${ERRAND_DATABASE_MAX_CONNECTIONS:-16}"
PORT="${BENCH_PORT:-18080}"
ADMIN_URL="${BENCH_ADMIN_URL:-postgres://errand:errand@127.0.0.1:5432/postgres}"
DB=errand_bench
DB_URL="${ADMIN_URL%/*}/$DB"
WORK="$(mktemp -d)"
RESULTS="bench/results"
mkdir -p "$RESULTS"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/errand/target}"
ERRAND="$CARGO_TARGET_DIR/release/errand"

cleanup() {
    [[ -n "${SERVER_PID:-}" ]] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v pgbench >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
if ! pg_isready -q -h 127.0.0.1; then
    pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    sleep 2
fi
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'errand') THEN CREATE ROLE errand LOGIN CREATEDB PASSWORD 'errand'; END IF; END \$\$;"

echo "==> building release"
cargo build --release --locked --quiet

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$ERRAND" migrate --database-url "$DB_URL" 2>/dev/null

start_errand() { # [extra serve flags]
    # Limits high enough never to refuse: the benchmark pays for counting
    # every request, as production does, without being throttled.
    ERRAND_RATE_LIMIT_USER=1000000/s ERRAND_RATE_LIMIT_CLIENT=1000000/s \
        ERRAND_DATABASE_MAX_CONNECTIONS="$POOL" "$ERRAND" serve "$@" --database-url "$DB_URL" \
        --listen "127.0.0.1:$PORT" >"$WORK/errand.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
}
stop_errand() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
mint() { # email
    "$ERRAND" token --user "$1" --ttl 1h --database-url "$DB_URL" --public-url "http://127.0.0.1:$PORT" 2>/dev/null
}

# The pgbench side must run exactly the SQL Errand sends. Log one request of
# each kind and check bench/sql/*.sql against it before measuring anything.
echo "==> checking bench/sql against the statements Errand sends"
PG_LOG="$(pg_lsclusters -h | awk 'NR==1 {print $7}')"
runuser -u postgres -- psql -qc "ALTER DATABASE $DB SET log_statement = 'all'"
# API only: the workers' own statements (relay, scheduler, dispatcher) would
# mix into the requests' log.
start_errand --role api
PROBE="$(mint probe@example.com)"
# The steady state: the first request with a token also checks its grant in
# the database (later ones are answered from memory), so use it once first,
# after the revocation watcher has had a moment to connect.
sleep 1
curl -sf -o /dev/null -H "Authorization: Bearer $PROBE" "http://127.0.0.1:$PORT/v1/me"
probe() { # name curl-args...
    local name=$1; shift
    local before; before=$(wc -l <"$PG_LOG")
    curl -sf -o /dev/null -H "Authorization: Bearer $PROBE" "$@"
    sleep 0.5
    tail -n +"$((before + 1))" "$PG_LOG" | grep "$DB LOG:" >"$WORK/$name.log"
}
probe create -X POST -H 'Content-Type: application/json' \
    -d '{"title":"Benchmark task","due_at":"2026-12-01T09:00:00Z","priority":"high","tags":["bench"]}' \
    "http://127.0.0.1:$PORT/v1/tasks"
probe list "http://127.0.0.1:$PORT/v1/tasks"
stop_errand
runuser -u postgres -- psql -qc "ALTER DATABASE $DB RESET log_statement"
python3 bench/pgbench_scripts.py check bench/sql/create.sql "$WORK/create.log"
python3 bench/pgbench_scripts.py check bench/sql/list.sql "$WORK/list.log"

echo "==> starting errand on PostgreSQL (pool $POOL)"
start_errand

echo "==> minting tokens for $USERS users"
: >"$WORK/tokens"
for n in $(seq 1 "$USERS"); do
    mint "bench$n@example.com" >>"$WORK/tokens"
done
export ERRAND_BENCH_TOKENS="$WORK/tokens"
# Warm up connections and caches, and give every user some tasks to list.
wrk -t2 -c"$CONNECTIONS" -d3s -s bench/create.lua "http://127.0.0.1:$PORT" >/dev/null

# One pgbench script per user, with that user's id and grant.
psql "$DB_URL" -Atc "SELECT u.id, g.id FROM users u JOIN oauth_grants g ON g.user_id = u.id WHERE u.email LIKE 'bench%'" \
    | tr '|' '\t' >"$WORK/users.tsv"
python3 bench/pgbench_scripts.py render bench/sql/create.sql "$WORK/create" "$WORK/users.tsv"
python3 bench/pgbench_scripts.py render bench/sql/list.sql "$WORK/list" "$WORK/users.tsv"

rm -f "$RESULTS"/*

run_wrk() { # name script round
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$2" "http://127.0.0.1:$PORT" >"$RESULTS/wrk-$1-r$3.txt"
}

run_pgbench() { # name dir clients round
    local logs="$WORK/pglog-$1-$3-$4"
    mkdir -p "$logs"
    local scripts=()
    for f in "$2"/*.sql; do scripts+=(-f "$f"); done
    PGPASSWORD=errand pgbench -h 127.0.0.1 -U errand -n -M prepared -c "$3" -j 2 -T "$DURATION" \
        -l --log-prefix="$logs/tx" "${scripts[@]}" "$DB" >"$RESULTS/pgbench-$1-c$3-r$4.txt" 2>&1
    cat "$logs"/tx* >"$RESULTS/pgbench-$1-c$3-r$4.latencies"
}

measure() { # name wrk-script pgbench-dir
    for round in $(seq 1 "$ROUNDS"); do
        echo "==> $1 round $round: errand, pgbench -c $POOL, pgbench -c $CONNECTIONS"
        run_wrk "$1" "$2" "$round"
        run_pgbench "$1" "$3" "$POOL" "$round"
        run_pgbench "$1" "$3" "$CONNECTIONS" "$round"
    done
}

measure create bench/create.lua "$WORK/create"

measure list bench/list.lua "$WORK/list"

python3 bench/report.py "$RESULTS" "$POOL" "$CONNECTIONS" "$ROUNDS" | tee "$RESULTS/summary.txt"
