"""Summarises one bench/run.sh run: for each operation, the median over the
rounds of requests/s, p50 and p99 for Errand (wrk) and for pgbench running
the same SQL, and Errand's throughput as a ratio of pgbench's.

The ratio says how much of the database's capacity for that SQL reaches
callers; it has no target of its own (a listing is one index lookup, which
pgbench runs far faster than any HTTP service on the same cores can; the
throughput target is set against the reference service, see bench/README.md).
The p99 targets are checked: listTasks at most 20 ms, createTask under 25 ms."""

import re
import statistics
import sys
from pathlib import Path

results, pool, connections, rounds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
TARGET_P99_MS = {"create": 25.0, "list": 20.0}


def ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(name: str, round_: int):
    text = (results / f"wrk-{name}-r{round_}.txt").read_text()
    if "Non-2xx" in text or "Socket errors" in text:
        sys.exit(f"wrk {name}: errors during the run:\n{text}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    return rps, p50, p99


def pgbench(name: str, clients: str, round_: int):
    text = (results / f"pgbench-{name}-c{clients}-r{round_}.txt").read_text()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    if not match or (failed and failed.group(1) != "0"):
        sys.exit(f"pgbench {name}: run failed:\n{text}")
    latencies = sorted(
        int(line.split()[2]) / 1000.0
        for line in (results / f"pgbench-{name}-c{clients}-r{round_}.latencies").read_text().splitlines()
        if line.strip()
    )
    q = statistics.quantiles(latencies, n=100)
    return float(match.group(1)), q[49], q[98]


def medians(samples):
    return tuple(statistics.median(column) for column in zip(*samples))


ok = True
print(f"medians of {rounds} rounds; Errand through wrk at {connections} connections (pool {pool})")
print(f"{'':30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
for name, operation in [("create", "createTask"), ("list", "listTasks")]:
    rps, p50, p99 = medians([wrk(name, r) for r in range(1, rounds + 1)])
    print(f"{operation + ' errand':30} {rps:8.0f} {p50:8.2f} {p99:8.2f}")
    baseline = {}
    for clients in (pool, connections):
        tps, b50, b99 = medians([pgbench(name, clients, r) for r in range(1, rounds + 1)])
        baseline[clients] = tps
        print(f"{operation + ' pgbench -c ' + clients:30} {tps:8.0f} {b50:8.2f} {b99:8.2f}")
    same = rps / baseline[connections]
    best = rps / max(baseline.values())
    limit = TARGET_P99_MS[name]
    p99_ok = p99 <= limit
    ok &= p99_ok
    print(
        f"{operation + ' ratio':30} {same:8.2f} vs pgbench -c {connections}; "
        f"{best:.2f} vs the faster pgbench; p99 {'ok' if p99_ok else 'MISSED'} (target <= {limit:.0f} ms)"
    )
sys.exit(0 if ok else 1)
