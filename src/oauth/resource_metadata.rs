//! RFC 9728 protected-resource metadata: for each of Errand's resources,
//! which authorization server issues its tokens and which scopes they carry.
//! An MCP client finds the MCP document from the 401's `resource_metadata`
//! (or at the path-suffixed well-known URL), and from it this server's
//! RFC 8414 metadata.

use poem::{Response, handler, http::StatusCode, web::Data};
use serde_json::json;

use super::OAuthState;
use crate::auth::Resource;

fn document(state: &OAuthState, resource: Resource) -> Response {
    let scopes: Vec<&str> = resource.scopes().iter().map(|s| s.as_str()).collect();
    let name = match resource {
        Resource::Api => "Errand HTTP API",
        Resource::Mcp => "Errand MCP server",
    };
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/json")
        .header("cache-control", "public, max-age=3600")
        .body(
            json!({
                "resource": resource.identifier(&state.public_url),
                "authorization_servers": [state.public_url.as_str()],
                "scopes_supported": scopes,
                "bearer_methods_supported": ["header"],
                "resource_name": name,
                "resource_documentation": state.public_url.join("/docs"),
            })
            .to_string(),
        )
}

#[handler]
pub fn api(Data(state): Data<&OAuthState>) -> Response {
    document(state, Resource::Api)
}

#[handler]
pub fn mcp(Data(state): Data<&OAuthState>) -> Response {
    document(state, Resource::Mcp)
}
