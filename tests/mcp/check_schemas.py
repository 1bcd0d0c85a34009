"""Checks that every schema Errand exports for tools is valid JSON Schema 2020-12.

Reads one JSON object on stdin: {"mcp": <tools/list result tools>, "openai": <tools/openai.json>}.
Uses the jsonschema package's meta-schema check (a validator Errand did not write). Prints the
number of schemas checked; exits 1 naming the first invalid one.
"""

import json
import sys

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

exported = json.load(sys.stdin)
schemas = []
for tool in exported["mcp"]:
    schemas.append((f"mcp {tool['name']} inputSchema", tool["inputSchema"]))
    if "outputSchema" in tool:
        schemas.append((f"mcp {tool['name']} outputSchema", tool["outputSchema"]))
for tool in exported["openai"]:
    function = tool["function"]
    schemas.append((f"openai {function['name']} parameters", function["parameters"]))

for name, schema in schemas:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        print(f"{name} is not valid JSON Schema 2020-12: {error.message}", file=sys.stderr)
        sys.exit(1)
    if schema.get("type") != "object":
        print(f"{name} is not an object schema", file=sys.stderr)
        sys.exit(1)
print(json.dumps({"checked": len(schemas)}))
