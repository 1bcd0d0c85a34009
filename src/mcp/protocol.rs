//! The Model Context Protocol's messages, as far as a tools-only server
//! needs them: JSON-RPC 2.0 envelopes, the protocol revisions and how a
//! request says which one it speaks, and the results of `initialize`,
//! `server/discover` and `tools/list`.
//!
//! Two eras are served on one endpoint. A 2026-07-28 request carries its
//! revision in `params._meta` and in headers, and needs no handshake; an
//! older client first sends `initialize` and then names its revision in the
//! `MCP-Protocol-Version` header. Errand keeps no session in either.

use serde_json::{Value, json};

use crate::{site::TITLE, tools::Tool};

/// The current revision: stateless, `server/discover`.
pub const LATEST: &str = "2026-07-28";
/// Every revision served, newest first: the latest, then those negotiated
/// with `initialize` (`HANDSHAKE_VERSIONS`).
pub const VERSIONS: [&str; 4] = [LATEST, "2025-11-25", "2025-06-18", "2025-03-26"];
/// Revisions negotiated with `initialize`, newest first.
pub const HANDSHAKE_VERSIONS: &[&str] = VERSIONS.split_at(1).1;
/// Where a 2026-07-28 request names its revision.
pub const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// How long a client may reuse `tools/list` and `server/discover`.
const LIST_TTL_MS: u64 = 60 * 60 * 1000;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// Which revision a request speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28 and later: each request names its revision.
    Stateless(String),
    /// A client that negotiated with `initialize` (or is doing so).
    Handshake,
}

impl Era {
    pub fn of(params: &Value) -> Self {
        match params["_meta"][META_VERSION].as_str() {
            Some(version) => Self::Stateless(version.to_owned()),
            None => Self::Handshake,
        }
    }
}

/// The revision to answer an `initialize` with: the client's if Errand
/// speaks it, otherwise the newest handshake revision (the client then
/// decides whether it can continue).
pub fn negotiate(requested: Option<&str>) -> &'static str {
    HANDSHAKE_VERSIONS
        .iter()
        .copied()
        .find(|v| Some(*v) == requested)
        .unwrap_or(HANDSHAKE_VERSIONS[0])
}

fn server_info() -> Value {
    json!({ "name": "errand", "title": TITLE, "version": env!("CARGO_PKG_VERSION") })
}

const INSTRUCTIONS: &str = "Errand keeps the signed-in user's tasks and reminders. Refer to a \
task by its number (shown to the user as #3). Give times as RFC 3339 with the user's UTC offset. \
Before deleting, make sure the user means it. When a call fails, the text says what to correct.";

fn capabilities() -> Value {
    json!({ "tools": { "listChanged": false } })
}

pub fn initialize_result(requested: Option<&str>) -> Value {
    json!({
        "protocolVersion": negotiate(requested),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

pub fn discover_result() -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": VERSIONS,
        "capabilities": capabilities(),
        "instructions": INSTRUCTIONS,
        "ttlMs": LIST_TTL_MS,
        "cacheScope": "public",
        "_meta": { META_SERVER_INFO: server_info() },
    })
}

/// A tool as `tools/list` shows it. `securitySchemes` (top level and in
/// `_meta`) is how ChatGPT learns that a tool needs the user signed in.
pub fn tool_listing(tool: &Tool) -> Value {
    let security = json!([{
        "type": "oauth2",
        "scopes": tool.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    }]);
    let mut listing = json!({
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "annotations": tool.annotations(),
        "securitySchemes": security,
        "_meta": { "securitySchemes": security },
    });
    if let Some(output) = &tool.output_schema {
        listing["outputSchema"] = output.clone();
    }
    listing
}

pub fn tools_list_result(tools: &[Tool], era: &Era) -> Value {
    let mut result = json!({ "tools": tools.iter().map(tool_listing).collect::<Vec<_>>() });
    if matches!(era, Era::Stateless(_)) {
        complete(&mut result);
        result["ttlMs"] = json!(LIST_TTL_MS);
        result["cacheScope"] = json!("public");
    }
    result
}

/// Marks a 2026-07-28 result as final (no further input needed).
pub fn complete(result: &mut Value) {
    result["resultType"] = json!("complete");
    if result["_meta"].is_null() {
        result["_meta"] = json!({ META_SERVER_INFO: server_info() });
    }
}

/// A tool's result: the structured value and its text, or the error text
/// the model should act on.
pub fn call_result(outcome: Result<Option<Value>, String>) -> Value {
    match outcome {
        Ok(Some(value)) => json!({
            "content": [{ "type": "text", "text": value.to_string() }],
            "structuredContent": value,
            "isError": false,
        }),
        Ok(None) => json!({
            "content": [{ "type": "text", "text": "Done." }],
            "isError": false,
        }),
        Err(text) => json!({
            "content": [{ "type": "text", "text": text }],
            "isError": true,
        }),
    }
}

pub fn response(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// Header values that are not plain ASCII arrive as `=?base64?…?=`.
pub fn header_text(raw: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    match raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(STANDARD.decode(encoded).ok()?).ok(),
        None => Some(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialize_echoes_a_known_revision_and_offers_the_newest_otherwise() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2024-01-01")), "2025-11-25");
        assert_eq!(negotiate(None), "2025-11-25");
    }

    #[test]
    fn eras_are_told_apart_by_the_meta_version() {
        let stateless = json!({ "_meta": { META_VERSION: "2026-07-28" } });
        assert_eq!(Era::of(&stateless), Era::Stateless("2026-07-28".into()));
        assert_eq!(Era::of(&json!({})), Era::Handshake);
    }

    #[test]
    fn encoded_header_values_are_decoded() {
        assert_eq!(header_text("=?base64?w6l0w6k=?=").as_deref(), Some("été"));
        assert_eq!(header_text("tools/call").as_deref(), Some("tools/call"));
        assert_eq!(header_text("=?base64?***?="), None);
    }
}
