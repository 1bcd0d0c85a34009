//! The user-facing actions as tools, for every front door that is not the
//! OpenAPI document itself: the MCP server (`mcp`) and function-calling
//! exports (`tools::openai`). The catalog is read from the finished GPT
//! document, so a tool is exactly an operation of the contract: same
//! operationId, same text, same parameter and body schemas, the same
//! `spec::policy` decision behind its hints. There is one definition to
//! maintain, the operations.
//!
//! A tool's arguments are one flat object: the operation's parameters
//! (path and query) beside its body's fields. Names never collide (checked
//! when the catalog is built), so a call can be split back into a request.

pub mod openai;

use serde_json::{Map, Value, json};

use crate::{
    auth::Scope,
    spec::{Documents, policy},
};

/// Where an argument goes in the HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentPlace {
    Path,
    Query,
    Body,
}

/// One tool: an operation of the GPT document.
#[derive(Debug, Clone)]
pub struct Tool {
    /// The operationId.
    pub name: String,
    /// The operation's summary.
    pub title: String,
    /// The operation's description: when to use it, what it returns.
    pub description: String,
    /// Parameters and body fields as one object schema, references inlined.
    pub input_schema: Value,
    /// The success response's schema, references inlined; `None` when the
    /// operation answers without a body (204).
    pub output_schema: Option<Value>,
    pub method: String,
    /// The path template, e.g. `/v1/tasks/{number}`.
    pub path: String,
    /// Each argument's name and where it goes.
    pub arguments: Vec<(String, ArgumentPlace)>,
    /// The scopes the operation requires (none: any valid token).
    pub scopes: Vec<Scope>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

impl Tool {
    pub fn place_of(&self, argument: &str) -> Option<ArgumentPlace> {
        self.arguments
            .iter()
            .find(|(name, _)| name == argument)
            .map(|(_, place)| *place)
    }

    pub fn has_body(&self) -> bool {
        self.arguments
            .iter()
            .any(|(_, p)| *p == ArgumentPlace::Body)
    }

    /// The MCP tool annotations. Every tool only touches the signed-in
    /// user's own Errand data, so none is open-world.
    pub fn annotations(&self) -> Value {
        json!({
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": false,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("operation `{operation}` is malformed in the document: {why}")]
    Malformed { operation: String, why: String },
    #[error("operation `{operation}` has a parameter and a body field both named `{name}`")]
    Collision { operation: String, name: String },
}

/// Every tool, in the document's order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tools: Vec<Tool>,
}

impl Catalog {
    /// The tools of the GPT document: the actions a person's assistant uses.
    pub fn from_documents(documents: &Documents) -> Result<Self, CatalogError> {
        Self::from_document(&documents.gpt)
    }

    pub fn from_document(document: &Value) -> Result<Self, CatalogError> {
        let mut tools = Vec::new();
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        for (path, operations) in &paths {
            let Some(operations) = operations.as_object() else {
                continue;
            };
            for (method, operation) in operations {
                tools.push(tool(document, path, method, operation)?);
            }
        }
        Ok(Self { tools })
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// Every scope some tool requires.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = self.tools.iter().flat_map(|t| t.scopes.clone()).collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

fn tool(
    document: &Value,
    path: &str,
    method: &str,
    operation: &Value,
) -> Result<Tool, CatalogError> {
    let name = operation["operationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let malformed = |why: &str| CatalogError::Malformed {
        operation: name.clone(),
        why: why.to_owned(),
    };
    if name.is_empty() {
        return Err(CatalogError::Malformed {
            operation: format!("{} {path}", method.to_uppercase()),
            why: "no operationId".to_owned(),
        });
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut arguments = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let parameter = inline(document, parameter);
        let param_name = parameter["name"]
            .as_str()
            .ok_or_else(|| malformed("a parameter has no name"))?;
        let place = match parameter["in"].as_str() {
            Some("path") => ArgumentPlace::Path,
            Some("query") => ArgumentPlace::Query,
            _ => continue,
        };
        let mut schema = parameter["schema"].clone();
        if let (Some(description), Some(object)) =
            (parameter["description"].as_str(), schema.as_object_mut())
        {
            object.insert("description".into(), json!(description));
        }
        if parameter["required"].as_bool() == Some(true) {
            required.push(json!(param_name));
        }
        properties.insert(param_name.to_owned(), schema);
        arguments.push((param_name.to_owned(), place));
    }
    let body = &operation["requestBody"]["content"]["application/json"]["schema"];
    if !body.is_null() {
        let body = inline(document, body);
        for (field, schema) in body["properties"].as_object().into_iter().flatten() {
            if properties.contains_key(field) {
                return Err(CatalogError::Collision {
                    operation: name,
                    name: field.clone(),
                });
            }
            properties.insert(field.clone(), schema.clone());
            arguments.push((field.clone(), ArgumentPlace::Body));
        }
        required.extend(body["required"].as_array().into_iter().flatten().cloned());
    }
    let mut input_schema = json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        input_schema["required"] = Value::Array(required);
    }
    let output_schema = operation["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(status, _)| status.starts_with('2'))
        .map(|(_, response)| &response["content"]["application/json"]["schema"])
        .filter(|schema| !schema.is_null())
        .map(|schema| inline(document, schema));
    let scopes = operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|requirement| requirement.as_object().into_iter().flatten())
        .flat_map(|(_, scopes)| scopes.as_array().into_iter().flatten())
        .filter_map(|scope| scope.as_str().and_then(Scope::parse))
        .collect();
    let Some(policy) = policy::policy(&name) else {
        return Err(malformed("has no entry in spec::policy"));
    };
    let method = method.to_uppercase();
    Ok(Tool {
        title: operation["summary"].as_str().unwrap_or(&name).to_owned(),
        description: operation["description"]
            .as_str()
            .or(operation["summary"].as_str())
            .unwrap_or_default()
            .to_owned(),
        input_schema,
        output_schema,
        read_only: policy.read_only,
        destructive: policy.consequential,
        idempotent: policy.idempotent,
        method,
        path: path.to_owned(),
        arguments,
        scopes,
        name,
    })
}

/// `value` with every `$ref` into the document replaced by what it points
/// to, so a schema stands alone (tools carry no `components`).
pub fn inline(document: &Value, value: &Value) -> Value {
    inline_within(document, value, 0)
}

fn inline_within(document: &Value, value: &Value, depth: usize) -> Value {
    // The contract has no recursive schemas; the bound only stops a mistake
    // from hanging the start.
    if depth > 32 {
        return json!({});
    }
    match value {
        Value::Object(object) => {
            if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
                let target = reference
                    .strip_prefix('#')
                    .and_then(|pointer| document.pointer(pointer))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let mut resolved = inline_within(document, &target, depth + 1);
                // Siblings of `$ref` (3.1 allows a description) win.
                if let Some(resolved) = resolved.as_object_mut() {
                    for (key, sibling) in object.iter().filter(|(k, _)| *k != "$ref") {
                        resolved.insert(key.clone(), inline_within(document, sibling, depth + 1));
                    }
                }
                return resolved;
            }
            Value::Object(
                object
                    .iter()
                    .map(|(key, child)| (key.clone(), inline_within(document, child, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| inline_within(document, item, depth + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_documents(&Documents::committed().unwrap()).unwrap()
    }

    #[test]
    fn every_gpt_operation_is_a_tool_and_nothing_else_is() {
        let names: Vec<String> = catalog().tools.into_iter().map(|t| t.name).collect();
        let expected: Vec<&str> = policy::OPERATIONS
            .iter()
            .filter(|p| p.audience == policy::Audience::Gpt)
            .map(|p| p.operation_id)
            .collect();
        assert_eq!(names.len(), expected.len(), "{names:?}");
        for name in expected {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
    }

    #[test]
    fn arguments_combine_parameters_and_body_without_references() {
        let catalog = catalog();
        let update = catalog.get("updateTask").unwrap();
        assert_eq!(update.place_of("number"), Some(ArgumentPlace::Path));
        assert_eq!(update.place_of("due_at"), Some(ArgumentPlace::Body));
        assert_eq!(update.input_schema["required"], json!(["number"]));
        assert!(!update.input_schema.to_string().contains("$ref"));
        let list = catalog.get("listTasks").unwrap();
        assert_eq!(list.place_of("status"), Some(ArgumentPlace::Query));
        assert!(list.read_only && list.idempotent && !list.destructive);
        assert!(
            !list
                .output_schema
                .as_ref()
                .unwrap()
                .to_string()
                .contains("$ref")
        );
        let delete = catalog.get("deleteTask").unwrap();
        assert!(delete.destructive && delete.output_schema.is_none());
        assert_eq!(
            catalog.get("createTask").unwrap().scopes,
            [Scope::TasksWrite]
        );
    }
}
