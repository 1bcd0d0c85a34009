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

echo "==> starting errand on PostgreSQL (pool $POOL)"
ERRAND_DATABASE_MAX_CONNECTIONS="$POOL" "$ERRAND" serve --database-url "$DB_URL" \
    --listen "127.0.0.1:$PORT" >"$WORK/errand.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

echo "==> minting tokens for $USERS users"
: >"$WORK/tokens"
for n in $(seq 1 "$USERS"); do
    "$ERRAND" token --user "bench$n@example.com" --ttl 1h --database-url "$DB_URL" \
        --public-url "http://127.0.0.1:$PORT" 2>/dev/null >>"$WORK/tokens"
done
export ERRAND_BENCH_TOKENS="$WORK/tokens"
# Warm up connections and caches, and give every user some tasks to list.
wrk -t2 -c"$CONNECTIONS" -d3s -s bench/create.lua "http://127.0.0.1:$PORT" >/dev/null

# pgbench scripts: the statements Errand sends (from PostgreSQL's statement
# log), one script per user with that user's id, as Errand binds it.
mapfile -t USER_IDS < <(psql "$DB_URL" -Atc "SELECT id FROM users ORDER BY email")
mkdir -p "$WORK/create" "$WORK/list"
for uid in "${USER_IDS[@]}"; do
    cat >"$WORK/create/$uid.sql" <<SQL
BEGIN;
UPDATE "users" SET "task_counter" = "task_counter" + 1 WHERE "users"."id" = '$uid' RETURNING "id", "email", "task_counter", "created_at" \gset
INSERT INTO "tasks" ("id", "user_id", "number", "title", "notes", "status", "priority", "due_at", "created_at", "updated_at", "completed_at", "version") VALUES (gen_random_uuid(), '$uid', :task_counter, 'Benchmark task', NULL, 'open', 2, '2026-12-01 09:00:00+00', now(), now(), NULL, 1) RETURNING "id" AS task_id \gset
INSERT INTO "task_tags" ("task_id", "tag", "user_id") VALUES (:task_id, 'bench', '$uid');
COMMIT;
SQL
done

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

# List scripts are written after the creates so that each lists that user's
# current first page, with the page's task ids bound as Errand binds them.
for uid in "${USER_IDS[@]}"; do
    ids="$(psql "$DB_URL" -Atc "SELECT string_agg(quote_literal(id), ', ') FROM (SELECT id FROM tasks WHERE user_id = '$uid' AND status = 'open' ORDER BY due_at ASC NULLS LAST, number ASC LIMIT 20) page")"
    cat >"$WORK/list/$uid.sql" <<SQL
SELECT "tasks"."id", "tasks"."user_id", "tasks"."number", "tasks"."title", "tasks"."notes", "tasks"."status", "tasks"."priority", "tasks"."due_at", "tasks"."created_at", "tasks"."updated_at", "tasks"."completed_at", "tasks"."version" FROM "tasks" WHERE "tasks"."user_id" = '$uid' AND "tasks"."status" = 'open' ORDER BY "tasks"."due_at" ASC NULLS LAST, "tasks"."number" ASC LIMIT 21;
SELECT "task_tags"."task_id", "task_tags"."tag", "task_tags"."user_id" FROM "task_tags" WHERE "task_tags"."task_id" IN ($ids) ORDER BY "task_tags"."tag" ASC;
SQL
done

measure list bench/list.lua "$WORK/list"

python3 bench/report.py "$RESULTS" "$POOL" "$CONNECTIONS" "$ROUNDS" | tee "$RESULTS/summary.txt"
