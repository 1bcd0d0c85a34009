//! `JsonBody<T>`: the request body extractor for every operation that takes JSON.
//!
//! poem-openapi's own `Json<T>` accepts numbers where strings are expected and
//! reports failures as plain text. This one reads at most [`BODY_LIMIT`]
//! bytes, then parses with serde (strict types, the domain types' own
//! validation), checks field names against the documented schema so that a
//! misspelt field is named along with the field that was probably meant, and
//! reports every failure as a problem naming the field.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
};

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::{FieldIssue, Problem, ProblemKind};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

/// What a JSON body type demands beyond its fields' own types, enforced by
/// [`JsonBody`] and stated in its schema.
pub trait BodyRules {
    /// The fewest fields a body may send (`minProperties`): 1 for an update,
    /// which must change something.
    const MIN_FIELDS: usize = 0;
}

/// The property names of a body type, as documented, and which are required.
#[derive(Debug, Default)]
struct Fields {
    names: Vec<String>,
    required: Vec<String>,
}

/// Field lists are derived from the schema registry once per type.
fn fields_of<T: Type>() -> Arc<Fields> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Fields>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let name = T::name().into_owned();
    if let Some(found) = cache.read().ok().and_then(|map| map.get(&name).cloned()) {
        return found;
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let fields = registry
        .schemas
        .get(&name)
        .map(|schema| Fields {
            names: schema
                .properties
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .collect(),
            required: schema.required.iter().map(|n| (*n).to_owned()).collect(),
        })
        .unwrap_or_default();
    let fields = Arc::new(fields);
    if let Ok(mut map) = cache.write() {
        map.insert(name, fields.clone());
    }
    fields
}

/// The known field a caller most likely meant: same letters ignoring case and
/// separators (`dueAt` → `due_at`), or a close spelling.
pub fn closest_field<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let unknown_squashed = squash(unknown);
    if let Some(exact) = known.iter().find(|k| squash(k) == unknown_squashed) {
        return Some(exact);
    }
    known
        .iter()
        .map(|k| (k, strsim::jaro_winkler(&unknown_squashed, &squash(k))))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k.as_str())
}

fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

async fn read_limited(req: &Request, body: &mut RequestBody) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            format!(
                "The body is larger than {BODY_LIMIT} bytes (64 KiB). Send a smaller body; \
                 long notes are the usual cause (notes hold at most 5,000 characters)."
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let body = body
        .take()
        .map_err(|_| Problem::internal("request body already taken"))?;
    match body.into_bytes_limit(BODY_LIMIT).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(err) => Err(Problem::invalid_field(
            "body",
            format!("could not be read: {err}"),
        )),
    }
}

/// Parses a JSON body into `T`, reporting problems by field.
pub fn parse_body<T: Type + DeserializeOwned + BodyRules>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::invalid_field(
            "body",
            "is empty; send a JSON object with the fields this operation documents",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        Problem::new(
            ProblemKind::MalformedJson,
            format!(
                "The body is not valid JSON ({err}). Send one JSON object, e.g. \
                 {{\"title\": \"Renew passport\"}}."
            ),
        )
    })?;
    let Value::Object(object) = &value else {
        return Err(Problem::invalid_field(
            "body",
            format!("must be a JSON object, not {}", json_kind(&value)),
        ));
    };

    let fields = fields_of::<T>();
    let mut issues: Vec<FieldIssue> = object
        .keys()
        .filter(|key| !fields.names.iter().any(|name| name == *key))
        .map(|key| {
            let accepted = fields.names.join(", ");
            let detail = match closest_field(key, &fields.names) {
                Some(meant) => format!(
                    "is not a known field; did you mean `{meant}`? Known fields: {accepted}"
                ),
                None => format!("is not a known field. Known fields: {accepted}"),
            };
            FieldIssue::new(key.clone(), detail)
        })
        .collect();
    issues.extend(
        fields
            .required
            .iter()
            .filter(|name| !object.contains_key(name.as_str()))
            .map(|name| FieldIssue::new(name.clone(), "is required")),
    );
    if !issues.is_empty() {
        return Err(Problem::invalid(issues));
    }
    if object.len() < T::MIN_FIELDS {
        return Err(Problem::invalid_field(
            "body",
            format!(
                "changes nothing; send at least {} of the fields {}",
                if T::MIN_FIELDS == 1 {
                    "one".to_owned()
                } else {
                    T::MIN_FIELDS.to_string()
                },
                fields.names.join(", ")
            ),
        ));
    }

    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let field = err.path().to_string();
        let message = err.into_inner().to_string();
        Problem::invalid_field(field, message)
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a, T> ApiExtractor<'a> for JsonBody<T>
where
    T: Type + DeserializeOwned + BodyRules + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    /// Documents the body's own schema, with [`BodyRules`] added. (That
    /// unknown fields are refused, `additionalProperties: false`, cannot be
    /// said in poem-openapi's registry; `spec::finish` adds it to every
    /// request body.)
    fn register(registry: &mut Registry) {
        T::register(registry);
        if T::MIN_FIELDS > 0
            && let Some(schema) = registry.schemas.get_mut(T::name().as_ref())
        {
            schema.min_properties = Some(T::MIN_FIELDS);
        }
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: schema_ref::<T>(),
            }],
            required: true,
        })
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(content_type) if is_json_content_type(content_type) => {}
            other => {
                return Err(Problem::new(
                    ProblemKind::UnsupportedMediaType,
                    format!(
                        "Send the body as JSON with `Content-Type: application/json` (got {}).",
                        other.map_or("no Content-Type".to_owned(), |v| format!("`{v}`"))
                    ),
                )
                .into());
            }
        }
        let bytes = read_limited(req, body).await?;
        Ok(Self(parse_body::<T>(&bytes)?))
    }
}

fn schema_ref<T: Type>() -> MetaSchemaRef {
    T::schema_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_field_handles_camel_case_and_typos() {
        let known = vec!["title".to_owned(), "due_at".to_owned(), "notes".to_owned()];
        assert_eq!(closest_field("dueAt", &known), Some("due_at"));
        assert_eq!(closest_field("titel", &known), Some("title"));
        assert_eq!(closest_field("colour", &known), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
    }
}
