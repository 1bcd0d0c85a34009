//! How clients and directories find the MCP server without connecting to
//! it: the server card (SEP-2127, `<mcp url>/server-card`,
//! `application/mcp-server-card+json`), the domain's catalog of it (the AI
//! Catalog at `/.well-known/ai-catalog.json`, and the earlier MCP catalog at
//! `/.well-known/mcp/catalog.json` that clients of the draft read), and the
//! OpenAI domain-verification token (`/.well-known/openai-apps-challenge`).
//! The first three are public and cross-origin readable; what the server
//! can do is `server/discover`'s to say, so the card names no tools and no
//! capabilities.

use poem::{
    Response,
    http::{Method, StatusCode, header},
};
use serde_json::{Value, json};

use super::protocol;
use crate::{config::PublicUrl, site::TITLE};

pub const SERVER_CARD_PATH: &str = "/mcp/server-card";
pub const AI_CATALOG_PATH: &str = "/.well-known/ai-catalog.json";
pub const MCP_CATALOG_PATH: &str = "/.well-known/mcp/catalog.json";
pub const OPENAI_CHALLENGE_PATH: &str = "/.well-known/openai-apps-challenge";

const CARD_TYPE: &str = "application/mcp-server-card+json";
const DESCRIPTION: &str =
    "Tasks and reminders for the signed-in user: add, list, complete, remind.";

/// The host of the public URL, and its labels reversed (`example.com` →
/// `com.example`), which the card's name is made of.
fn host(public_url: &PublicUrl) -> String {
    url::Url::parse(public_url.as_str())
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned())
}

pub fn server_card(public_url: &PublicUrl) -> Value {
    let host = host(public_url);
    let reversed: Vec<&str> = host.split('.').rev().collect();
    json!({
        "$schema": "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json",
        "name": format!("{}/errand", reversed.join(".")),
        "version": env!("CARGO_PKG_VERSION"),
        "title": TITLE,
        "description": DESCRIPTION,
        "websiteUrl": public_url.as_str(),
        "remotes": [{
            "type": "streamable-http",
            "url": public_url.join(crate::auth::resource::MCP_PATH),
            "supportedProtocolVersions": protocol::VERSIONS,
        }],
    })
}

fn catalog(public_url: &PublicUrl, spec_version: &str, identifier: String) -> Value {
    json!({
        "specVersion": spec_version,
        "entries": [{
            "identifier": identifier,
            "type": CARD_TYPE,
            "url": public_url.join(SERVER_CARD_PATH),
        }],
    })
}

pub fn ai_catalog(public_url: &PublicUrl) -> Value {
    catalog(
        public_url,
        "1.0",
        format!("urn:air:{}:mcp:errand", host(public_url)),
    )
}

pub fn mcp_catalog(public_url: &PublicUrl) -> Value {
    catalog(
        public_url,
        "draft",
        format!("urn:air:{}:errand", host(public_url)),
    )
}

/// A public document: any origin may read it, caches may keep it an hour,
/// and a client that has it (by `ETag`) gets 304.
pub fn public_document(
    method: &Method,
    if_none_match: Option<&str>,
    content_type: &str,
    body: &Value,
) -> Response {
    let text = body.to_string();
    let etag = format!("\"{}\"", &crate::secrets::digest(&text)[..16]);
    let builder = Response::builder()
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET")
        .header(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Content-Type, If-None-Match",
        )
        .header(header::ACCESS_CONTROL_EXPOSE_HEADERS, "ETag");
    if *method == Method::OPTIONS {
        return builder.status(StatusCode::NO_CONTENT).finish();
    }
    let builder = builder
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::ETAG, etag.as_str());
    if if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder.content_type(content_type).body(text)
}

pub fn card_response(
    method: &Method,
    if_none_match: Option<&str>,
    public_url: &PublicUrl,
) -> Response {
    public_document(method, if_none_match, CARD_TYPE, &server_card(public_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_is_named_after_the_domain_and_points_at_the_endpoint() {
        let url = PublicUrl::parse("https://errand.example.com").unwrap();
        let card = server_card(&url);
        assert_eq!(card["name"], "com.example.errand/errand");
        assert_eq!(card["remotes"][0]["url"], "https://errand.example.com/mcp");
        assert!(card["description"].as_str().unwrap().len() <= 100);
        assert!(card.get("tools").is_none() && card.get("capabilities").is_none());
        assert_eq!(
            ai_catalog(&url)["entries"][0]["url"],
            "https://errand.example.com/mcp/server-card"
        );
    }
}
