//! The catalog as OpenAI function-calling tools with strict schemas
//! (`errand tools --format openai`, `GET /tools/openai.json`), for the
//! OpenAI API and OpenAI-compatible servers (vLLM, NVIDIA NIM, …).
//!
//! Strict mode constrains the model's arguments to the schema, at the price
//! of a subset of JSON Schema: every object lists all its properties as
//! required and forbids others, and only some keywords are understood. So
//! each tool's input schema is rewritten:
//!
//! * an optional property becomes required and nullable, and **null means
//!   "not given"**: whoever executes the call drops null arguments before
//!   sending the request (`actions/agent.md` shows the loop);
//! * keywords strict mode does not take (`examples`, `default`,
//!   `minProperties`, string lengths, integer formats) are removed; limits
//!   that matter are already in the descriptions, and Errand still checks
//!   every value and says what to fix.
//!
//! One consequence: in `updateTask`, null cannot also mean "remove", so a
//! property whose null meant "remove" says what to send instead.

use serde_json::{Map, Value, json};

use super::{Catalog, Tool};

/// Formats strict mode understands; others are dropped.
const FORMATS: [&str; 9] = [
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Keywords kept in a strict schema.
const KEYWORDS: [&str; 16] = [
    "type",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "multipleOf",
    "minItems",
    "maxItems",
];

/// Every tool, in the Chat Completions form
/// (`{"type": "function", "function": {…}}`).
pub fn chat_completions_tools(catalog: &Catalog) -> Value {
    Value::Array(catalog.tools.iter().map(function_tool).collect())
}

fn function_tool(tool: &Tool) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": strict_object(&tool.input_schema),
            "strict": true,
        }
    })
}

/// A strict copy of an object schema: all properties required, the optional
/// ones nullable.
fn strict_object(schema: &Value) -> Value {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut properties = Map::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let mut strict = strict_schema(property);
        if !required.contains(&name.as_str()) {
            strict = null_means_absent(strict, property);
        }
        properties.insert(name.clone(), strict);
    }
    let names: Vec<Value> = properties.keys().map(|k| json!(k)).collect();
    let mut object = json!({
        "type": "object",
        "properties": properties,
        "required": names,
        "additionalProperties": false,
    });
    if let Some(description) = schema.get("description") {
        object["description"] = description.clone();
    }
    object
}

fn strict_schema(schema: &Value) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    if object.get("type").is_some_and(|t| {
        t == "object" || t.as_array().is_some_and(|a| a.contains(&json!("object")))
    }) && object.contains_key("properties")
    {
        return strict_object(schema);
    }
    let mut strict = Map::new();
    for (key, value) in object {
        if !KEYWORDS.contains(&key.as_str()) {
            continue;
        }
        let value = match key.as_str() {
            "format" if !value.as_str().is_some_and(|f| FORMATS.contains(&f)) => continue,
            "items" => strict_schema(value),
            "anyOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(strict_schema)
                    .collect(),
            ),
            _ => value.clone(),
        };
        strict.insert(key.clone(), value);
    }
    Value::Object(strict)
}

/// Whether a schema accepts null: `null` among its types, or a `null`
/// alternative.
fn admits_null(schema: &Value) -> bool {
    let null = json!("null");
    schema["type"]
        .as_array()
        .is_some_and(|types| types.contains(&null))
        || schema["anyOf"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|part| part["type"] == null))
}

/// Makes an optional property nullable, with null read as "not given".
fn null_means_absent(mut strict: Value, original: &Value) -> Value {
    let was_nullable = admits_null(original);
    let already_nullable = admits_null(&strict);
    if let Some(object) = strict.as_object_mut() {
        match object.get_mut("type") {
            Some(Value::String(single)) => {
                let single = single.clone();
                object.insert("type".into(), json!([single, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&json!("null")) => {
                types.push(json!("null"))
            }
            Some(_) => {}
            // "One of these, or null" already: only the note is missing.
            None if already_nullable => {}
            None => {
                return json!({ "anyOf": [strict, { "type": "null" }] });
            }
        }
        if let Some(Value::Array(values)) = object.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
        let described = object
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let note = if was_nullable {
            // The original null had a meaning of its own ("remove").
            "Null here means: not given (unchanged). To remove a value, send an empty one \
             (\"\" or []) where the description allows it."
        } else {
            "Null means: not given."
        };
        object.insert(
            "description".into(),
            json!(format!("{described} {note}").trim()),
        );
    }
    strict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Documents;

    fn tools() -> Value {
        chat_completions_tools(&Catalog::from_documents(&Documents::committed().unwrap()).unwrap())
    }

    /// Every object in a strict schema forbids extra properties and
    /// requires all of its own.
    fn assert_strict(schema: &Value, at: &str) {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            assert_eq!(schema["additionalProperties"], json!(false), "{at}");
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for (name, property) in properties {
                assert!(
                    required.contains(&name.as_str()),
                    "{at}.{name} not required"
                );
                assert_strict(property, &format!("{at}.{name}"));
            }
        }
        for forbidden in [
            "examples",
            "default",
            "minProperties",
            "maxLength",
            "minLength",
            "$ref",
        ] {
            assert!(schema.get(forbidden).is_none(), "{at} keeps {forbidden}");
        }
    }

    #[test]
    fn every_tool_is_strict_and_names_are_valid() {
        for tool in tools().as_array().unwrap() {
            let function = &tool["function"];
            let name = function["name"].as_str().unwrap();
            assert!(
                (1..=64).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
            assert_eq!(function["strict"], json!(true));
            assert_strict(&function["parameters"], name);
        }
    }

    #[test]
    fn optional_arguments_become_nullable_and_required_ones_do_not() {
        let tools = tools();
        let create = tools
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["function"]["name"] == "createTask")
            .unwrap();
        let properties = &create["function"]["parameters"]["properties"];
        assert_eq!(properties["title"]["type"], json!("string"));
        assert_eq!(properties["due_at"]["type"], json!(["string", "null"]));
        // One of the levels, or null: said once, with what null means.
        assert_eq!(
            properties["priority"]["anyOf"],
            json!([{ "type": "string", "enum": ["low", "normal", "high"] }, { "type": "null" }])
        );
        assert!(
            properties["priority"]["description"]
                .as_str()
                .unwrap()
                .contains("Null here means: not given")
        );
    }
}
