//! The MCP server at `/mcp`: Streamable HTTP, JSON responses, no sessions.
//! ChatGPT apps, Claude and agent frameworks reach the same actions as the
//! GPT through it (`tools` builds the tools from the contract, `call` runs
//! them through the operations, `protocol` has the messages).
//!
//! A request passes, in order: the `Origin` check (a browser page on another
//! site must not drive a user's MCP session: DNS rebinding), the bearer
//! token (401 with the RFC 9728 `resource_metadata` pointer, so a client can
//! discover how to sign in; the token must be for this resource, RFC 8707),
//! the revision headers, and for `tools/call` the tool's scope (403
//! `insufficient_scope`, naming the scope, so a client can step up).

pub mod apps;
pub mod call;
pub mod discovery;
pub mod prompts;
pub mod protocol;
pub mod revision;

use std::sync::Arc;

use poem::{
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response,
    endpoint::BoxEndpoint,
    http::{HeaderMap, StatusCode, header},
};
use serde_json::{Map, Value};

use crate::{
    auth::{Authenticator, Principal, Resource, principal::bearer_token},
    config::PublicUrl,
    problem::Problem,
    tools::Catalog,
    webhooks::mcp::{self as mcp_events, McpEvents},
};
use revision::Era;

/// An MCP message is small; anything larger is refused unread.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// What the endpoint needs: the tools, the operations to run them on, and
/// what its challenges and origin check compare with (worked out once).
pub struct McpServer {
    catalog: Arc<Catalog>,
    operations: BoxEndpoint<'static, Response>,
    /// `resource_metadata="…"`, the pointer every challenge carries.
    metadata_param: String,
    /// The auth-params of a 401: the metadata and every scope a tool needs.
    challenge: String,
    /// Errand's own origin, the only one a browser page may call from.
    own_origin: Option<String>,
    /// The dedicated origin hosts serve the views from, when configured.
    widget_domain: Option<String>,
    /// MCP Events subscriptions (absent in a server built without storage).
    events: Option<McpEvents>,
}

impl McpServer {
    pub fn new(
        catalog: Arc<Catalog>,
        operations: impl Endpoint<Output = Response> + 'static,
        public_url: &PublicUrl,
    ) -> Self {
        let metadata_param = format!(
            "resource_metadata=\"{}\"",
            public_url.join(Resource::Mcp.metadata_path())
        );
        let scopes: Vec<&str> = catalog.scopes().iter().map(|s| s.as_str()).collect();
        let challenge = format!("{metadata_param}, scope=\"{}\"", scopes.join(" "));
        Self {
            catalog,
            operations: operations.boxed(),
            challenge,
            metadata_param,
            own_origin: url::Url::parse(public_url.as_str())
                .ok()
                .map(|url| url.origin().ascii_serialization()),
            widget_domain: None,
            events: None,
        }
    }

    /// With MCP Events: `events/subscribe` and `events/unsubscribe` store
    /// subscriptions through `events`.
    pub fn with_events(mut self, events: McpEvents) -> Self {
        self.events = Some(events);
        self
    }

    /// Declares the dedicated origin hosts serve the views from.
    pub fn with_widget_domain(mut self, domain: Option<String>) -> Self {
        self.widget_domain = domain;
        self
    }

    /// The caller, if the request carries a live token issued for `/mcp`.
    async fn authenticate(&self, req: &Request) -> Result<Principal, Problem> {
        let authenticator = req
            .data::<Authenticator>()
            .ok_or_else(|| Problem::internal("Authenticator missing from the request data"))?;
        let token = bearer_token(req).map_err(|p| p.challenge_params(&self.challenge))?;
        authenticator
            .authenticate_for(token, Resource::Mcp)
            .await
            .map_err(|err| Problem::from(err).challenge_params(&self.challenge))
    }

    /// An `Origin` from a browser page is accepted only from Errand's own
    /// origin; clients that are not browsers send none.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => self.own_origin.as_deref() == Some(origin),
        }
    }

    async fn handle(&self, req: Request, body: Body) -> poem::Result<Response> {
        if !self.origin_allowed(req.headers()) {
            return Ok(rpc_reply(
                StatusCode::FORBIDDEN,
                &protocol::error(
                    &Value::Null,
                    protocol::INVALID_REQUEST,
                    "Requests from web pages on other sites may not use this MCP server.",
                    None,
                ),
            ));
        }
        let principal = self.authenticate(&req).await?;
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        if !(accept.contains("application/json") || accept.contains("*/*")) {
            return Ok(rpc_reply(
                StatusCode::NOT_ACCEPTABLE,
                &protocol::error(
                    &Value::Null,
                    protocol::INVALID_REQUEST,
                    "Accept application/json: this server answers with JSON.",
                    None,
                ),
            ));
        }
        let bytes = match body.into_bytes_limit(MAX_MESSAGE_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return Ok(rpc_reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &protocol::error(
                        &Value::Null,
                        protocol::INVALID_REQUEST,
                        "The message is too large.",
                        None,
                    ),
                ));
            }
        };
        if let Some(call) = protocol::ToolCall::read(&bytes) {
            let params = &call.params;
            let era = match revision::judge_parts(
                req.headers(),
                "tools/call",
                &params.meta,
                Some(Some(&params.name)),
                &call.id,
            ) {
                Ok(era) => era,
                Err(refusal) => return Ok(rpc_reply(refusal.status, &refusal.error)),
            };
            return self
                .call_tool(
                    &params.name,
                    Some(&params.arguments),
                    &call.id,
                    era.is_stateless(),
                    principal,
                )
                .await;
        }
        let message: Value = match serde_json::from_slice(&bytes) {
            Ok(message) => message,
            Err(err) => {
                return Ok(rpc_reply(
                    StatusCode::BAD_REQUEST,
                    &protocol::error(
                        &Value::Null,
                        protocol::PARSE_ERROR,
                        &format!("The body is not JSON: {err}"),
                        None,
                    ),
                ));
            }
        };
        // The message is taken apart, not copied: a tool call's arguments
        // are read where they lie.
        let Value::Object(mut object) = message else {
            return Ok(rpc_reply(
                StatusCode::BAD_REQUEST,
                &protocol::error(
                    &Value::Null,
                    protocol::INVALID_REQUEST,
                    "Send one JSON-RPC message (an object); batches are not supported.",
                    None,
                ),
            ));
        };
        let invalid = |message: &str| {
            Ok(rpc_reply(
                StatusCode::BAD_REQUEST,
                &protocol::error(&Value::Null, protocol::INVALID_REQUEST, message, None),
            ))
        };
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("Messages must be JSON-RPC 2.0 (\"jsonrpc\": \"2.0\").");
        }
        let Some(Value::String(method)) = object.remove("method") else {
            // A response to a request of ours: there are none to answer.
            return Ok(StatusCode::ACCEPTED.into_response());
        };
        let Some(id) = object.remove("id") else {
            // Notifications (initialized, cancelled, …) need no answer.
            return Ok(StatusCode::ACCEPTED.into_response());
        };
        // MCP request ids are strings or integers (never null).
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return invalid("A request id must be a string or an integer.");
        }
        let params = object.remove("params").unwrap_or(Value::Null);
        if !(params.is_object() || params.is_null()) {
            return Ok(rpc_reply(
                StatusCode::OK,
                &protocol::error(
                    &id,
                    protocol::INVALID_PARAMS,
                    "`params` must be an object.",
                    None,
                ),
            ));
        }
        let era = match revision::judge(req.headers(), &method, &params, &id) {
            Ok(era) => era,
            Err(refusal) => return Ok(rpc_reply(refusal.status, &refusal.error)),
        };
        self.dispatch(&method, &params, &id, &era, principal).await
    }

    async fn dispatch(
        &self,
        method: &str,
        params: &Value,
        id: &Value,
        era: &Era,
        principal: Principal,
    ) -> poem::Result<Response> {
        let stateless = era.is_stateless();
        let invalid =
            |message: &str, data: Option<Value>| Ok(invalid_params(id, stateless, message, data));
        let empty_arguments = Map::new();
        let mut result = match method {
            // The handshake and its keep-alive exist only before 2026-07-28.
            "initialize" if !stateless => {
                protocol::initialize_result(params["protocolVersion"].as_str())
            }
            "ping" | "logging/setLevel" if !stateless => Value::Object(Map::new()),
            "server/discover" => protocol::discover_result(era),
            "tools/list" => protocol::tools_list_result(&self.catalog.tools, era),
            "resources/list" => {
                let mut result = serde_json::json!({ "resources": apps::listing(self.widget_domain.as_deref()) });
                protocol::cacheable(&mut result, "public");
                result
            }
            "resources/templates/list" => {
                let mut result = serde_json::json!({ "resourceTemplates": [] });
                protocol::cacheable(&mut result, "public");
                result
            }
            "resources/read" => {
                let uri = params["uri"].as_str().unwrap_or_default();
                let Some(mut result) = apps::read(uri, self.widget_domain.as_deref()) else {
                    return invalid(
                        &format!("Unknown resource: `{uri}`. resources/list names the resources."),
                        Some(serde_json::json!({ "uri": uri })),
                    );
                };
                protocol::cacheable(&mut result, "public");
                result
            }
            "prompts/list" => {
                let mut result = prompts::listing();
                protocol::cacheable(&mut result, "public");
                result
            }
            "prompts/get" => {
                let name = params["name"].as_str().unwrap_or_default();
                match prompts::get(name, &params["arguments"]) {
                    Ok(result) => result,
                    Err(why) => return invalid(&why, None),
                }
            }
            "events/list" => mcp_events::definitions(),
            "events/subscribe" | "events/unsubscribe" if self.events.is_some() => {
                // An event carries the user's tasks: reading them is needed.
                if !principal.scopes.contains(crate::auth::Scope::TasksRead) {
                    return Err(Problem::insufficient_scope(
                        crate::auth::Scope::TasksRead.as_str(),
                    )
                    .challenge_params(&self.metadata_param)
                    .into());
                }
                let Some(events) = &self.events else {
                    return invalid("Events are not available.", None);
                };
                let outcome = if method == "events/subscribe" {
                    events.subscribe(&principal, params).await
                } else {
                    events.unsubscribe(&principal, params).await
                };
                match outcome {
                    Ok(result) => result,
                    Err(err) => {
                        if err.is_internal() {
                            tracing::error!(error = %err, "mcp events failed");
                        }
                        let (code, data) = err.code_and_data();
                        let message = if err.is_internal() {
                            "The subscription could not be stored; retry shortly.".to_owned()
                        } else {
                            err.to_string()
                        };
                        let status = if stateless && !err.is_internal() {
                            StatusCode::BAD_REQUEST
                        } else {
                            StatusCode::OK
                        };
                        return Ok(rpc_reply(
                            status,
                            &protocol::error(id, code, &message, data),
                        ));
                    }
                }
            }
            "tools/call" => {
                let arguments = match &params["arguments"] {
                    Value::Object(arguments) => Some(arguments),
                    Value::Null => Some(&empty_arguments),
                    _ => None,
                };
                let name = params["name"].as_str().unwrap_or_default();
                return self
                    .call_tool(name, arguments, id, stateless, principal)
                    .await;
            }
            _ => {
                let status = if stateless {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::OK
                };
                return Ok(rpc_reply(
                    status,
                    &protocol::error(
                        id,
                        protocol::METHOD_NOT_FOUND,
                        &format!("Method not found: `{method}`."),
                        None,
                    ),
                ));
            }
        };
        if stateless {
            protocol::complete(&mut result);
        }
        Ok(rpc_reply(StatusCode::OK, &protocol::response(id, result)))
    }

    /// Runs the tool `name` for `principal`; `arguments` is `None` when the
    /// request's were not an object.
    async fn call_tool(
        &self,
        name: &str,
        arguments: Option<&Map<String, Value>>,
        id: &Value,
        stateless: bool,
        principal: Principal,
    ) -> poem::Result<Response> {
        let invalid = |message: &str| Ok(invalid_params(id, stateless, message, None));
        let Some(tool) = self.catalog.get(name) else {
            return invalid(&format!(
                "Unknown tool: `{name}`. tools/list names the tools."
            ));
        };
        if let Some(missing) = tool.scopes.iter().find(|s| !principal.scopes.contains(**s)) {
            return Err(Problem::insufficient_scope(missing.as_str())
                .challenge_params(&self.metadata_param)
                .into());
        }
        let Some(arguments) = arguments else {
            return invalid("`arguments` must be an object.");
        };
        tracing::info!(tool = %tool.name, "mcp tool call");
        let outcome = call::run(&self.operations, tool, arguments, principal).await;
        Ok(rpc_text(
            StatusCode::OK,
            protocol::call_response(id, &outcome, stateless),
        ))
    }
}

/// Parameters the method cannot take: a 400 on the stateless wire, inside
/// a 200 for clients that negotiated with `initialize`.
fn invalid_params(id: &Value, stateless: bool, message: &str, data: Option<Value>) -> Response {
    let status = if stateless {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    rpc_reply(
        status,
        &protocol::error(id, protocol::INVALID_PARAMS, message, data),
    )
}

fn rpc_reply(status: StatusCode, body: &Value) -> Response {
    rpc_text(status, body.to_string())
}

fn rpc_text(status: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
}

/// The `/mcp` endpoint (POST; the server answers GET and DELETE with 405:
/// there is no server-initiated stream and no session to end).
pub fn endpoint(server: McpServer) -> impl Endpoint<Output = Response> {
    let server = Arc::new(server);
    poem::endpoint::make(move |req: Request| {
        let server = server.clone();
        async move {
            let (req, mut body) = req.split();
            let body = body.take().unwrap_or_else(|_| Body::empty());
            server.handle(req, body).await
        }
    })
}
