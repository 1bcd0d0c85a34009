"""Schemathesis hooks for Errand's CI run.

Excludes exactly one thing from testing: the opaque `cursor` query parameter of
listTasks. A cursor is only valid as returned in `next_cursor` for the same
filters, so a generated one is always (rightly) rejected. The parameter is
removed from the loaded document before schemathesis reads it, so no phase
(examples, coverage, fuzzing, stateful) generates it or links a response into it.
Fails loudly if the parameter is no longer there, so the exclusion cannot
silently go stale.
"""

import schemathesis


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    removed = 0
    for path_item in raw_schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or operation.get("operationId") != "listTasks":
                continue
            params = operation.get("parameters", [])
            kept = [p for p in params if not (p.get("in") == "query" and p.get("name") == "cursor")]
            removed += len(params) - len(kept)
            operation["parameters"] = kept
    if removed != 1:
        raise RuntimeError(f"expected to exclude exactly one `cursor` parameter of listTasks, excluded {removed}")
