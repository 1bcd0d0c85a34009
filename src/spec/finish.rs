//! Turns poem-openapi's OpenAPI 3.0 output into what the ChatGPT importer
//! wants: OpenAPI 3.1.0 (JSON Schema 2020-12 nullability), one absolute
//! server, absolute OAuth URLs, and an explicit `x-openai-isConsequential`
//! on every operation.

use std::collections::{BTreeSet, VecDeque};

use serde_json::{Map, Value, json};

use super::{
    SpecError,
    policy::{Audience, OPERATIONS, policy},
};
use crate::config::PublicUrl;

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation object in the document, mutably.
pub fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| {
            item.iter_mut()
                .filter(|(method, _)| HTTP_METHODS.contains(&method.as_str()))
                .filter_map(|(_, op)| op.as_object_mut())
        })
}

/// Every operation with its path and method.
pub fn operations(doc: &Value) -> Vec<(String, String, &Map<String, Value>)> {
    let mut found = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in HTTP_METHODS {
                if let Some(op) = item.get(method).and_then(Value::as_object) {
                    found.push((path.clone(), method.to_owned(), op));
                }
            }
        }
    }
    found
}

pub fn finish(mut doc: Value, public_url: &PublicUrl) -> Result<Value, SpecError> {
    doc["openapi"] = json!("3.1.0");
    doc["servers"] = json!([{ "url": public_url.as_str() }]);

    let mut seen = BTreeSet::new();
    let mut request_bodies = VecDeque::new();
    for op in operations_mut(&mut doc) {
        if let Some(body) = op.get("requestBody") {
            collect_refs(body, &mut request_bodies);
        }
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let policy = policy(&id).ok_or_else(|| SpecError::UnknownOperation(id.clone()))?;
        op.insert(
            "x-openai-isConsequential".into(),
            json!(policy.consequential),
        );
        for schema in schema_slots_of_operation(op) {
            to_json_schema_2020(schema);
        }
        seen.insert(id);
    }
    if let Some(stale) = OPERATIONS.iter().find(|p| !seen.contains(p.operation_id)) {
        return Err(SpecError::StalePolicy(stale.operation_id.to_owned()));
    }

    let components = doc
        .as_object_mut()
        .map(|root| root.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components.and_then(Value::as_object_mut) {
        let schemas = components.entry("schemas").or_insert_with(|| json!({}));
        if let Some(schemas) = schemas.as_object_mut() {
            for schema in schemas.values_mut() {
                to_json_schema_2020(schema);
            }
            // Request bodies are read by `web::JsonBody`, which refuses
            // fields the schema does not name; say so.
            for name in &request_bodies {
                if let Some(body) = schemas.get_mut(name).and_then(Value::as_object_mut) {
                    body.insert("additionalProperties".into(), json!(false));
                }
            }
        }
        if let Some(schemes) = components
            .get_mut("securitySchemes")
            .and_then(Value::as_object_mut)
        {
            for scheme in schemes.values_mut() {
                absolutise_oauth_urls(scheme, public_url);
            }
        }
    }
    super::enum_names::name_enum_members(&mut doc)?;
    Ok(doc)
}

/// The schemas an operation holds directly: parameters, request body,
/// responses and their headers.
/// What a response means when the operation did not say.
fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "The request succeeded.",
        "201" => "Created.",
        "204" => "Done; there is no body.",
        _ => "The response.",
    }
}

fn schema_slots_of_operation(op: &mut Map<String, Value>) -> Vec<&mut Value> {
    let mut slots = Vec::new();
    let mut bodies: Vec<&mut Value> = Vec::new();
    for (key, value) in op.iter_mut() {
        match key.as_str() {
            "parameters" => {
                if let Some(params) = value.as_array_mut() {
                    for param in params {
                        if let Some(schema) = param.get_mut("schema") {
                            slots.push(schema);
                        }
                    }
                }
            }
            "requestBody" => bodies.push(value),
            "responses" => {
                if let Some(responses) = value.as_object_mut() {
                    for (status, response) in responses.iter_mut() {
                        if let Some(response) = response.as_object_mut() {
                            if response.get("description").and_then(Value::as_str) == Some("") {
                                response.insert(
                                    "description".into(),
                                    json!(default_description(status)),
                                );
                            }
                            for (part, inner) in response.iter_mut() {
                                match part.as_str() {
                                    "content" => bodies.push(inner),
                                    "headers" => {
                                        if let Some(headers) = inner.as_object_mut() {
                                            for header in headers.values_mut() {
                                                if let Some(schema) = header.get_mut("schema") {
                                                    slots.push(schema);
                                                }
                                            }
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for body in bodies.iter_mut() {
        normalise_media_types(body);
    }
    for body in bodies {
        let content = if body.get("content").is_some() {
            body.get_mut("content")
        } else {
            Some(body)
        };
        if let Some(media) = content.and_then(Value::as_object_mut) {
            for media_type in media.values_mut() {
                if let Some(schema) = media_type.get_mut("schema") {
                    slots.push(schema);
                }
            }
        }
    }
    slots
}

/// `application/json; charset=utf-8` → `application/json`: JSON is always
/// UTF-8 (RFC 8259), and some importers match media types exactly.
fn normalise_media_types(body: &mut Value) {
    let content = if body.get("content").is_some() {
        body.get_mut("content")
    } else {
        Some(&mut *body)
    };
    let Some(media) = content.and_then(Value::as_object_mut) else {
        return;
    };
    let keys: Vec<String> = media.keys().filter(|k| k.contains(';')).cloned().collect();
    for key in keys {
        let essence = key.split(';').next().unwrap_or_default().trim().to_owned();
        if let Some(value) = media.remove(&key) {
            media.entry(essence).or_insert(value);
        }
    }
}

/// Rewrites one schema (and its subschemas) from the OpenAPI 3.0 dialect to
/// JSON Schema 2020-12 as OpenAPI 3.1 uses it.
pub fn to_json_schema_2020(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    for key in ["properties", "patternProperties", "$defs"] {
        if let Some(children) = object.get_mut(key).and_then(Value::as_object_mut) {
            children.values_mut().for_each(to_json_schema_2020);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = object.get_mut(key) {
            to_json_schema_2020(child);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(children) = object.get_mut(key).and_then(Value::as_array_mut) {
            children.iter_mut().for_each(to_json_schema_2020);
        }
    }

    // exclusiveMinimum/Maximum: booleans modifying minimum/maximum in 3.0,
    // numbers of their own in 3.1.
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        match object.get(exclusive) {
            Some(Value::Bool(true)) => {
                if let Some(value) = object.remove(bound) {
                    object.insert(exclusive.into(), value);
                } else {
                    object.remove(exclusive);
                }
            }
            Some(Value::Bool(false)) => {
                object.remove(exclusive);
            }
            _ => {}
        }
    }

    // `example` is deprecated inside 3.1 schemas in favour of `examples`.
    if let Some(example) = object.remove("example") {
        object.insert("examples".into(), json!([example]));
    }

    // Whole-number bounds print as integers (`1`, not `1.0`).
    for key in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
        if let Some(Value::Number(n)) = object.get(key)
            && let Some(f) = n.as_f64()
            && f.fract() == 0.0
            && f.abs() < 9.0e15
        {
            object.insert(key.into(), json!(f as i64));
        }
    }

    collapse_annotated_ref(object);

    if object.remove("nullable") == Some(Value::Bool(true)) {
        make_nullable(object);
    }
}

/// poem-openapi writes a described reference as
/// `allOf: [{$ref}, {description}]`; 3.1 allows `$ref` beside annotations,
/// which reads more plainly.
fn collapse_annotated_ref(object: &mut Map<String, Value>) {
    let Some(Value::Array(parts)) = object.get("allOf") else {
        return;
    };
    let annotation_only = |part: &Value| {
        part.as_object().is_some_and(|p| {
            p.keys().all(|k| {
                matches!(
                    k.as_str(),
                    "description"
                        | "title"
                        | "default"
                        | "examples"
                        | "readOnly"
                        | "writeOnly"
                        | "deprecated"
                )
            })
        })
    };
    let refs: Vec<&Value> = parts.iter().filter(|p| p.get("$ref").is_some()).collect();
    let [reference] = refs.as_slice() else {
        return;
    };
    if reference.as_object().is_some_and(|r| r.len() != 1)
        || !parts
            .iter()
            .filter(|p| p.get("$ref").is_none())
            .all(annotation_only)
    {
        return;
    }
    let reference = (*reference).clone();
    let Some(Value::Array(parts)) = object.remove("allOf") else {
        return;
    };
    for part in parts.into_iter().filter(|p| p.get("$ref").is_none()) {
        if let Value::Object(annotations) = part {
            for (key, value) in annotations {
                object.entry(key).or_insert(value);
            }
        }
    }
    if let Some(target) = reference.get("$ref") {
        object.insert("$ref".into(), target.clone());
    }
}

fn make_nullable(object: &mut Map<String, Value>) {
    // A nullable enum is "one of these, or null" as two alternatives: with
    // `null` inside the enum and the type list, client generators make one
    // enum class per listed type (openapi-python-client made three identical
    // `Priority` enums); as alternatives they make `Priority | None`.
    if object.contains_key("enum") {
        let mut inner = Map::new();
        for key in ["type", "enum"] {
            if let Some(value) = object.remove(key) {
                inner.insert(key.into(), value);
            }
        }
        object.insert(
            "anyOf".into(),
            json!([Value::Object(inner), { "type": "null" }]),
        );
        return;
    }
    match object.get_mut("type") {
        Some(Value::String(ty)) => {
            let ty = std::mem::take(ty);
            object.insert("type".into(), json!([ty, "null"]));
        }
        Some(Value::Array(types)) => {
            if !types.contains(&json!("null")) {
                types.push(json!("null"));
            }
        }
        _ => {
            // A `$ref` or `allOf` wrapper: say "this, or null" explicitly,
            // keeping annotations such as `description` on the outside.
            let mut inner = Map::new();
            for key in ["$ref", "allOf", "anyOf", "oneOf"] {
                if let Some(value) = object.remove(key) {
                    inner.insert(key.into(), value);
                }
            }
            if !inner.is_empty() {
                object.insert(
                    "anyOf".into(),
                    json!([Value::Object(inner), { "type": "null" }]),
                );
            }
        }
    }
}

fn absolutise_oauth_urls(scheme: &mut Value, public_url: &PublicUrl) {
    let Some(flows) = scheme.get_mut("flows").and_then(Value::as_object_mut) else {
        return;
    };
    for flow in flows.values_mut() {
        let Some(flow) = flow.as_object_mut() else {
            continue;
        };
        for key in ["authorizationUrl", "tokenUrl", "refreshUrl"] {
            if let Some(Value::String(url)) = flow.get_mut(key)
                && url.starts_with('/')
            {
                *url = public_url.join(url);
            }
        }
    }
}

/// The GPT Actions document: the operations meant for a GPT, the schemas
/// they reach, and nothing else.
pub fn gpt_subset(full: &Value) -> Value {
    let mut doc = full.clone();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                item.retain(|method, op| {
                    if !HTTP_METHODS.contains(&method.as_str()) {
                        return true;
                    }
                    op.get("operationId")
                        .and_then(Value::as_str)
                        .and_then(policy)
                        .is_some_and(|p| p.audience == Audience::Gpt)
                });
            }
        }
        paths.retain(|_, item| {
            item.as_object()
                .is_some_and(|item| item.keys().any(|k| HTTP_METHODS.contains(&k.as_str())))
        });
    }

    let used_tags: BTreeSet<String> = operations(&doc)
        .iter()
        .flat_map(|(_, _, op)| {
            op.get("tags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|tag| tag.as_str().map(str::to_owned))
        .collect();
    if let Some(tags) = doc.get_mut("tags").and_then(Value::as_array_mut) {
        tags.retain(|tag| {
            tag.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| used_tags.contains(name))
        });
    }

    // Only the scopes its operations ask for: a GPT is never offered
    // webhook management.
    let used_scopes: BTreeSet<String> = operations(&doc)
        .iter()
        .flat_map(|(_, _, op)| {
            op.get("security")
                .and_then(|security| security.pointer("/0/oauth2"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|scope| scope.as_str().map(str::to_owned))
        .collect();
    if let Some(flows) = doc
        .pointer_mut("/components/securitySchemes/oauth2/flows")
        .and_then(Value::as_object_mut)
    {
        for flow in flows.values_mut() {
            if let Some(scopes) = flow.get_mut("scopes").and_then(Value::as_object_mut) {
                scopes.retain(|name, _| used_scopes.contains(name));
            }
        }
    }

    let reachable = reachable_schemas(&doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.retain(|name, _| reachable.contains(name));
    }
    doc
}

const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Names of component schemas referenced, directly or through other schemas,
/// from the paths.
fn reachable_schemas(doc: &Value) -> BTreeSet<String> {
    let mut reachable = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    if let Some(paths) = doc.get("paths") {
        collect_refs(paths, &mut queue);
    }
    while let Some(name) = queue.pop_front() {
        if !reachable.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
            collect_refs(schema, &mut queue);
        }
    }
    reachable
}

/// Every `$ref` to a component schema below `value`.
pub fn collect_refs(value: &Value, into: &mut VecDeque<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref"
                    && let Some(name) = child
                        .as_str()
                        .and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX))
                {
                    into.push_back(name.to_owned());
                } else {
                    collect_refs(child, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_types_become_type_arrays() {
        let mut schema = json!({ "type": "string", "nullable": true, "example": "x" });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({ "type": ["string", "null"], "examples": ["x"] })
        );
    }

    #[test]
    fn nullable_refs_become_any_of_with_null() {
        let mut schema = json!({ "allOf": [{ "$ref": "#/components/schemas/T" }], "nullable": true, "description": "d" });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({
                "description": "d",
                "anyOf": [{ "$ref": "#/components/schemas/T" }, { "type": "null" }]
            })
        );
    }

    #[test]
    fn nullable_enums_admit_null() {
        let mut schema = json!({ "type": "string", "enum": ["a"], "nullable": true });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({ "anyOf": [{ "type": "string", "enum": ["a"] }, { "type": "null" }] })
        );
    }

    #[test]
    fn boolean_exclusive_bounds_become_numbers() {
        let mut schema = json!({ "type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({ "type": "integer", "exclusiveMinimum": 0, "maximum": 9 })
        );
    }

    #[test]
    fn described_references_are_collapsed() {
        let mut schema = json!({ "allOf": [{ "$ref": "#/components/schemas/T" }, { "description": "d" }], "description": "d" });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({ "$ref": "#/components/schemas/T", "description": "d" })
        );
    }

    #[test]
    fn whole_number_bounds_are_integers() {
        let mut schema = json!({ "type": "integer", "minimum": 1.0, "maximum": 100.0 });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema,
            json!({ "type": "integer", "minimum": 1, "maximum": 100 })
        );
    }

    #[test]
    fn nested_properties_are_converted() {
        let mut schema = json!({ "type": "object", "properties": { "a": { "type": "array", "items": { "type": "string", "nullable": true } } } });
        to_json_schema_2020(&mut schema);
        assert_eq!(
            schema["properties"]["a"]["items"]["type"],
            json!(["string", "null"])
        );
    }
}
