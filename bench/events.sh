#!/usr/bin/env bash
# Events benchmark: relay throughput, commit-to-Kafka latency under createTask
# load, and createTask throughput with the outbox against a build from before
# it. Needs PostgreSQL (started if stopped), wrk and a Kafka-protocol broker
# at $BROKERS (e.g. `tansu broker --listener-url tcp://127.0.0.1:9092
# --advertised-listener-url tcp://127.0.0.1:9092 --storage-engine memory://tansu/`).
#
#   bash bench/events.sh                      # relay + latency
#   BEFORE=/path/to/errand bash bench/events.sh   # also createTask against BEFORE
#
# BEFORE is a release build of an earlier commit (git worktree add /tmp/before
# a2321cf; cargo build --release --manifest-path /tmp/before/Cargo.toml, then copy
# the binary aside). Figures go to stdout and bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL:-postgres://errand:errand@127.0.0.1:5432/postgres}"
BROKERS="${BROKERS:-127.0.0.1:9092}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-20}"
ROUNDS="${ROUNDS:-3}"
USERS="${USERS:-64}"
PORT="${PORT:-18300}"
TARGET="${CARGO_TARGET_DIR:-target}"
ERRAND="$TARGET/release/errand"
RESULTS=bench/results
WORK="$(mktemp -d)"
mkdir -p "$RESULTS"
SERVER_PID=
trap '[[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

PG_VERSION="$(ls /etc/postgresql | sort -V | tail -n1)"
pg_ctlcluster "$PG_VERSION" main start 2>/dev/null || true
(exec 3<>"/dev/tcp/${BROKERS%:*}/${BROKERS#*:}") 2>/dev/null \
    || { echo "no Kafka broker at $BROKERS" >&2; exit 1; }

echo "==> building release"
cargo build --release --locked --quiet --bin errand --example relay_throughput --example event_latency

echo "==> relay throughput (100,000 events, $ROUNDS rounds)"
"$TARGET/release/examples/relay_throughput" --admin-url "$ADMIN_URL" --brokers "$BROKERS" \
    --rounds "$ROUNDS" | tee "$RESULTS/relay-throughput.txt"

fresh_db() { # name -> url
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
    echo "${ADMIN_URL%/*}/$1"
}
start() { # binary db-url topic [workers]
    "$1" migrate --database-url "$2" 2>/dev/null
    ERRAND_KAFKA_BROKERS="$BROKERS" ERRAND_KAFKA_TOPIC="$3" ERRAND_LOG=warn \
        ERRAND_ROLE="${4:-all}" "$1" serve --database-url "$2" --listen "127.0.0.1:$PORT" >"$WORK/errand.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
    : >"$WORK/tokens"
    for n in $(seq 1 "$USERS"); do
        "$1" token --user "bench$n@example.com" --ttl 1h --database-url "$2" \
            --public-url "http://127.0.0.1:$PORT" 2>/dev/null >>"$WORK/tokens"
    done
    export ERRAND_BENCH_TOKENS="$WORK/tokens"
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }

# At full load (every core busy), a quarter of the connections (still
# saturating two cores), and two connections (the machine has spare time).
for conns in "$CONNECTIONS" "$((CONNECTIONS / 4))" 2; do
    echo "==> commit-to-Kafka latency under createTask load ($conns connections, ${DURATION}s)"
    TOPIC="errand.bench.latency.$RANDOM$RANDOM"
    start "$ERRAND" "$(fresh_db errand_bench_events)" "$TOPIC"
    wrk -t2 -c"$conns" -d3s -s bench/create.lua "http://127.0.0.1:$PORT" >/dev/null
    "$TARGET/release/examples/event_latency" --brokers "$BROKERS" --topic "$TOPIC" \
        --seconds "$((DURATION + 4))" >"$RESULTS/event-latency-c$conns.txt" &
    LISTENER=$!
    sleep 2
    wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s bench/create.lua \
        "http://127.0.0.1:$PORT" >"$RESULTS/wrk-create-events-c$conns.txt"
    wait "$LISTENER"
    stop
    echo "createTask: $(rate "$RESULTS/wrk-create-events-c$conns.txt") req/s"
    cat "$RESULTS/event-latency-c$conns.txt"
done

if [[ -n "${BEFORE:-}" ]]; then
    # before: the build without the outbox. api: this build serving the API
    # only (ERRAND_ROLE=api), the outbox written and nothing relayed, as
    # an API replica beside separate workers. after: this build with its
    # relay publishing to the broker, all on the same two cores.
    echo "==> createTask with the outbox against before it ($ROUNDS rounds each, alternating)"
    for round in $(seq 1 "$ROUNDS"); do
        for side in before api after; do
            bin="$ERRAND"; [[ $side == before ]] && bin="$BEFORE"
            workers=all; [[ $side == api ]] && workers=api
            start "$bin" "$(fresh_db "errand_bench_$side")" "errand.bench.$side.$RANDOM" "$workers"
            wrk -t2 -c"$CONNECTIONS" -d3s -s bench/create.lua "http://127.0.0.1:$PORT" >/dev/null
            wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/create.lua \
                "http://127.0.0.1:$PORT" >"$RESULTS/wrk-create-$side-r$round.txt"
            stop
            echo "round $round $side: $(rate "$RESULTS/wrk-create-$side-r$round.txt") req/s"
        done
    done
    python3 - "$RESULTS" "$ROUNDS" <<'PY'
import re, statistics, sys
results, rounds = sys.argv[1], int(sys.argv[2])
def rate(side, r):
    text = open(f"{results}/wrk-create-{side}-r{r}.txt").read()
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
before = statistics.median(rate("before", r) for r in range(1, rounds + 1))
api = statistics.median(rate("api", r) for r in range(1, rounds + 1))
after = statistics.median(rate("after", r) for r in range(1, rounds + 1))
print(f"median before {before:.0f} req/s; with the outbox, API only {api:.0f} req/s "
      f"({api / before:.2f}x), with the relay and broker on the same cores {after:.0f} req/s "
      f"({after / before:.2f}x)")
PY
fi
