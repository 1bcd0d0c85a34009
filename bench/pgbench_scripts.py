"""Checks that bench/sql/*.sql are the statements Errand really sends, then
renders one pgbench script per bench user.

    python3 bench/pgbench_scripts.py check TEMPLATE LOG_EXCERPT
    python3 bench/pgbench_scripts.py render TEMPLATE OUT_DIR USERS_TSV

The log excerpt is PostgreSQL's statement log (log_statement = all) for one
request. A statement's shape is its text with every bound value replaced by
`?`: `$1`, `$2`… in the log, `{{…}}` in the template."""

import re
import sys
from pathlib import Path


def template_lines(path):
    """Every line of a template but comments: statements and pgbench's \\ meta-commands."""
    return [l for l in Path(path).read_text().splitlines() if l.strip() and not l.startswith("--")]


def template_statements(path):
    return [l for l in template_lines(path) if not l.startswith("\\")]


# What the revocation watcher sends on its own connection (LISTEN once, a
# probe when it has been quiet), and the outbox announcer's NOTIFY
# (coalesced, one per 5 ms however many requests): not part of any request.
WATCHER = ('LISTEN "errand_revocations"', "SELECT 1", "NOTIFY errand_outbox")
# The rate limiter's upsert: a busy caller's process spends a hundredth of
# the bucket per upsert (src/rate_limit.rs), so under the benchmark's load
# it is not a per-request statement; the first request of the probe pays it.
LEASED = "INSERT INTO rate_limits "


def template_shape(line):
    line = re.sub(r"\{\{.*?\}\}", "?", line)
    return re.sub(r"\s*(\\gset)?;?\s*$", "", line)


def log_shapes(path):
    shapes = []
    for line in Path(path).read_text().splitlines():
        match = re.search(r"LOG:  (?:execute [^:]+|statement): (.*)$", line)
        if match and match.group(1) not in WATCHER and not match.group(1).startswith(LEASED):
            shapes.append(re.sub(r"\$\d+", "?", match.group(1)).rstrip(";"))
    return shapes


def check(template, excerpt):
    expected = [template_shape(l) for l in template_statements(template)]
    actual = log_shapes(excerpt)
    if expected != actual:
        print(f"{template} no longer matches what Errand sends.", file=sys.stderr)
        print("Errand sent:", *actual, sep="\n  ", file=sys.stderr)
        print("The template has:", *expected, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"{template}: {len(actual)} statements match Errand's")


def render(template, out_dir, users_tsv):
    lines = template_lines(template)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for row in Path(users_tsv).read_text().splitlines():
        uid, grant = row.split("\t")
        body = "\n".join(
            re.sub(r"\{\{(.*?)\}\}", r"\1", line).replace("UID", uid).replace("GRANT", grant) for line in lines
        )
        (out / f"{uid}.sql").write_text(body + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        render(sys.argv[2], sys.argv[3], sys.argv[4])
