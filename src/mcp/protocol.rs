//! The Model Context Protocol's messages, as far as Errand's server needs
//! them: JSON-RPC 2.0 envelopes, the revisions served, and the results of
//! the methods that are not tool calls.
//!
//! Two eras are served on one endpoint (`revision` tells them apart): a
//! 2026-07-28 request describes itself and needs no handshake; an older
//! client first sends `initialize`. Errand keeps no session in either.

use std::borrow::Cow;

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};
use serde_json::{Map, Value, json};

use super::{apps, call::Outcome, revision::Era};
use crate::{site::TITLE, tools::Tool};

/// The current revision: stateless, `server/discover`.
pub const LATEST: &str = "2026-07-28";
/// Every revision served, newest first: the latest, then those negotiated
/// with `initialize` (`HANDSHAKE_VERSIONS`).
pub const VERSIONS: [&str; 4] = [LATEST, "2025-11-25", "2025-06-18", "2025-03-26"];
/// Revisions negotiated with `initialize`, newest first.
pub const HANDSHAKE_VERSIONS: &[&str] = VERSIONS.split_at(1).1;
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// How long a client may reuse what does not change while Errand runs:
/// `server/discover`, the tools, prompts and views.
const LIST_TTL_MS: u64 = 60 * 60 * 1000;
/// The MCP Events extension, as servers declare it.
pub const EVENTS_EXTENSION: &str = "io.modelcontextprotocol/events";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_VERSION: i64 = -32022;

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

/// What Errand offers: tools, the views (resources), prompts and events,
/// and the extensions behind the last two. A client on the handshake may
/// also set a log level (Errand sends no log messages; the 2026-07-28
/// revision has no such method).
fn capabilities(era: &Era) -> Value {
    let mut capabilities = json!({
        "tools": { "listChanged": false },
        "resources": { "listChanged": false, "subscribe": false },
        "prompts": { "listChanged": false },
        // ChatGPT reads the events capability here (the MCP Events draft
        // it implements); the final extension lists it under `extensions`.
        "events": {},
        "extensions": { apps::EXTENSION: {}, EVENTS_EXTENSION: {} },
    });
    if !era.is_stateless() {
        capabilities["logging"] = json!({});
    }
    capabilities
}

pub fn initialize_result(requested: Option<&str>) -> Value {
    json!({
        "protocolVersion": negotiate(requested),
        "capabilities": capabilities(&Era::Handshake),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

pub fn discover_result(era: &Era) -> Value {
    let mut result = json!({
        "supportedVersions": VERSIONS,
        "capabilities": capabilities(era),
        "instructions": INSTRUCTIONS,
    });
    cacheable(&mut result, "public");
    result
}

/// A tool as `tools/list` shows it. `securitySchemes` (top level and in
/// `_meta`) is how ChatGPT learns that a tool needs the user signed in; the
/// view that shows its result is named in `_meta` too (`apps`).
pub fn tool_listing(tool: &Tool) -> Value {
    let security = json!([{
        "type": "oauth2",
        "scopes": tool.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    }]);
    let mut meta = serde_json::Map::new();
    meta.insert("securitySchemes".into(), security.clone());
    apps::tool_meta(&tool.name, &mut meta);
    let mut listing = json!({
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "annotations": tool.annotations(),
        "securitySchemes": security,
        "_meta": meta,
    });
    if let Some(output) = &tool.output_schema {
        listing["outputSchema"] = output.clone();
    }
    listing
}

pub fn tools_list_result(tools: &[Tool], era: &Era) -> Value {
    let mut result = json!({ "tools": tools.iter().map(tool_listing).collect::<Vec<_>>() });
    if era.is_stateless() {
        cacheable(&mut result, "public");
    }
    result
}

/// Adds the 2026-07-28 caching hints (SEP-2549) to a result any client may
/// reuse for [`LIST_TTL_MS`]: `public` when it is the same for every user.
pub fn cacheable(result: &mut Value, scope: &str) {
    result["ttlMs"] = json!(LIST_TTL_MS);
    result["cacheScope"] = json!(scope);
}

/// Marks a 2026-07-28 result as final (no further input needed).
pub fn complete(result: &mut Value) {
    result["resultType"] = json!("complete");
    if result["_meta"].is_null() {
        result["_meta"] = json!({ META_SERVER_INFO: server_info() });
    }
}

/// A tool call's whole answer, written straight from the operation's JSON:
/// the result is both the structured value and (for hosts that read only
/// `content`) its text, so the operation's bytes are spliced in as they
/// are and escaped once, never parsed and written again.
pub fn call_response(id: &Value, outcome: &Outcome, stateless: bool) -> Vec<u8> {
    // Written once into one buffer: the operation's JSON goes in twice
    // (as `structuredContent`, and escaped as the text a host that drops
    // structured content shows), and a list of tasks is the bulk of it.
    static TAIL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let size = match outcome {
        // Twice the body, and room for the escapes of its quotes.
        Outcome::Json(body) => body.len() * 5 / 2 + 256,
        _ => 512,
    };
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    write_json(&mut out, id);
    out.extend_from_slice(br#","result":{"content":[{"type":"text","text":"#);
    match outcome {
        Outcome::Json(body) => {
            // `run` made sure it is UTF-8 and an object.
            write_json_text(&mut out, body);
            out.extend_from_slice(br#"}],"structuredContent":"#);
            out.extend_from_slice(body);
            out.extend_from_slice(br#","isError":false"#);
        }
        Outcome::Empty => out.extend_from_slice(br#""Done."}],"isError":false"#),
        Outcome::Failed(why) => {
            write_json(&mut out, why);
            out.extend_from_slice(br#"}],"isError":true"#);
        }
    }
    if stateless {
        let tail = TAIL.get_or_init(|| {
            format!(
                r#","resultType":"complete","_meta":{{"{META_SERVER_INFO}":{}}}"#,
                server_info()
            )
        });
        out.extend_from_slice(tail.as_bytes());
    }
    out.extend_from_slice(b"}}");
    out
}

/// Appends `json` (a JSON text, so valid UTF-8) as a JSON string. Inside
/// JSON only quotes, backslashes and control characters need escaping, so
/// this is a copy with a few insertions, which for a page of tasks costs a
/// fraction of what a general string escaper does.
fn write_json_text(out: &mut Vec<u8>, json: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut run = 0;
    for (at, &byte) in json.iter().enumerate() {
        if byte != b'"' && byte != b'\\' && byte >= 0x20 {
            continue;
        }
        out.extend_from_slice(&json[run..at]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
        run = at + 1;
    }
    out.extend_from_slice(&json[run..]);
    out.push(b'"');
}

/// Appends `value` as JSON (writing into a `Vec` cannot fail).
fn write_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// A `tools/call` request read straight into its shape. It is the message
/// clients send most, and reading it as a general `Value` first builds a map
/// of the message, of `params` and of `_meta` only to take them apart. A
/// message that does not fit this shape exactly (another method, a member of
/// another type, a batch) is read the general way, which answers it.
#[derive(Debug, Deserialize)]
pub struct ToolCall<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    pub id: Value,
    pub params: ToolCallParams,
}

/// What a `tools/call` carries; an object only (see `ToolCall`).
#[derive(Debug)]
pub struct ToolCallParams {
    pub name: String,
    pub arguments: Map<String, Value>,
    /// `Null` when there is none.
    pub meta: Value,
}

impl<'a> ToolCall<'a> {
    pub fn read(message: &'a [u8]) -> Option<Self> {
        // An array would be read by position; the general reading refuses it.
        if message.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let call: Self = serde_json::from_slice(message).ok()?;
        let id_fits = call.id.is_string() || call.id.is_i64() || call.id.is_u64();
        (call.jsonrpc == "2.0" && call.method == "tools/call" && id_fits).then_some(call)
    }
}

impl<'de> Deserialize<'de> for ToolCallParams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = ToolCallParams;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            // Members as `Value` reads them: unknown ones skipped, the last
            // of a repeated one kept, `arguments: null` as none.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolCallParams, A::Error> {
                let mut params = ToolCallParams {
                    name: String::new(),
                    arguments: Map::new(),
                    meta: Value::Null,
                };
                let mut named = false;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match &*key {
                        "name" => {
                            params.name = map.next_value()?;
                            named = true;
                        }
                        "arguments" => {
                            params.arguments = map
                                .next_value::<Option<Map<String, Value>>>()?
                                .unwrap_or_default()
                        }
                        "_meta" => params.meta = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if !named {
                    return Err(serde::de::Error::missing_field("name"));
                }
                Ok(params)
            }
        }
        deserializer.deserialize_map(Members)
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
    fn a_tool_answer_carries_the_operations_json_twice_without_reparsing_it() {
        let body = br#"{"title":"Say \"hi\"\n","n":1}"#.to_vec();
        let answer: Value = serde_json::from_slice(&call_response(
            &json!(7),
            &Outcome::Json(body.clone()),
            true,
        ))
        .unwrap();
        assert_eq!(answer["id"], 7);
        let result = &answer["result"];
        assert_eq!(result["structuredContent"]["title"], "Say \"hi\"\n");
        assert_eq!(
            result["content"][0]["text"],
            std::str::from_utf8(&body).unwrap()
        );
        assert_eq!(result["resultType"], "complete");
        assert!(result["_meta"][META_SERVER_INFO]["name"].is_string());
        let failed: Value = serde_json::from_slice(&call_response(
            &json!("a"),
            &Outcome::Failed("title: \"x\" is too long".into()),
            false,
        ))
        .unwrap();
        assert_eq!(failed["result"]["isError"], true);
        assert_eq!(
            failed["result"]["content"][0]["text"],
            "title: \"x\" is too long"
        );
        assert!(failed["result"].get("resultType").is_none());
        let deleted: Value =
            serde_json::from_slice(&call_response(&json!(2), &Outcome::Empty, true)).unwrap();
        assert_eq!(deleted["result"]["content"][0]["text"], "Done.");
        assert_eq!(deleted["result"]["resultType"], "complete");
    }

    #[test]
    fn a_tool_call_is_read_in_its_shape_and_anything_else_is_left_to_the_general_reading() {
        let call = ToolCall::read(
            br#" {"jsonrpc":"2.0","id":"a","method":"tools/call","extra":[1],
                 "params":{"name":"getTask","arguments":{"number":3},"more":{},
                           "_meta":{"k":"v"}}}"#,
        )
        .unwrap();
        assert_eq!(call.id, json!("a"));
        assert_eq!(call.params.name, "getTask");
        assert_eq!(call.params.arguments["number"], 3);
        assert_eq!(call.params.meta, json!({"k": "v"}));
        let bare =
            ToolCall::read(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getMe","arguments":null}}"#)
                .unwrap();
        assert!(bare.params.arguments.is_empty());
        assert!(bare.params.meta.is_null());
        for other in [
            // A batch, and parameters by position.
            &br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getMe"}}]"#[..],
            br#"["2.0","tools/call",1,{"name":"getMe"}]"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["getMe",{}]}"#,
            // Another method, version, id type; a name or arguments of the wrong type.
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"getMe"}}"#,
            br#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"getMe"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"getMe"}}"#,
            br#"{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"getMe"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[]}}"#,
            // A notification, and a repeated member.
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"getMe"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"getMe"}}"#,
        ] {
            assert!(
                ToolCall::read(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_json_text_is_escaped_into_the_string_that_reads_back_as_it() {
        for text in [
            r#"{"a":"b"}"#,
            r#"{"say":"\"hi\" \\ back\u0000","é":"✓ ok"}"#,
            "{\n  \"pretty\": [1,\t2]\r\n}",
            "{\"raw\":\"a\u{1}b\u{1f}\"}",
            "",
        ] {
            let mut out = Vec::new();
            write_json_text(&mut out, text.as_bytes());
            let read: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(read, text);
        }
    }

    #[test]
    fn encoded_header_values_are_decoded() {
        assert_eq!(header_text("=?base64?w6l0w6k=?=").as_deref(), Some("été"));
        assert_eq!(header_text("tools/call").as_deref(), Some("tools/call"));
        assert_eq!(header_text("=?base64?***?="), None);
    }
}
