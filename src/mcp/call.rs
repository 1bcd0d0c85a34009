//! Running a tool: its arguments become the operation's HTTP request, which
//! is handed to the operations in-process (no socket), with the caller the
//! MCP endpoint already authenticated attached as `auth::Delegated`. So a
//! tool call goes through exactly the extractors, validation, scope check,
//! store code and events an HTTP call does, and fails the same way.

use poem::{
    Endpoint, Request, Response,
    endpoint::BoxEndpoint,
    http::{Method, StatusCode, Uri, header},
};
use serde_json::{Map, Value};

use crate::{
    auth::{Delegated, Principal},
    tools::{ArgumentPlace, Tool},
};

/// The largest response body read back from an operation.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The operation's request for a call, or what the model must fix.
fn request_for(tool: &Tool, arguments: &Map<String, Value>) -> Result<Request, String> {
    let mut path = tool.path.clone();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut body = Map::new();
    for (name, value) in arguments {
        let Some(place) = tool.place_of(name) else {
            let known: Vec<&str> = tool.arguments.iter().map(|(n, _)| n.as_str()).collect();
            return Err(format!(
                "`{name}` is not an argument of {}; it takes {}.",
                tool.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        match place {
            ArgumentPlace::Body => {
                body.insert(name.clone(), value.clone());
            }
            // Null for a parameter is the same as leaving it out.
            _ if value.is_null() => {}
            ArgumentPlace::Path | ArgumentPlace::Query => {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => {
                        return Err(format!(
                            "`{name}` must be a single value (a string or a number), not a list \
                             or an object."
                        ));
                    }
                };
                if place == ArgumentPlace::Path {
                    let encoded: String =
                        url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
                    path = path.replace(&format!("{{{name}}}"), &encoded.replace('+', "%20"));
                } else {
                    query.append_pair(name, &text);
                }
            }
        }
    }
    if let Some(missing) = tool.arguments.iter().find(|(name, place)| {
        *place == ArgumentPlace::Path && path.contains(&format!("{{{name}}}"))
    }) {
        return Err(format!("`{}` is required.", missing.0));
    }
    let query = query.finish();
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let uri: Uri = target
        .parse()
        .map_err(|_| "The arguments do not make a valid request.".to_owned())?;
    let method = Method::from_bytes(tool.method.as_bytes())
        .map_err(|_| "The tool's method is not valid.".to_owned())?;
    let builder = Request::builder().method(method).uri(uri);
    Ok(if tool.has_body() {
        builder
            .content_type("application/json")
            .body(Value::Object(body).to_string())
    } else {
        builder.finish()
    })
}

/// What a failed operation's problem says, for the model to act on: the
/// detail and each rejected field.
fn problem_text(status: StatusCode, body: &[u8]) -> String {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return format!("The call failed with HTTP {status}.");
    };
    let mut text = problem["detail"].as_str().map_or_else(
        || format!("The call failed with HTTP {status}."),
        str::to_owned,
    );
    for issue in problem["errors"].as_array().into_iter().flatten() {
        if let (Some(field), Some(detail)) = (issue["field"].as_str(), issue["detail"].as_str()) {
            text.push_str(&format!("\n- {field}: {detail}"));
        }
    }
    text
}

/// The tool a request to the operations is made for, so that whoever
/// counts it needs no second look at its path.
#[derive(Debug, Clone)]
pub struct Calling(pub String);

/// What a tool call came to.
#[derive(Debug)]
pub enum Outcome {
    /// The operation's JSON result, as the operation wrote it (an object).
    Json(Vec<u8>),
    /// The operation answered without a body (a deletion).
    Empty,
    /// It failed: what the model should change.
    Failed(String),
}

/// Runs `tool` for `principal` through the operation, in-process.
pub async fn run(
    operations: &BoxEndpoint<'static, Response>,
    tool: &Tool,
    arguments: &Map<String, Value>,
    principal: Principal,
) -> Outcome {
    let mut request = match request_for(tool, arguments) {
        Ok(request) => request,
        Err(why) => return Outcome::Failed(why),
    };
    request.extensions_mut().insert(Delegated(principal));
    request.extensions_mut().insert(Calling(tool.name.clone()));
    let response = match operations.call(request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let Ok(body) = response
        .into_body()
        .into_bytes_limit(MAX_RESPONSE_BYTES)
        .await
    else {
        return Outcome::Failed("The result was too large to return.".to_owned());
    };
    if !status.is_success() {
        return Outcome::Failed(problem_text(status, &body));
    }
    if body.is_empty() || !is_json {
        return Outcome::Empty;
    }
    // Errand's operations answer with one JSON object; anything else is
    // not passed on as structured content.
    if body.first() != Some(&b'{') || std::str::from_utf8(&body).is_err() {
        return Outcome::Failed("The result could not be read.".to_owned());
    }
    // Handing over the buffer, not copying it.
    Outcome::Json(body.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{spec::Documents, tools::Catalog};
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::from_documents(&Documents::committed().unwrap()).unwrap()
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn arguments_are_split_into_path_query_and_body() {
        let catalog = catalog();
        let update = catalog.get("updateTask").unwrap();
        let request = request_for(update, &args(json!({"number": 7, "title": "x"}))).unwrap();
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(request.uri().path(), "/v1/tasks/7");
        let list = catalog.get("listTasks").unwrap();
        let request =
            request_for(list, &args(json!({"q": "a b&c", "limit": 5, "tag": null}))).unwrap();
        assert_eq!(request.uri().query(), Some("limit=5&q=a+b%26c"));
    }

    #[test]
    fn unknown_missing_and_structured_parameters_are_explained() {
        let catalog = catalog();
        let get = catalog.get("getTask").unwrap();
        let err = request_for(get, &args(json!({"numbr": 1}))).unwrap_err();
        assert!(
            err.contains("`numbr` is not an argument of getTask; it takes number"),
            "{err}"
        );
        assert_eq!(
            request_for(get, &args(json!({}))).unwrap_err(),
            "`number` is required."
        );
        let list = catalog.get("listTasks").unwrap();
        assert!(
            request_for(list, &args(json!({"tag": ["a"]})))
                .unwrap_err()
                .contains("single value")
        );
        let path = request_for(get, &args(json!({"number": "../me"}))).unwrap();
        assert_eq!(path.uri().path(), "/v1/tasks/..%2Fme");
    }

    #[test]
    fn problems_become_their_detail_and_fields() {
        let body = json!({"detail": "1 field is invalid", "errors": [{"field": "title", "detail": "too long"}]});
        assert_eq!(
            problem_text(StatusCode::BAD_REQUEST, body.to_string().as_bytes()),
            "1 field is invalid\n- title: too long"
        );
    }
}
