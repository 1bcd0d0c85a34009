#!/usr/bin/env python3
"""Bucket perf samples of errand by where the CPU time goes.

    python3 bench/profile_buckets.py OUTDIR [PERF_SECS]   # reads OUTDIR/perf-{create,list}-r*.data and
                                            # OUTDIR/wrk-{create,list}-r*.txt (PERF_SECS: 10)

For each perf.data it runs `perf script` (call chains, leaf first) and classifies:

* self:       the leaf frame's bucket (what `perf report --no-children` shows);
* attributed: walking up from the leaf, the first frame in a "domain" bucket
              (PostgreSQL client, ORM, JSON, HTTP, logging, JWT/crypto, errand's own
              code); kernel, allocator, libc, std/core and tokio frames are charged
              to the domain code that called them. Samples with no domain frame on
              the stack keep their leaf bucket (e.g. tokio's idle/park, epoll).
              Exception: any sample under sea-orm's FromQueryResult/TryGetable (row
              to model decoding, which calls sqlx's Row::try_get and decoders) is ORM.

Prints per-run and median tables (percent of errand's samples), and the top 25
leaf symbols over all runs of an operation, and writes OUTDIR/buckets.json.
"""
import collections, glob, json, os, re, statistics, subprocess, sys

# Checked first, in order: code that is named after one crate but does another's work
# (serde derives in errand's types, sea-orm derives on errand's entities, libc syscall
# wrappers and the vDSO clock).
PRIORITY = [
    ("JSON (serde_json)", r"serde_core::ser::Serialize for|serde_core::de::Deserialize|as serde_core::|serde::ser::Serialize for|serde::de::Deserialize|errand::web::json_body|errand::web::json::"),
    ("ORM (sea-orm/sea-query)", r"as sea_orm::"),
    ("kernel/syscalls", r"^(__send|__libc_recv|__libc_send|__recv|__GI___pthread_(en|dis)able_asynccancel|__vdso_clock_gettime|clock_gettime|__GI___clock_gettime|epoll_wait|__GI_epoll_wait|syscall|__GI___futex|__futex|__lll_lock|__write|__read|writev|__libc_write|__libc_read)\b"),
]
# Earliest match in the symbol decides among these (a trait impl `<A as B>::f` is A's code).
DOMAIN = [
    ("JSON (serde_json)", r"serde_json|serde_core|serde_path_to_error|\bryu::|\bitoa::|as serde::ser::Serialize>|as serde::de::Deserialize>|serde::ser::|serde::de::|ParseFromJSON|ToJSON"),
    ("PostgreSQL client (sqlx, TLS, socket)", r"sqlx|rustls|ring_core_|\bring::|tokio_rustls|webpki|\bgcm_|aes_hw|aes_nohw|ChaCha20|chacha20_poly1305|\bsha256_block|\bsha512_block"),
    ("ORM (sea-orm/sea-query)", r"sea_orm|sea_query|sea_schema"),
    ("HTTP (poem/hyper)", r"poem|hyper|httparse|\bhttp::|\bh2::|\bheaders::|\btower|\bmime::|\bcookie::|form_urlencoded|serde_urlencoded"),
    ("logging (tracing)", r"tracing"),
    ("JWT/crypto (jsonwebtoken, ed25519, sha2)", r"jsonwebtoken|ed25519|curve25519|\bsha2::|\bbase64::|\bsignature::|\bsubtle::|\bdigest::|\bpkcs8::|\bspki::|\bder::"),
    ("errand (own code)", r"\berrand::|errand_migrations"),
]
INFRA = [
    ("allocation (mimalloc)", r"^_?mi_|mimalloc|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|__rg_|^alloc::alloc::|alloc::raw_vec::|RawVec|finish_grow|_mi_"),
    ("other: tokio runtime", r"\btokio::|\bmio::|tokio_util|atomic_waker|event_listener|parking_lot|futures_util|futures_core|futures_channel|async_stream|\bpin_project"),
    ("other: libc mem*/str*", r"^__?mem|^mem(cpy|move|set|cmp)|^bcmp|^__str|^str(len|cmp)|__memcpy|__memmove|__memset"),
    ("other: std/core/uuid/chrono", r"^(core|std|alloc)::|^<(core|std|alloc)::|\buuid::|\bchrono::|hashbrown|smallvec|bytes::|indexmap|\bonce_cell|\bstd::|foldhash|memchr|\beither::|__rustc::|\bsmol_str|\bregex|\bonce_cell|^<(T|&T|str|&str|\[T\]|u8|i32|i64|u64|usize) as "),
]
KERNEL = "kernel/syscalls"
UNKNOWN = "other: unresolved"
ORDER = [d for d, _ in DOMAIN] + ["allocation (mimalloc)", KERNEL, "other: tokio runtime",
                                  "other: libc mem*/str*", "other: std/core/uuid/chrono", UNKNOWN]
DOMAIN_RE = [(n, re.compile(p)) for n, p in DOMAIN]
PRIORITY_RE = [(n, re.compile(p)) for n, p in PRIORITY]
INFRA_RE = [(n, re.compile(p)) for n, p in INFRA]
DOMAIN_NAMES = {n for n, _ in DOMAIN}

# Inclusive markers: share of samples with a matching frame anywhere on the stack
# (what `perf report --children` gives for that symbol), to split the buckets.
MARKERS = [
    ("sqlx pool: release ping (return_to_pool)", r"PoolConnection<DB>>?::return_to_pool|Floating<.*>::return_to_pool"),
    ("sqlx pool: acquire", r"sqlx_core::pool::inner::PoolInner<DB>>?::acquire|PoolInner.*acquire"),
    ("rustls anywhere on the stack (TLS framing + encryption + its socket I/O)", r"rustls::"),
    ("TLS record encryption/decryption (ring AES-GCM/ChaCha)", r"ring_core_|\bring::aead|aes_hw|aes_nohw|gcm_|chacha20|\bring::"),
    ("sea-orm row decoding (FromQueryResult / TryGetable)", r"FromQueryResult|TryGetable"),
    ("sea-query (statement building)", r"sea_query::"),
    ("Authenticator::authenticate (token check + grant SQL)", r"Authenticator::authenticate"),
    ("TokenService::verify (JWT signature / cache)", r"TokenService::verify"),
    ("hyper HTTP/1 connection (parse, write)", r"hyper::proto::h1"),
    ("serde_json anywhere", r"serde_json"),
    ("tracing anywhere", r"tracing::|tracing_core::|tracing_subscriber::"),
    ("kernel: socket send (sendto/sendmsg/write)", r"__sys_sendto|__sys_sendmsg|ksys_write|do_writev|sock_write_iter"),
    ("kernel: socket receive (recvfrom/recvmsg/read)", r"__sys_recvfrom|__sys_recvmsg|ksys_read|sock_read_iter"),
    ("kernel: epoll_wait", r"do_epoll_wait|__x64_sys_epoll_wait"),
    ("kernel: futex", r"do_futex|__x64_sys_futex"),
    ("kernel: scheduler (__schedule)", r"__schedule\b"),
]
MARKERS_RE = [(n, re.compile(p)) for n, p in MARKERS]

ROW_DECODE = re.compile(r"FromQueryResult|TryGetable")
ORM_NAME = "ORM (sea-orm/sea-query)"
JSON_NAME = "JSON (serde_json)"

_cache = {}


def classify(sym, dso):
    key = (sym, dso)
    if key in _cache:
        return _cache[key]
    b = None
    if "kernel.kallsyms" in dso or (dso.startswith("[") and dso not in ("[unknown]", "[vdso]")):
        b = KERNEL
    if b is None:
        b = next((name for name, rx in PRIORITY_RE if rx.search(sym)), None)
    if b is None:
        best = None
        for name, rx in DOMAIN_RE:
            m = rx.search(sym)
            if m and (best is None or m.start() < best[0]):
                best = (m.start(), name)
        b = best[1] if best else None
    if b is None:
        b = next((name for name, rx in INFRA_RE if rx.search(sym)), None)
    if b is None:
        b = "other: libc mem*/str*" if "libc" in dso and re.search(r"mem|str", sym) else UNKNOWN
    _cache[key] = b
    return b


FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$")


def samples(path):
    """Yields (period, [(sym, dso), ...] leaf first) for each sample."""
    p = subprocess.Popen(["perf", "script", "-i", path, "--no-inline", "-F", "comm,tid,period,ip,sym,dso",
                          "--demangle"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    period, frames = None, []
    for line in p.stdout:
        line = line.rstrip("\n")
        if not line:
            if period is not None:
                yield period, frames
            period, frames = None, []
            continue
        m = FRAME.match(line)
        if m and period is not None:
            sym = m.group(2)
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            frames.append((sym, m.group(3)))
        elif not line.startswith((" ", "\t")):
            parts = line.split()
            try:
                period = int(parts[-1]) if parts[-1].isdigit() else 1
            except (ValueError, IndexError):
                period = 1
            frames = []
    if period is not None:
        yield period, frames
    p.wait()


def analyse(path):
    self_b, attr_b, syms = collections.Counter(), collections.Counter(), collections.Counter()
    marks, attr_kernel = collections.Counter(), collections.Counter()
    total = 0
    ns = 0
    for period, frames in samples(path):
        if not frames:
            continue
        total += 1
        ns += period
        leaf_sym, leaf_dso = frames[0]
        lb = classify(leaf_sym, leaf_dso)
        self_b[lb] += 1
        syms[(leaf_sym, lb)] += 1
        ab = lb
        names = [f[0] for f in frames]
        if lb != JSON_NAME and any(ROW_DECODE.search(n) for n in names):
            # sea-orm turning rows into models: sqlx's column lookup and value decoding,
            # the allocations and copies they make, all count as ORM row decoding.
            ab = ORM_NAME
        elif lb not in DOMAIN_NAMES:
            for sym, dso in frames[1:]:
                b = classify(sym, dso)
                if b in DOMAIN_NAMES:
                    ab = b
                    break
        attr_b[ab] += 1
        if lb == KERNEL:
            attr_kernel[ab] += 1
        for name, rx in MARKERS_RE:
            if any(rx.search(n) for n in names):
                marks[name] += 1
    return total, ns, self_b, attr_b, syms, marks, attr_kernel


def wrk_rps(path):
    try:
        m = re.search(r"Requests/sec:\s+([\d.]+)", open(path).read())
        return float(m.group(1)) if m else None
    except OSError:
        return None


def pct(c, total):
    return {b: 100.0 * c.get(b, 0) / total for b in ORDER} if total else {}


def main():
    out = sys.argv[1]
    perf_secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    result = {}
    lines = []
    for op in ("create", "list"):
        runs = sorted(glob.glob(os.path.join(out, f"perf-{op}-r*.data")))
        per_run, all_syms, totals = [], collections.Counter(), 0
        for path in runs:
            total, ns, s, a, syms, mk, ak = analyse(path)
            rps = wrk_rps(path.replace("perf-", "wrk-").replace(".data", ".txt"))
            # errand CPU time per request: sampled CPU time over the requests served while recording.
            us = (ns / 1000.0) / (rps * perf_secs) if rps else None
            per_run.append({"file": os.path.basename(path), "samples": total, "cpu_s": ns / 1e9, "wrk_rps": rps,
                            "cpu_us_per_request": us, "self": pct(s, total), "attributed": pct(a, total),
                            "attributed_kernel": pct(ak, total),
                            "markers": {n: 100.0 * mk.get(n, 0) / total for n, _ in MARKERS}})
            all_syms.update(syms)
            totals += total
        med = {kind: {b: statistics.median(r[kind][b] for r in per_run) for b in ORDER}
               for kind in ("self", "attributed", "attributed_kernel")}
        med["markers"] = {n: statistics.median(r["markers"][n] for r in per_run) for n, _ in MARKERS}
        top = [{"symbol": s, "bucket": b, "samples": n, "pct": 100.0 * n / totals}
               for (s, b), n in all_syms.most_common(25)]
        result[op] = {"runs": per_run, "median": med, "top25": top, "samples_total": totals}
        usl = [r["cpu_us_per_request"] for r in per_run if r["cpu_us_per_request"]]
        med_us = statistics.median(usl) if usl else None
        result_us = med_us
        lines.append(f"## {op}: {len(runs)} runs; samples per run "
                     + ", ".join(str(r['samples']) for r in per_run)
                     + "; errand CPU per run (s) " + ", ".join(f"{r['cpu_s']:.2f}" for r in per_run)
                     + "; wrk req/s " + ", ".join(f"{r['wrk_rps']:.0f}" if r['wrk_rps'] else "?" for r in per_run)
                     + "; errand CPU per request (µs) "
                     + ", ".join(f"{r['cpu_us_per_request']:.0f}" if r['cpu_us_per_request'] else "?" for r in per_run)
                     + (f" (median {med_us:.0f})" if med_us else ""))
        lines.append("")
        lines.append("| bucket | self % (median) | self % per run | attributed % (median) | attributed % per run | of which kernel leaf % | attributed µs/req (median) |")
        lines.append("| --- | ---: | --- | ---: | --- | ---: | ---: |")
        for b in ORDER:
            lines.append(f"| {b} | {med['self'][b]:.1f} | "
                         + " / ".join(f"{r['self'][b]:.1f}" for r in per_run)
                         + f" | {med['attributed'][b]:.1f} | "
                         + " / ".join(f"{r['attributed'][b]:.1f}" for r in per_run)
                         + f" | {med['attributed_kernel'][b]:.1f}"
                         + (f" | {med['attributed'][b] * med_us / 100:.0f} |" if med_us else " | ? |"))
        lines.append("")
        lines.append(f"Inclusive markers ({op}): % of errand samples with such a frame on the stack")
        lines.append("")
        lines.append("| marker | % (median) | per run |")
        lines.append("| --- | ---: | --- |")
        for n, _ in MARKERS:
            lines.append(f"| {n} | {med['markers'][n]:.1f} | "
                         + " / ".join(f"{r['markers'][n]:.1f}" for r in per_run) + " |")
        lines.append("")
        lines.append(f"Top 25 leaf symbols ({op}, all runs, {totals} samples):")
        lines.append("")
        lines.append("| # | self % | bucket | symbol |")
        lines.append("| ---: | ---: | --- | --- |")
        for i, t in enumerate(top, 1):
            s = t["symbol"].replace("|", "\\|")
            if len(s) > 160:
                s = s[:157] + "..."
            lines.append(f"| {i} | {t['pct']:.2f} | {t['bucket']} | `{s}` |")
        lines.append("")
    json.dump(result, open(os.path.join(out, "buckets.json"), "w"), indent=1)
    text = "\n".join(lines)
    open(os.path.join(out, "buckets.md"), "w").write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
