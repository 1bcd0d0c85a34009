#!/usr/bin/env python3
"""Every MCP tool against the HTTP operation it is, side by side in one run.

For each of the twelve tools, wrk drives `POST /mcp` (`tools/call`, the
2026-07-28 wire: `_meta` and routing headers, as ChatGPT sends it) and the
same operation over plain HTTP, with the same users, on PostgreSQL, in
interleaved rounds; the report gives each side's median requests/s and p99
and the median of the rounds' ratios MCP / HTTP (target: at least 0.9 for
every tool).

Calls that change data repeat the same change, so after the first they take
the path an idempotent repeat takes (completeTask of a done task, updateTask
to the value it has); deleteTask and cancelReminder aim at nothing (404 on
both sides) and createReminder soon meets the per-task limit (409 on both
sides): each pair still compares the same work.

    cargo build --release
    python3 bench/mcp_vs_http.py                # 5 rounds of 6 s per side and tool (~13 min)
    ROUNDS=1 DURATION=5 python3 bench/mcp_vs_http.py

Needs PostgreSQL (started if stopped; the role errand/errand made as in
bench/deploy.sh unless BENCH_ADMIN_URL names another) and wrk. Results: bench/results/mcp-*.txt.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/errand/target"))
ERRAND = os.environ.get("ERRAND_BIN", os.path.join(TARGET, "release", "errand"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION = int(os.environ.get("DURATION", "6"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
USERS = 32
PORT = int(os.environ.get("BENCH_PORT", "18090"))
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgres://errand:errand@127.0.0.1:5432/postgres")
DB = "errand_bench_mcp"
DB_URL = ADMIN_URL.rsplit("/", 1)[0] + "/" + DB
BASE = f"http://127.0.0.1:{PORT}"
MISSING = "0192f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f"

# (tool, arguments, HTTP method, path, HTTP body)
CASES = [
    ("listTasks", {}, "GET", "/v1/tasks", None),
    ("getAgenda", {"tz": "UTC"}, "GET", "/v1/agenda?tz=UTC", None),
    ("getTask", {"number": 1}, "GET", "/v1/tasks/1", None),
    ("listReminders", {}, "GET", "/v1/reminders", None),
    ("getMe", {}, "GET", "/v1/me", None),
    ("createTask", {"title": "Benchmark task", "tags": ["bench"]}, "POST", "/v1/tasks",
     {"title": "Benchmark task", "tags": ["bench"]}),
    ("updateTask", {"number": 2, "priority": "high"}, "PATCH", "/v1/tasks/2", {"priority": "high"}),
    ("completeTask", {"number": 3}, "POST", "/v1/tasks/3/complete", None),
    ("reopenTask", {"number": 4}, "POST", "/v1/tasks/4/reopen", None),
    ("createReminder", {"number": 5, "before_due": "PT1H"}, "POST", "/v1/tasks/5/reminders",
     {"before_due": "PT1H"}),
    ("cancelReminder", {"reminder_id": MISSING}, "DELETE", f"/v1/reminders/{MISSING}", None),
    ("deleteTask", {"number": 999999}, "DELETE", "/v1/tasks/999999", None),
]

# Each thread formats its requests once: per request wrk only hands one
# over, so the load generator (which shares the two cores) costs the same
# on both sides however many headers a side sends.
LUA = """
local requests = {}
for line in io.lines("%(tokens)s") do
  local headers = %(headers)s
  headers["Authorization"] = "Bearer " .. line
  requests[#requests + 1] = wrk.format("%(method)s", "%(path)s", headers, %(body)s)
end
local i = math.random(#requests)
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""


def lua_string(text):
    return json.dumps(text) if text is not None else "nil"


def lua_table(headers):
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def request(method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as answer:
        return json.loads(answer.read() or b"null")


def wrk(script, path):
    out = run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-s", script, BASE + path]).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if non2xx else 0, out


def main():
    if not os.path.exists(ERRAND):
        sys.exit(f"no release build at {ERRAND}: cargo build --release")
    if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode != 0:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        run(["pg_ctlcluster", version, "main", "start"])
        time.sleep(2)
    if "BENCH_ADMIN_URL" not in os.environ:
        # The role the default address names, as bench/deploy.sh makes it.
        run(["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1", "-c",
             "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'errand') THEN "
             "CREATE ROLE errand LOGIN CREATEDB PASSWORD 'errand'; END IF; END $$;"])
    run(["psql", ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", "-c", f"CREATE DATABASE {DB}"])
    run([ERRAND, "migrate", "--database-url", DB_URL])
    work = tempfile.mkdtemp()
    env = dict(os.environ, ERRAND_DATABASE_URL=DB_URL, ERRAND_LISTEN=f"127.0.0.1:{PORT}",
               ERRAND_PUBLIC_URL=BASE, ERRAND_LOG="warn", ERRAND_MAIL_DIR=os.path.join(work, "mail"),
               ERRAND_DATABASE_MAX_CONNECTIONS="16")
    tokens = {"api": [], "mcp": []}
    for n in range(USERS):
        for resource in tokens:
            tokens[resource].append(run([ERRAND, "token", "--user", f"bench{n}@example.com", "--ttl", "2h",
                                         "--resource", resource], env=env).stdout.strip())
    server = subprocess.Popen([ERRAND, "serve", "--role", "api"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "errand.log"), "w"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(BASE + "/readyz")
                break
            except OSError:
                time.sleep(0.1)
        for token in tokens["api"]:
            for n in range(25):
                body = {"title": f"Seeded task {n}", "tags": ["bench"]}
                if n % 2 == 0:
                    body["due_at"] = f"2099-01-{n % 28 + 1:02d}T09:00:00Z"
                request("POST", "/v1/tasks", token, body)
            request("POST", "/v1/tasks/1/reminders", token, {"before_due": "PT1H"})
        files = {}
        for resource, values in tokens.items():
            files[resource] = os.path.join(work, f"{resource}.tokens")
            with open(files[resource], "w") as f:
                f.write("\n".join(values) + "\n")
        results = {}
        for round_no in range(ROUNDS):
            for tool, arguments, method, path, body in CASES:
                scripts = {}
                http_script = os.path.join(work, f"{tool}-http.lua")
                with open(http_script, "w") as f:
                    f.write(LUA % {"tokens": files["api"], "headers": lua_table({"Content-Type": "application/json"}),
                                   "method": method, "path": path,
                                   "body": lua_string(json.dumps(body) if body is not None else None)})
                scripts["http"] = (http_script, path)
                call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                    "name": tool, "arguments": arguments,
                    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                              "io.modelcontextprotocol/clientCapabilities": {}}}}
                mcp_script = os.path.join(work, f"{tool}-mcp.lua")
                with open(mcp_script, "w") as f:
                    f.write(LUA % {"tokens": files["mcp"], "headers": lua_table({
                        "Content-Type": "application/json", "Accept": "application/json",
                        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}),
                        "method": "POST", "path": "/mcp", "body": lua_string(json.dumps(call))})
                scripts["mcp"] = (mcp_script, "/mcp")
                for side in ("http", "mcp") if round_no % 2 == 0 else ("mcp", "http"):
                    script, target = scripts[side]
                    rps, p99, non2xx, _ = wrk(script, target)
                    results.setdefault((tool, side), []).append((rps, p99, non2xx))
                    print(f"round {round_no + 1} {tool:15} {side:4} {rps:9.0f} req/s  p99 {p99:6.1f} ms"
                          + (f"  ({non2xx} non-2xx)" if non2xx else ""), flush=True)
        lines = ["| tool | HTTP req/s (p99) | MCP req/s (p99) | MCP / HTTP |", "| --- | ---: | ---: | ---: |"]
        worst = None
        for tool, *_ in CASES:
            http = results[(tool, "http")]
            mcp = results[(tool, "mcp")]
            h = statistics.median(r[0] for r in http)
            m = statistics.median(r[0] for r in mcp)
            hp = statistics.median(r[1] for r in http)
            mp = statistics.median(r[1] for r in mcp)
            # The median of each round's own ratio: the two sides of a round
            # ran back to back, so drift between rounds (a checkpoint, a
            # growing table) falls out of it.
            ratio = statistics.median(m_[0] / h_[0] for h_, m_ in zip(http, mcp) if h_[0])
            worst = ratio if worst is None else min(worst, ratio)
            lines.append(f"| {tool} | {h:,.0f} ({hp:.1f} ms) | {m:,.0f} ({mp:.1f} ms) | {ratio:.2f} |")
        report = "\n".join(lines) + f"\n\nlowest ratio: {worst:.2f} (target 0.90)\n"
        print("\n" + report)
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", f"mcp-{time.strftime('%Y%m%dT%H%M%S')}.txt"), "w") as f:
            f.write(report)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
