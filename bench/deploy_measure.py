"""Measurements for bench/deploy.sh: cold start to ready, resident memory under
createTask load, and the report. Standard library only.

    python3 bench/deploy_measure.py free-ports N
    python3 bench/deploy_measure.py cold --errand BIN --runs N --work DIR --pid-dir DIR --out JSON
    python3 bench/deploy_measure.py memory --errand BIN --work DIR --pid-dir DIR --duration S \
        --connections C --users U --wrk-out FILE --out JSON
    python3 bench/deploy_measure.py report --results DIR --rounds R --connections C \
        --duration S --pool P --cold-runs N --memory-connections C

Every process started here has its pid written to a file of its own in
--pid-dir until it has been reaped, so that deploy.sh's exit trap can stop
what an interrupted run left behind.
"""

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HOST = "127.0.0.1"
# What a process on the embedded defaults reads: nothing inherited from the
# caller's environment may point it at a broker or another database.
DROPPED_ENV = ("DATABASE_URL",)


def free_ports(count):
    """Ports nothing listens on, all held at once so that they differ."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def clean_env(**settings):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ERRAND_") and k not in DROPPED_ENV}
    env.update(settings)
    return env


class Children:
    """Started processes, their pids kept in --pid-dir until reaped."""

    def __init__(self, pid_dir):
        self.pid_dir = pid_dir
        os.makedirs(pid_dir, exist_ok=True)

    def spawn(self, argv, env, log_path):
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
        with open(os.path.join(self.pid_dir, str(proc.pid)), "w"):
            pass
        return proc

    def stop(self, proc, timeout=30.0):
        """SIGTERM, then wait (SIGKILL after `timeout`); returns seconds taken."""
        start = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        taken = time.monotonic() - start
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.pid_dir, str(proc.pid)))
        return taken


class Failed(Exception):
    pass


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_ready(proc, port, start, log_path, limit=60.0, pause=0.001):
    """Seconds from `start` to the first 200 from GET /readyz.

    `serve` binds its port before it migrates and starts its jobs, so a
    connection may be accepted well before it is answered: the request then
    waits in the kernel's backlog and the answer arrives the moment the
    server starts serving. Refused connections are retried every `pause`.
    """
    while True:
        if proc.poll() is not None:
            raise Failed(f"errand exited with {proc.returncode} before it was ready:\n{tail(log_path)}")
        if time.monotonic() - start > limit:
            raise Failed(f"errand was not ready after {limit:.0f} s:\n{tail(log_path)}")
        conn = http.client.HTTPConnection(HOST, port, timeout=limit)
        try:
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return time.monotonic() - start
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or the connection closed: try again
        finally:
            conn.close()
        time.sleep(pause)


def percentile(values, p):
    """Nearest rank: the smallest value with at least p% of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "p90": percentile(values, 90),
        "max": max(values),
        "n": len(values),
    }


# ---------------------------------------------------------------- cold start


def cold(args):
    children = Children(args.pid_dir)
    root = os.path.join(args.work, "cold")
    os.makedirs(root, exist_ok=True)
    log_path = os.path.join(root, "errand.log")
    existing_db = os.path.join(root, "existing", "errand.db")
    os.makedirs(os.path.dirname(existing_db))

    def one(db_path):
        (port,) = free_ports(1)
        env = clean_env(
            ERRAND_DATABASE_URL=f"sqlite://{db_path}",
            ERRAND_LISTEN=f"{HOST}:{port}",
            ERRAND_LOG="warn",
        )
        start = time.monotonic()
        proc = children.spawn([args.errand, "serve"], env, log_path)
        try:
            ready = wait_ready(proc, port, start, log_path)
        finally:
            stopped = children.stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            print(f"warning: errand exited with {proc.returncode} after SIGTERM", file=sys.stderr)
        return ready * 1000, stopped * 1000

    fresh_count = 0

    def fresh():
        nonlocal fresh_count
        fresh_count += 1
        directory = os.path.join(root, f"fresh-{fresh_count}")
        os.makedirs(directory)
        try:
            return one(os.path.join(directory, "errand.db"))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    # Untimed: the first start pages the binary in; the second leaves the
    # existing file as a first deployment would (migrated, keys generated).
    fresh()
    one(existing_db)
    results = {"fresh": [], "existing": [], "stop_fresh": [], "stop_existing": []}
    # Interleaved, so that whatever else the machine does falls on both.
    for i in range(args.runs):
        for case, run in (("fresh", fresh), ("existing", lambda: one(existing_db))):
            ready, stopped = run()
            results[case].append(ready)
            results[f"stop_{case}"].append(stopped)
            print(f"run {i + 1:2}/{args.runs} {case:8} ready in {ready:7.1f} ms "
                  f"(stopped in {stopped:6.1f} ms)", flush=True)
    with open(args.out, "w") as f:
        json.dump({"runs_ms": results,
                   "summary_ms": {k: summary(v) for k, v in results.items()}}, f, indent=2)


# ---------------------------------------------------------------- memory


def status_kb(pid):
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem from /proc/<pid>/status, in kB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0])
    return fields


def memory(args):
    children = Children(args.pid_dir)
    root = os.path.join(args.work, "memory")
    os.makedirs(root)
    log_path = os.path.join(root, "errand.log")
    db_url = f"sqlite://{root}/errand.db"
    (port,) = free_ports(1)
    public_url = f"http://{HOST}:{port}"
    env = clean_env(
        ERRAND_DATABASE_URL=db_url,
        ERRAND_LISTEN=f"{HOST}:{port}",
        # High enough never to refuse: counting every request is paid for,
        # as in production, without being throttled (as bench/run.sh).
        ERRAND_RATE_LIMIT_USER="1000000/s",
        ERRAND_RATE_LIMIT_CLIENT="1000000/s",
    )
    proc = children.spawn([args.errand, "serve"], env, log_path)
    try:
        wait_ready(proc, port, time.monotonic(), log_path, pause=0.05)
        tokens = os.path.join(root, "tokens")
        with open(tokens, "w") as out:
            for n in range(1, args.users + 1):
                subprocess.run(
                    [args.errand, "token", "--user", f"u{n}@example.com", "--ttl", "1h",
                     "--database-url", db_url, "--public-url", public_url],
                    env=clean_env(ERRAND_LOG="warn"), stdout=out, check=True)
        # Idle: the revocation watcher connected, nothing asked yet.
        time.sleep(1.0)
        idle_samples = []
        for _ in range(10):
            idle_samples.append(status_kb(proc.pid))
            time.sleep(0.1)
        idle = statistics.median(s["VmRSS"] for s in idle_samples)
        hwm_before = idle_samples[-1]["VmHWM"]

        wrk_env = dict(os.environ, ERRAND_BENCH_TOKENS=tokens)
        samples = []
        with open(args.wrk_out, "w") as out:
            wrk = subprocess.Popen(
                ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                 "-s", args.lua, public_url],
                env=wrk_env, stdout=out, stderr=subprocess.STDOUT)
            with open(os.path.join(args.pid_dir, str(wrk.pid)), "w"):
                pass
            try:
                started = time.monotonic()
                tick = started
                while wrk.poll() is None:
                    if proc.poll() is not None:
                        raise Failed(f"errand exited with {proc.returncode} under load:\n{tail(log_path)}")
                    sample = status_kb(proc.pid)
                    sample["t"] = time.monotonic() - started
                    samples.append(sample)
                    tick += 0.1
                    time.sleep(max(0.0, tick - time.monotonic()))
            finally:
                children.stop(wrk)
        if wrk.returncode != 0:
            raise Failed(f"wrk failed ({wrk.returncode}):\n{tail(args.wrk_out)}")
        time.sleep(1.0)
        after = status_kb(proc.pid)
    finally:
        children.stop(proc)
    if not samples:
        raise Failed("no RSS sample was taken during the load")
    rss = [s["VmRSS"] for s in samples]
    peak = max(samples, key=lambda s: s["VmRSS"])
    with open(args.out, "w") as f:
        json.dump({
            "idle_kb": idle,
            "hwm_before_load_kb": hwm_before,
            "load_median_kb": statistics.median(rss),
            "load_peak_kb": peak["VmRSS"],
            "load_peak_sample": peak,
            "hwm_after_load_kb": after["VmHWM"],
            "after_load_kb": after["VmRSS"],
            "samples": samples,
            "wrk": parse_wrk(args.wrk_out),
        }, f, indent=2)


# ---------------------------------------------------------------- report


def parse_wrk(path):
    with open(path) as f:
        text = f.read()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rate:
        raise Failed(f"no Requests/sec in {path}:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)

    def latency(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return {
        "rps": float(rate.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "p50_ms": latency("50%"),
        "p99_ms": latency("99%"),
    }


def mb(kb):
    return kb / 1024


def report(args):
    out = []
    say = out.append
    cores = os.cpu_count()
    say(f"Errand deployment figures, {time.strftime('%Y-%m-%d %H:%M')}, {cores} cores "
        f"(load generator, Errand and the database share them)")
    say("")

    with open(os.path.join(args.results, "deploy-cold.json")) as f:
        cold_data = json.load(f)["summary_ms"]
    say(f"1. Cold start to ready, SQLite + embedded Kafka ({args.cold_runs} runs each, "
        f"spawn to first 200 from /readyz; target <= 100 ms)")
    say(f"   {'case':40} {'median':>8} {'min':>8} {'p90':>8}   verdict")
    for case, label in (("fresh", "(a) fresh file, migrations run"),
                        ("existing", "(b) existing file (restart)")):
        s = cold_data[case]
        verdict = "meets" if s["median"] <= 100 and s["p90"] <= 100 else (
            "median meets, p90 misses" if s["median"] <= 100 else "misses")
        say(f"   {label:40} {s['median']:6.1f}ms {s['min']:6.1f}ms {s['p90']:6.1f}ms   {verdict}")
    say(f"   SIGTERM to exit (median): fresh {cold_data['stop_fresh']['median']:.0f} ms, "
        f"existing {cold_data['stop_existing']['median']:.0f} ms")
    say("")

    with open(os.path.join(args.results, "deploy-memory.json")) as f:
        m = json.load(f)
    w = m["wrk"]
    peak = m["load_peak_sample"]
    verdict = "meets" if mb(m["load_peak_kb"]) <= 64 else "misses"
    say(f"2. Resident memory (VmRSS) under createTask load, SQLite + embedded Kafka "
        f"(wrk {args.memory_connections} connections, {args.duration} s, sampled every 100 ms; "
        f"target peak <= 64 MB)")
    say(f"   idle before load      {mb(m['idle_kb']):6.1f} MB")
    say(f"   median during load    {mb(m['load_median_kb']):6.1f} MB")
    say(f"   peak during load      {mb(m['load_peak_kb']):6.1f} MB   {verdict} "
        f"(anon {mb(peak['RssAnon']):.1f}, file {mb(peak['RssFile']):.1f}, "
        f"shmem {mb(peak['RssShmem']):.1f} MB)")
    say(f"   kernel high-water mark {mb(m['hwm_after_load_kb']):5.1f} MB "
        f"(before load {mb(m['hwm_before_load_kb']):.1f} MB); 1 s after load {mb(m['after_load_kb']):.1f} MB")
    say(f"   createTask {w['rps']:.0f} req/s, p50 {fmt_ms(w['p50_ms'])}, p99 {fmt_ms(w['p99_ms'])}"
        f"{errors_note(w)}")
    say("")

    a, b = [], []
    for r in range(1, args.rounds + 1):
        a.append(parse_wrk(os.path.join(args.results, f"deploy-scale-A-r{r}.txt")))
        b.append([parse_wrk(os.path.join(args.results, f"deploy-scale-B-r{r}-p{p}.txt"))
                  for p in (1, 2, 3)])
    say(f"3. createTask on one PostgreSQL: three processes against one ({args.connections} "
        f"connections in all, {args.duration} s, {args.rounds} rounds interleaved, "
        f"pool {args.pool} per process)")
    for r, (one, three) in enumerate(zip(a, b), start=1):
        total = sum(x["rps"] for x in three)
        parts = " + ".join(f"{x['rps']:.0f}" for x in three)
        say(f"   round {r}: A {one['rps']:7.0f} req/s{errors_note(one)}   "
            f"B {total:7.0f} req/s ({parts}){errors_note(merge(three))}   B/A {total / one['rps']:.2f}")
    median_a = statistics.median(x["rps"] for x in a)
    median_b = statistics.median(sum(x["rps"] for x in three) for three in b)
    say(f"   median: A (1 process) {median_a:.0f} req/s, B (3 processes) {median_b:.0f} req/s, "
        f"B/A {median_b / median_a:.2f}")
    say(f"   This machine has {cores} cores shared by wrk, every Errand process and PostgreSQL:")
    say("   the ratio measures what three processes cost in contention (more pools, more")
    say("   connections, three relays and background jobs), not what they would gain on")
    say("   machines of their own. ERRAND_KAFKA_BROKERS was unset, so each process ran its")
    say("   own embedded Kafka cluster and relayed to it; the relays share one outbox.")
    print("\n".join(out))


def merge(results):
    return {"non_2xx": sum(x["non_2xx"] for x in results),
            "socket_errors": sum(x["socket_errors"] for x in results)}


def errors_note(w):
    notes = []
    if w["non_2xx"]:
        notes.append(f"{w['non_2xx']} non-2xx")
    if w["socket_errors"]:
        notes.append(f"{w['socket_errors']} socket errors")
    return f" [{', '.join(notes)}]" if notes else ""


def fmt_ms(value):
    return "?" if value is None else f"{value:.1f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("free-ports")
    p.add_argument("count", type=int)

    p = sub.add_parser("cold")
    p.add_argument("--errand", required=True)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--work", required=True)
    p.add_argument("--pid-dir", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("memory")
    p.add_argument("--errand", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--pid-dir", required=True)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--lua", default="bench/create.lua")
    p.add_argument("--wrk-out", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--rounds", type=int, required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--duration", type=int, required=True)
    p.add_argument("--pool", type=int, required=True)
    p.add_argument("--cold-runs", type=int, required=True)
    p.add_argument("--memory-connections", type=int, required=True)

    args = parser.parse_args()
    try:
        if args.command == "free-ports":
            print(" ".join(map(str, free_ports(args.count))))
        elif args.command == "cold":
            cold(args)
        elif args.command == "memory":
            memory(args)
        else:
            report(args)
    except Failed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
