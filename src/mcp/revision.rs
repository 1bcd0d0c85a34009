//! Which revision of MCP a request speaks, and whether it says so properly.
//!
//! A 2026-07-28 request carries everything about itself: its revision and
//! the client's capabilities in `params._meta`, its revision, method and
//! target again in headers (so a gateway can route without reading the
//! body). An older client negotiates once with `initialize` and then names
//! its revision in `MCP-Protocol-Version`. The checks run in the order the
//! specification (and its conformance suite) judge them: a malformed
//! `_meta` first, then a header that disagrees with the body, then a
//! revision Errand does not speak, then the routing headers.

use poem::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::protocol;

/// Where a 2026-07-28 request names its revision.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// Where it lists the client's capabilities (required: a server must not
/// remember them from earlier requests).
pub const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// The revision a request speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Era {
    /// 2026-07-28 and later: each request describes itself. The client's
    /// capabilities are checked to be there; Errand answers every client
    /// alike, so nothing of them is kept.
    Stateless,
    /// A client that negotiated with `initialize` (or is doing so).
    Handshake,
}

impl Era {
    pub fn is_stateless(&self) -> bool {
        matches!(self, Self::Stateless)
    }
}

/// Why a request is refused before it is dispatched: the HTTP status and
/// the JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub error: Value,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(protocol::header_text)
        .map(|value| value.trim().to_owned())
}

/// Works out the request's revision and checks what it claims, answering
/// with the refusal the specification asks for.
pub fn judge(
    headers: &HeaderMap,
    method: &str,
    params: &Value,
    id: &Value,
) -> Result<Era, Refusal> {
    // The target of the methods that have one: a tool, a prompt, a resource.
    let target = match method {
        "tools/call" | "prompts/get" => Some(params["name"].as_str()),
        "resources/read" => Some(params["uri"].as_str()),
        _ => None,
    };
    judge_parts(headers, method, &params["_meta"], target, id)
}

/// `judge`, from the parts of the request it looks at: `params._meta`, and
/// for methods that name a target (`Some`), the name the body gives.
pub fn judge_parts(
    headers: &HeaderMap,
    method: &str,
    meta: &Value,
    target: Option<Option<&str>>,
    id: &Value,
) -> Result<Era, Refusal> {
    let refuse = |status, code, message: &str, data: Option<Value>| Refusal {
        status,
        error: protocol::error(id, code, message, data),
    };
    let header_version = header(headers, "mcp-protocol-version");
    // A request is on the stateless wire when it says so anywhere: its
    // `_meta`, a header naming a revision that has no handshake, or a
    // method that exists only there.
    let stateless = !meta[META_VERSION].is_null()
        || header_version
            .as_deref()
            .is_some_and(|v| !protocol::HANDSHAKE_VERSIONS.contains(&v))
        || method == "server/discover";
    if !stateless {
        if let Some(version) = header_version.as_deref()
            && method != "initialize"
            && !protocol::HANDSHAKE_VERSIONS.contains(&version)
        {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                protocol::UNSUPPORTED_VERSION,
                &format!("MCP-Protocol-Version `{version}` is not supported."),
                Some(json!({ "supported": protocol::VERSIONS, "requested": version })),
            ));
        }
        return Ok(Era::Handshake);
    }
    let Some(meta) = meta.as_object() else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::INVALID_PARAMS,
            "params._meta is required: it names the protocol revision \
             (io.modelcontextprotocol/protocolVersion) and the client's capabilities \
             (io.modelcontextprotocol/clientCapabilities).",
            None,
        ));
    };
    let Some(version) = meta.get(META_VERSION).and_then(Value::as_str) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::INVALID_PARAMS,
            "params._meta must name the protocol revision in \
             io.modelcontextprotocol/protocolVersion.",
            None,
        ));
    };
    if !meta.get(META_CAPABILITIES).is_some_and(Value::is_object) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::INVALID_PARAMS,
            "params._meta must list the client's capabilities in \
             io.modelcontextprotocol/clientCapabilities (an object; {} for none).",
            None,
        ));
    }
    if header_version.as_deref() != Some(version) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::HEADER_MISMATCH,
            "The MCP-Protocol-Version header must match the request's _meta protocol version.",
            None,
        ));
    }
    if version != protocol::LATEST {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            Some(json!({ "supported": protocol::VERSIONS, "requested": version })),
        ));
    }
    if header(headers, "mcp-method").as_deref() != Some(method) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::HEADER_MISMATCH,
            "The Mcp-Method header must name the request's method.",
            None,
        ));
    }
    if let Some(target) = target
        && header(headers, "mcp-name").as_deref() != target
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            protocol::HEADER_MISMATCH,
            "The Mcp-Name header must name the tool, prompt or resource the request is for.",
            None,
        ));
    }
    Ok(Era::Stateless)
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn meta(version: &str) -> Value {
        json!({ "_meta": { META_VERSION: version, META_CAPABILITIES: {} } })
    }

    fn code(result: Result<Era, Refusal>) -> (u16, i64) {
        let refusal = result.unwrap_err();
        (
            refusal.status.as_u16(),
            refusal.error["error"]["code"].as_i64().unwrap(),
        )
    }

    const LATEST: (&str, &str) = ("mcp-protocol-version", "2026-07-28");

    #[test]
    fn a_malformed_meta_is_invalid_params_before_anything_else() {
        let h = headers(&[LATEST, ("mcp-method", "server/discover")]);
        let id = json!(1);
        assert_eq!(
            code(judge(&h, "server/discover", &json!({}), &id)),
            (400, -32602)
        );
        let no_version = json!({ "_meta": { META_CAPABILITIES: {} } });
        assert_eq!(
            code(judge(&h, "server/discover", &no_version, &id)),
            (400, -32602)
        );
        let no_caps = json!({ "_meta": { META_VERSION: "2026-07-28" } });
        assert_eq!(
            code(judge(&h, "server/discover", &no_caps, &id)),
            (400, -32602)
        );
        let info_only = meta("2026-07-28");
        assert!(
            judge(&h, "server/discover", &info_only, &id)
                .unwrap()
                .is_stateless()
        );
    }

    #[test]
    fn a_header_that_disagrees_comes_before_an_unknown_revision() {
        let h = headers(&[LATEST, ("mcp-method", "tools/list")]);
        assert_eq!(
            code(judge(&h, "tools/list", &meta("v999.0.0"), &json!(1))),
            (400, -32020)
        );
        let h = headers(&[
            ("mcp-protocol-version", "v999.0.0"),
            ("mcp-method", "tools/list"),
        ]);
        let refusal = judge(&h, "tools/list", &meta("v999.0.0"), &json!(1)).unwrap_err();
        assert_eq!(refusal.error["error"]["code"], -32022);
        assert_eq!(refusal.error["error"]["data"]["requested"], "v999.0.0");
    }

    #[test]
    fn routing_headers_must_name_the_method_and_target() {
        let ok = headers(&[
            LATEST,
            ("mcp-method", "tools/call"),
            ("mcp-name", "  listTasks "),
        ]);
        let params = json!({ "name": "listTasks", "_meta": meta("2026-07-28")["_meta"] });
        assert!(judge(&ok, "tools/call", &params, &json!(1)).is_ok());
        let wrong_case = headers(&[
            LATEST,
            ("mcp-method", "TOOLS/CALL"),
            ("mcp-name", "listTasks"),
        ]);
        assert_eq!(
            code(judge(&wrong_case, "tools/call", &params, &json!(1))),
            (400, -32020)
        );
        let no_name = headers(&[LATEST, ("mcp-method", "tools/call")]);
        assert_eq!(
            code(judge(&no_name, "tools/call", &params, &json!(1))),
            (400, -32020)
        );
    }

    #[test]
    fn older_clients_keep_their_handshake() {
        let h = headers(&[("mcp-protocol-version", "2025-11-25")]);
        assert_eq!(
            judge(&h, "tools/list", &json!({}), &json!(1)).unwrap(),
            Era::Handshake
        );
        assert_eq!(
            judge(&HeaderMap::new(), "initialize", &json!({}), &json!(1)).unwrap(),
            Era::Handshake
        );
    }
}
