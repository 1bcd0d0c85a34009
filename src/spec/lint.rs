//! The GPT lint: the rules the ChatGPT action importer enforces or warns about,
//! checked on our own documents so a builder's import never warns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use super::finish::{collect_refs, operations};

pub const MAX_OPERATIONS: usize = 30;
pub const MAX_SUMMARY_CHARS: usize = 300;
pub const MAX_PARAMETER_DESCRIPTION_CHARS: usize = 700;
/// ChatGPT drops action responses longer than this.
pub const MAX_RESPONSE_CHARS: usize = 100_000;

/// Everything wrong with a GPT Actions document; empty when it is clean.
pub fn lint(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);

    if doc.get("openapi").and_then(Value::as_str) != Some("3.1.0") {
        problem("`openapi` must be \"3.1.0\"".into());
    }

    match doc
        .get("servers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([server]) => {
            let url = server
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problem(format!("the server URL `{url}` must be absolute"));
            }
        }
        _ => problem("there must be exactly one server".into()),
    }

    let schemes = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .map_or(0, |s| s.len());
    if schemes != 1 {
        problem(format!(
            "there must be exactly one security scheme, found {schemes}"
        ));
    }
    if doc.pointer("/components/schemas").is_none() {
        problem("`components.schemas` must be present".into());
    }

    let ops = operations(doc);
    if ops.len() > MAX_OPERATIONS {
        problem(format!(
            "{} operations; at most {MAX_OPERATIONS} are allowed",
            ops.len()
        ));
    }
    let mut ids = BTreeSet::new();
    for (path, method, op) in &ops {
        let at = format!("{} {path}", method.to_uppercase());
        match op.get("operationId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => {
                if !ids.insert(id.to_owned()) {
                    problem(format!("{at}: operationId `{id}` is used twice"));
                }
            }
            _ => problem(format!("{at}: operationId is missing")),
        }
        for key in ["summary", "description"] {
            let len = op
                .get(key)
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count());
            if len >= MAX_SUMMARY_CHARS {
                problem(format!(
                    "{at}: {key} is {len} characters; keep it under {MAX_SUMMARY_CHARS}"
                ));
            }
        }
        if op.get("summary").is_none() && op.get("description").is_none() {
            problem(format!(
                "{at}: it needs a summary or description for the model"
            ));
        }
        if !op
            .get("x-openai-isConsequential")
            .is_some_and(Value::is_boolean)
        {
            problem(format!(
                "{at}: x-openai-isConsequential must be set to true or false"
            ));
        }
        for param in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if param.get("in").and_then(Value::as_str) == Some("header") {
                problem(format!(
                    "{at}: header parameter `{name}` is not supported by GPT actions"
                ));
            }
            let len = param
                .get("description")
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count());
            if len >= MAX_PARAMETER_DESCRIPTION_CHARS {
                problem(format!(
                    "{at}: parameter `{name}` description is {len} characters; keep it under {MAX_PARAMETER_DESCRIPTION_CHARS}"
                ));
            }
        }
    }

    if contains_key(doc, "patternProperties") {
        problem("`patternProperties` is not supported".into());
    }
    if let Some(cycle) = ref_cycle(doc) {
        problem(format!(
            "schemas reference themselves in a cycle: {}",
            cycle.join(" -> ")
        ));
    }
    problems
}

fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k == key || contains_key(v, key)),
        Value::Array(items) => items.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}

/// A cycle among component schemas, if there is one.
fn ref_cycle(doc: &Value) -> Option<Vec<String>> {
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)?;
    let edges: BTreeMap<&str, Vec<String>> = schemas
        .iter()
        .map(|(name, schema)| {
            let mut refs = VecDeque::new();
            collect_refs(schema, &mut refs);
            (name.as_str(), refs.into_iter().collect())
        })
        .collect();

    fn visit(
        node: &str,
        edges: &BTreeMap<&str, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }

    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|name| visit(name, &edges, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn clean() -> Value {
        json!({
            "openapi": "3.1.0",
            "servers": [{ "url": "https://errand.example.com" }],
            "paths": { "/v1/me": { "get": {
                "operationId": "getMe", "summary": "Who am I", "x-openai-isConsequential": false
            } } },
            "components": { "schemas": {}, "securitySchemes": { "oauth2": { "type": "oauth2" } } }
        })
    }

    #[test]
    fn a_clean_document_passes() {
        assert_eq!(lint(&clean()), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_reported() {
        let mut doc = clean();
        doc["openapi"] = json!("3.0.0");
        doc["servers"] = json!([]);
        doc["paths"]["/v1/me"]["get"]["summary"] = json!("x".repeat(300));
        doc["paths"]["/v1/me"]["get"]["parameters"] = json!([{ "name": "X-Key", "in": "header" }]);
        doc["paths"]["/v1/me"]["get"]
            .as_object_mut()
            .unwrap()
            .remove("x-openai-isConsequential");
        doc["paths"]["/v1/other"] = json!({ "get": { "operationId": "getMe", "summary": "dup" } });
        doc["components"]["schemas"] = json!({
            "A": { "properties": { "b": { "$ref": "#/components/schemas/B" } } },
            "B": { "patternProperties": { "^x": { "$ref": "#/components/schemas/A" } } }
        });
        let problems = lint(&doc).join("\n");
        for expected in [
            "3.1.0",
            "exactly one server",
            "summary is 300 characters",
            "header parameter `X-Key`",
            "x-openai-isConsequential",
            "used twice",
            "patternProperties",
            "cycle",
        ] {
            assert!(
                problems.contains(expected),
                "missing `{expected}` in:\n{problems}"
            );
        }
    }
}
