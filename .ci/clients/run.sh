#!/usr/bin/env bash
# The contract in the hands of client generators: both OpenAPI documents of a
# running errand (fresh SQLite database) generate clients with
# openapi-python-client (its defaults) and with openapi-typescript +
# openapi-fetch, and each client is driven through create, list, update,
# complete, delete and one error (.ci/clients/smoke.py, smoke.ts).
# Usage: bash .ci/clients/run.sh path/to/errand
set -euo pipefail

ERRAND=$(realpath "${1:?usage: clients/run.sh path/to/errand}")
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/errand
# Pinned: a red run is caused by a change here, not by a generator release.
PY_GENERATOR=openapi-python-client==0.29.1
NPM_PACKAGES=(openapi-typescript@7.13.0 openapi-fetch@0.17.0 typescript@5.9.3 @types/node@20.19.43)
VENV=${CLIENTS_VENV:-$CACHE/client-gen-venv}
NPM_DIR=${CLIENTS_NPM:-$CACHE/client-gen-npm}

if ! "$VENV/bin/pip" show --quiet "${PY_GENERATOR%%==*}" 2>/dev/null \
    || [[ "$("$VENV/bin/pip" show "${PY_GENERATOR%%==*}" | sed -n 's/^Version: //p')" != "${PY_GENERATOR##*==}" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "$PY_GENERATOR"
fi
installed() { node -e "process.exit(require('$NPM_DIR/node_modules/$1/package.json').version === '$2' ? 0 : 1)" 2>/dev/null; }
for package in "${NPM_PACKAGES[@]}"; do
    if ! installed "${package%@*}" "${package##*@}"; then
        mkdir -p "$NPM_DIR"
        npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" >/dev/null
        break
    fi
done

# Under the npm folder, so that Node and tsc find its node_modules.
WORK=$(mktemp -d "$NPM_DIR/run.XXXXXX")
SERVER=
cleanup() {
    if [[ -n "$SERVER" ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export ERRAND_LISTEN="127.0.0.1:$PORT" ERRAND_DATABASE_URL="sqlite://$WORK/errand.db" ERRAND_LOG=warn
TOKEN=$("$ERRAND" token --user clients@example.com --scope "tasks:read tasks:write" --ttl 1h)

"$ERRAND" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do
    curl -fsS "$BASE/readyz" > /dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.5
done

status=0
for document in openapi.json openapi/gpt-actions.json; do
    name=$(basename "$document" .json)
    out="$WORK/$name"
    mkdir -p "$out"
    curl -fsS "$BASE/$document" -o "$out/document.json"

    echo "== openapi-python-client: /$document"
    # Its post-generation hooks run ruff, which the venv has.
    if (cd "$out" && PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate \
            --path document.json --output-path python --fail-on-warning) \
        && "$VENV/bin/python" "$HERE/smoke.py" "$out/python" "$BASE" "$TOKEN"; then :; else status=1; fi

    echo "== openapi-typescript + openapi-fetch: /$document"
    mkdir -p "$out/ts"
    cp "$HERE/smoke.ts" "$out/ts/smoke.ts"
    # "type": "module": the compiled smoke test is an ES module.
    printf '{"type": "module"}\n' > "$out/ts/package.json"
    if "$NPM_DIR/node_modules/.bin/openapi-typescript" "$out/document.json" -o "$out/ts/schema.d.ts" \
        && (cd "$out/ts" && "$NPM_DIR/node_modules/.bin/tsc" --strict --target es2022 \
            --module nodenext --moduleResolution nodenext --types node smoke.ts) \
        && node "$out/ts/smoke.js" "$BASE" "$TOKEN"; then :; else status=1; fi
done
if [[ $status -ne 0 && -s "$WORK/server.log" ]]; then
    echo "== the server logged:"
    cat "$WORK/server.log"
fi
exit $status
