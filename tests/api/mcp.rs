//! The MCP server and the ways an MCP client signs in: discovery from a 401,
//! client metadata documents and dynamic registration, resource-bound
//! tokens, the tools and what their calls do; and the official MCP Python
//! SDK doing all of it as a real client would.

use std::time::Duration;

use errand::{auth::Resource, config::WebhookSettings, oauth::clients::GrantType};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpListener};

use crate::{
    common::TestApp,
    oauth_common::{Browser, redirect_params, register_with, urlencode},
};

/// POSTs one JSON-RPC message to `/mcp` the way a 2025-11-25 client does.
async fn rpc(app: &TestApp, token: Option<&str>, message: Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&message);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// `tools/list`, as sent; for checking how it is answered.
async fn list_tools(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    rpc(
        app,
        token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await
}

/// The whole `tools/list` answer of a caller it is meant to succeed for.
async fn listed_tools(app: &TestApp, token: Option<&str>) -> Value {
    list_tools(app, token).await.json().await.unwrap()
}

async fn call(app: &TestApp, token: &str, tool: &str, arguments: Value) -> Value {
    let response = rpc(
        app,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["result"].clone()
}

#[tokio::test]
async fn an_unauthenticated_client_learns_where_and_how_to_sign_in() {
    let app = TestApp::spawn().await;
    let response = list_tools(&app, None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = app.url("/.well-known/oauth-protected-resource/mcp");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"tasks:read tasks:write\""),
        "{challenge}"
    );

    let resource = app
        .get_json("/.well-known/oauth-protected-resource/mcp")
        .await;
    assert_eq!(resource["resource"], app.url("/mcp"));
    assert_eq!(resource["authorization_servers"], json!([app.address]));
    assert_eq!(
        resource["scopes_supported"],
        json!(["tasks:read", "tasks:write"])
    );
    let api = app.get_json("/.well-known/oauth-protected-resource").await;
    assert_eq!(api["resource"], app.address);

    let server = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(server["issuer"], app.address);
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        server["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(server["client_id_metadata_document_supported"], json!(true));
    assert_eq!(server["registration_endpoint"], app.url("/oauth/register"));
}

#[tokio::test]
async fn each_door_takes_only_its_own_tokens() {
    let app = TestApp::spawn().await;
    let api_user = app.user("api@example.com").await;
    let response = list_tools(&app, Some(&api_user.token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");

    let mcp_user = app
        .user_for("mcp@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let listed = app.list_tasks(&mcp_user, &[]).await;
    assert_eq!(listed.status(), StatusCode::UNAUTHORIZED);
    let problem = listed.json::<Value>().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("MCP endpoint"),
        "{problem}"
    );
    let response = list_tools(&app, Some(&mcp_user.token)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tools_are_the_gpt_actions_with_hints_from_the_policy_table() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let init = rpc(&app, Some(&user.token), json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    let init: Value = init.json().await.unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["result"]["capabilities"]["tools"],
        json!({"listChanged": false})
    );

    let listed: Value = listed_tools(&app, Some(&user.token)).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let gpt = app.get_json("/openapi/gpt-actions.json").await;
    let mut operations: Vec<String> = gpt["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| {
            ops.as_object()
                .unwrap()
                .values()
                .map(|o| o["operationId"].as_str().unwrap().to_owned())
        })
        .collect();
    operations.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, operations);
    assert!(!names.contains(&"createWebhook"));
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap().clone();
    assert_eq!(
        tool("deleteTask")["annotations"]["destructiveHint"],
        json!(true)
    );
    assert_eq!(
        tool("listTasks")["annotations"]["readOnlyHint"],
        json!(true)
    );
    assert_eq!(
        tool("createTask")["annotations"]["readOnlyHint"],
        json!(false)
    );
    assert_eq!(
        tool("createTask")["annotations"]["openWorldHint"],
        json!(false)
    );
    assert_eq!(
        tool("createTask")["inputSchema"]["required"],
        json!(["title"])
    );
    assert_eq!(tool("createTask")["outputSchema"]["title"], "Task");
    assert_eq!(
        tool("createTask")["securitySchemes"],
        json!([{"type": "oauth2", "scopes": ["tasks:write"]}])
    );
    assert!(tool("deleteTask").get("outputSchema").is_none());
}

#[tokio::test]
async fn tool_calls_change_the_same_tasks_the_api_sees() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let created = call(
        &app,
        &user.token,
        "createTask",
        json!({"title": "Buy milk", "tags": ["errands"]}),
    )
    .await;
    assert_eq!(created["isError"], json!(false));
    let task = &created["structuredContent"];
    assert_eq!(task["title"], "Buy milk");
    let number = task["number"].as_i64().unwrap();
    let text: Value =
        serde_json::from_str(created["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, task);

    let done = call(&app, &user.token, "completeTask", json!({"number": number})).await;
    assert_eq!(done["structuredContent"]["status"], "done");
    let open = call(&app, &user.token, "listTasks", json!({})).await;
    assert_eq!(open["structuredContent"]["tasks"], json!([]));
    let all = call(
        &app,
        &user.token,
        "listTasks",
        json!({"status": "all", "tag": "errands"}),
    )
    .await;
    assert_eq!(
        all["structuredContent"]["tasks"][0]["number"],
        json!(number)
    );
    let deleted = call(&app, &user.token, "deleteTask", json!({"number": number})).await;
    assert_eq!(deleted["isError"], json!(false));
    let api_user = app
        .user_with_scopes("alice@example.com", "tasks:read")
        .await;
    assert_eq!(
        app.get_task(&api_user, number).await.status(),
        StatusCode::NOT_FOUND
    );

    // Metrics count each tool call under its operation, beside the /mcp
    // requests that carried them.
    let metrics = app.metrics().await;
    for expected in [
        r#"errand_http_requests_total{door="mcp",operation="createTask",status="201"} 1"#,
        r#"errand_http_requests_total{door="mcp",operation="listTasks",status="200"} 2"#,
        r#"errand_http_requests_total{door="mcp",operation="deleteTask",status="204"} 1"#,
        r#"errand_http_requests_total{door="http",operation="/mcp",status="200"} 5"#,
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_a_tool_error_the_model_can_act_on() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let blank = call(&app, &user.token, "createTask", json!({"title": " "})).await;
    assert_eq!(blank["isError"], json!(true));
    let text = blank["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("title"), "{text}");
    let missing = call(&app, &user.token, "getTask", json!({"number": 99})).await;
    assert_eq!(missing["isError"], json!(true));
    assert!(
        missing["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("99"),
        "{missing}"
    );
    let unknown = call(&app, &user.token, "getTask", json!({"id": 1})).await;
    assert!(
        unknown["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`id` is not an argument of getTask")
    );

    let response = rpc(
        &app,
        Some(&user.token),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "dropTables", "arguments": {}}}),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!(-32602));
    assert_eq!(body["id"], json!(7));
}

#[tokio::test]
async fn a_tool_beyond_the_tokens_scope_asks_for_more() {
    let app = TestApp::spawn().await;
    let reader = app
        .user_for("reader@example.com", "tasks:read", Resource::Mcp)
        .await;
    let listed = call(&app, &reader.token, "listTasks", json!({})).await;
    assert_eq!(listed["isError"], json!(false));
    let response = rpc(
        &app,
        Some(&reader.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "createTask", "arguments": {"title": "x"}}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"tasks:write\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test]
async fn the_stateless_revision_is_checked_against_its_headers() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let send = |method: &'static str,
                version: &'static str,
                header_method: &'static str,
                params: Value| {
        app.client
            .post(app.url("/mcp"))
            .bearer_auth(&user.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", version)
            .header("mcp-method", header_method)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
    };
    let discovered = send(
        "server/discover",
        "2026-07-28",
        "server/discover",
        json!({"_meta": meta}),
    )
    .await
    .unwrap();
    assert_eq!(discovered.status(), StatusCode::OK);
    let discovered: Value = discovered.json().await.unwrap();
    assert_eq!(discovered["result"]["resultType"], "complete");
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
    assert!(discovered["result"]["ttlMs"].is_u64());

    let listed: Value = send(
        "tools/list",
        "2026-07-28",
        "tools/list",
        json!({"_meta": meta}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(listed["result"]["cacheScope"], "public");
    let mismatch = send(
        "tools/list",
        "2026-07-28",
        "tools/call",
        json!({"_meta": meta}),
    )
    .await
    .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["error"]["code"],
        json!(-32020)
    );
    let future = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
                                  "io.modelcontextprotocol/clientCapabilities": {}}});
    let unsupported = send("tools/list", "2099-01-01", "tools/list", future)
        .await
        .unwrap();
    assert_eq!(unsupported.status(), StatusCode::BAD_REQUEST);
    let body: Value = unsupported.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!(-32022));
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    // The handshake and what went with it are gone on this revision.
    for removed in [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        let gone = send(removed, "2026-07-28", removed, json!({"_meta": meta}))
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND, "{removed}");
        assert_eq!(
            gone.json::<Value>().await.unwrap()["error"]["code"],
            json!(-32601)
        );
    }
    // A request that does not describe itself is malformed, whatever else
    // it gets wrong: invalid params, before the header comparison.
    for params in [
        json!({}),
        json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}}),
        json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}),
    ] {
        let malformed = send(
            "server/discover",
            "2026-07-28",
            "server/discover",
            params.clone(),
        )
        .await
        .unwrap();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST, "{params}");
        let body: Value = malformed.json().await.unwrap();
        assert_eq!(body["error"]["code"], json!(-32602), "{params}");
        assert_eq!(body["id"], json!(1));
    }
    // A header that disagrees is named as such, before the unknown revision.
    let disagreeing = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "v999.0.0",
                                       "io.modelcontextprotocol/clientCapabilities": {}}});
    let mismatch = send("tools/list", "2026-07-28", "tools/list", disagreeing)
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["error"]["code"],
        json!(-32020)
    );
}

#[tokio::test]
async fn views_and_prompts_are_listed_and_read() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let listed: Value = rpc(
        &app,
        Some(&user.token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let resources = listed["result"]["resources"].as_array().unwrap();
    let uris: Vec<&str> = resources
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&"ui://errand/tasks.html") && uris.contains(&"ui://errand/legacy/tasks.html"),
        "{uris:?}"
    );
    let read: Value = rpc(&app, Some(&user.token), json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "ui://errand/task.html"}}))
        .await
        .json()
        .await
        .unwrap();
    let content = &read["result"]["contents"][0];
    assert_eq!(content["mimeType"], "text/html;profile=mcp-app");
    assert!(
        content["text"]
            .as_str()
            .unwrap()
            .contains("data-view=\"task\"")
    );
    assert_eq!(content["_meta"]["ui"]["csp"]["connectDomains"], json!([]));
    assert_eq!(content["_meta"]["ui"]["prefersBorder"], json!(true));
    let missing: Value = rpc(&app, Some(&user.token), json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "ui://errand/none.html"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["error"]["code"], json!(-32602));
    assert_eq!(missing["error"]["data"]["uri"], "ui://errand/none.html");
    // Tools name the view that shows their result.
    let tools = listed_tools(&app, Some(&user.token)).await;
    let agenda = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "getAgenda")
        .unwrap()
        .clone();
    assert_eq!(
        agenda["_meta"]["ui"]["resourceUri"],
        "ui://errand/tasks.html"
    );
    assert_eq!(
        agenda["_meta"]["openai/outputTemplate"],
        "ui://errand/legacy/tasks.html"
    );
    // Prompts.
    let prompt: Value = rpc(&app, Some(&user.token), json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "capture_tasks", "arguments": {"note": "milk, eggs"}}}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        prompt["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("milk, eggs")
    );
}

#[tokio::test]
async fn the_transport_refuses_other_sites_streams_and_batches() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read", Resource::Mcp)
        .await;
    let from_elsewhere = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&user.token)
        .header("origin", "https://evil.example.com")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(from_elsewhere.status(), StatusCode::FORBIDDEN);
    let stream = app
        .client
        .get(app.url("/mcp"))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(stream.headers()["allow"], "POST");
    let batch = rpc(
        &app,
        Some(&user.token),
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
    )
    .await;
    assert_eq!(batch.status(), StatusCode::BAD_REQUEST);
    let notification = rpc(
        &app,
        Some(&user.token),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(notification.status(), StatusCode::ACCEPTED);
}

/// A one-page HTTP server on loopback: answers every request with the body
/// `body` makes from the page's own URL (after `delay`), or never answers
/// when `delay` is `None`. Returns the page's URL.
async fn serve_document(body: impl FnOnce(&str) -> String, delay: Option<Duration>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/oauth/client.json",
        listener.local_addr().unwrap()
    );
    let body = body(&url);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
                let Some(delay) = delay else {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                };
                tokio::time::sleep(delay).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn authorize_path(client_id: &str, redirect_uri: &str, resource: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=tasks%3Aread&state=s1&code_challenge={}&code_challenge_method=S256&resource={}",
        urlencode(client_id),
        urlencode(redirect_uri),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        urlencode(resource)
    )
}

const CALLBACK: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn a_client_metadata_document_identifies_the_app_on_the_consent_page() {
    let app = TestApp::spawn().await;
    let client_id = serve_document(
        |url| {
            json!({"client_id": url, "client_name": "Pocket Agent",
            "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
            .to_string()
        },
        Some(Duration::ZERO),
    )
    .await;
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_path(&client_id, CALLBACK, &app.url("/mcp")),
            "alice@example.com",
            "a long password 1",
        )
        .await;
    assert!(consent.contains("Pocket Agent"), "{consent}");
    assert!(
        consent.contains("Access goes to <strong>127.0.0.1</strong>"),
        "the host is shown"
    );
    assert!(consent.contains("registered itself"), "{consent}");
    assert!(consent.contains("MCP server"), "{consent}");
    let redirect = browser.decide(&consent, "allow").await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let params = redirect_params(&redirect);
    assert_eq!(params["iss"], app.address, "RFC 9207 iss");
    assert_eq!(params["state"], "s1");

    // The code's token is for the MCP server, and only for it.
    let exchange = |resource: Option<String>, code: String| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", CALLBACK.to_owned()),
            ("client_id", client_id.clone()),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
            ),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        app.client.post(app.url("/oauth/token")).form(&form).send()
    };
    let wrong = exchange(Some(app.address.clone()), params["code"].clone())
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"], "invalid_target", "{wrong}");
    // The refused exchange did not use the code up.
    let issued: Value = exchange(Some(app.url("/mcp")), params["code"].clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["access_token"].as_str().unwrap();
    let listed = list_tools(&app, Some(token)).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let api = app
        .client
        .get(app.url("/v1/tasks"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

/// The page an authorization with this client id ends on.
async fn refusal_for(app: &TestApp, client_id: &str) -> (StatusCode, String) {
    let response = app
        .client
        .get(app.url(&authorize_path(client_id, CALLBACK, &app.url("/mcp"))))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        response.headers().get("location").is_none(),
        "never redirected"
    );
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn client_metadata_documents_that_are_private_large_slow_or_lying_are_refused() {
    // The operator's default: nothing private, nothing plain http.
    let strict = TestApp::spawn_with_webhooks(WebhookSettings::default()).await;
    for private in [
        "https://127.0.0.1/oauth/client.json",
        "https://169.254.169.254/latest/client.json",
        "https://localhost/c.json",
        "https://[::1]/c.json",
    ] {
        let (status, page) = refusal_for(&strict, private).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{private}");
        assert!(page.contains("not allowed"), "{private}: {page}");
        assert!(!page.contains("webhook"), "{private}: {page}");
    }

    let app = TestApp::spawn().await;
    let large = serve_document(
        |url| {
            json!({"client_id": url, "redirect_uris": [CALLBACK], "client_name": "x".repeat(6000)})
                .to_string()
        },
        Some(Duration::ZERO),
    )
    .await;
    let (_, page) = refusal_for(&app, &large).await;
    assert!(page.contains("larger than 5120 bytes"), "{page}");

    let slow = serve_document(|_| String::new(), None).await;
    let started = std::time::Instant::now();
    let (_, page) = refusal_for(&app, &slow).await;
    assert!(page.contains("within 5 seconds"), "{page}");
    assert!(started.elapsed() < Duration::from_secs(9));

    let impostor = serve_document(
        |_| {
            json!({"client_id": "https://app.example.com/client.json", "redirect_uris": [CALLBACK]})
                .to_string()
        },
        Some(Duration::ZERO),
    )
    .await;
    let (_, page) = refusal_for(&app, &impostor).await;
    assert!(page.contains("client_id is not the URL"), "{page}");

    // A redirect URI the document does not list is never redirected to.
    let honest = serve_document(
        |url| {
            json!({"client_id": url, "redirect_uris": ["https://app.example.com/cb"]}).to_string()
        },
        Some(Duration::ZERO),
    )
    .await;
    let (status, page) = refusal_for(&app, &honest).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not registered for it"), "{page}");
}

#[tokio::test]
async fn dynamic_registration_gives_public_clients_and_resists_a_flood() {
    let app = TestApp::spawn().await;
    let register = |body: Value| {
        app.client
            .post(app.url("/oauth/register"))
            .json(&body)
            .send()
    };
    let created = register(json!({"client_name": "Desk Agent", "redirect_uris": [CALLBACK]}))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let client: Value = created.json().await.unwrap();
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert!(client.get("client_secret").is_none());
    assert_eq!(client["scope"], "tasks:read tasks:write");
    let client_id = client["client_id"].as_str().unwrap().to_owned();

    // Its users see that nobody vetted it; PKCE is required of it.
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_path(&client_id, CALLBACK, &app.url("/mcp")),
            "bob@example.com",
            "a long password 1",
        )
        .await;
    assert!(
        consent.contains("Desk Agent") && consent.contains("registered itself"),
        "{consent}"
    );
    let no_pkce = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}",
            urlencode(CALLBACK)
        ))
        .await;
    // A client that registered itself chose its redirect URI freely: an
    // error is shown here rather than sent there (RFC 9700 §4.11.2).
    assert_eq!(no_pkce.status(), StatusCode::BAD_REQUEST);
    assert!(no_pkce.headers().get("location").is_none());
    let page = no_pkce.text().await.unwrap();
    assert!(
        page.contains("invalid_request") && page.contains("PKCE"),
        "{page}"
    );

    for (body, error) in [
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [CALLBACK], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
    ] {
        let refused = register(body.clone()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"],
            error,
            "{body}"
        );
    }
    // Ten attempts per address per window, valid or not: the rest wait.
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            register(json!({"redirect_uris": [CALLBACK]}))
                .await
                .unwrap(),
        );
    }
    let flooded = last.unwrap();
    assert_eq!(flooded.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        flooded.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn an_unknown_resource_is_refused_as_invalid_target() {
    let app = TestApp::spawn().await;
    let client = app
        .client
        .post(app.url("/oauth/register"))
        .json(&json!({"redirect_uris": [CALLBACK]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut browser = Browser::new(&app);
    let response = browser
        .get(&authorize_path(
            client["client_id"].as_str().unwrap(),
            CALLBACK,
            "https://elsewhere.example.com/mcp",
        ))
        .await;
    // Shown on a page to a self-registered client's user ...
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("invalid_target"));
    // ... and sent back, with the issuer, to an operator's client.
    let vetted = register_with(
        &app,
        "Vetted agent",
        &[GrantType::AuthorizationCode],
        true,
        &[CALLBACK],
        "tasks:read tasks:write",
    )
    .await;
    let response = browser
        .get(&authorize_path(
            &vetted.id,
            CALLBACK,
            "https://elsewhere.example.com/mcp",
        ))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = redirect_params(&response);
    assert_eq!(params["error"], "invalid_target");
    assert_eq!(params["iss"], app.address);
}

/// Runs a Python script of `tests/mcp/` with the SDK's interpreter, off the
/// test's runtime (which must keep serving Errand meanwhile).
async fn python(script: &str, args: Vec<String>, stdin: Option<String>) -> Value {
    let interpreter = std::env::var("ERRAND_TEST_MCP_PYTHON")
        .expect("ERRAND_TEST_MCP_PYTHON names a Python with `mcp` installed");
    let path = format!("{}/tests/mcp/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(interpreter)
            .arg(&path)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no JSON summary from {script}: {stdout}\n{stderr}"))
}

#[tokio::test]
#[cfg_attr(
    not(mcp_sdk_tests),
    ignore = "needs the MCP Python SDK: set ERRAND_TEST_MCP_PYTHON to a Python with `mcp==2.3.0`"
)]
async fn the_official_python_sdk_signs_in_and_manages_tasks() {
    let app = TestApp::spawn().await;
    let (email, password) = ("sdk@example.com", "a long password 1");
    app.account(email, password).await;
    let redirect = "http://127.0.0.1:9/sdk-callback";
    let document = serve_document(
        |url| {
            json!({"client_id": url, "client_name": "Errand SDK test", "redirect_uris": [redirect],
                   "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                   "token_endpoint_auth_method": "none"})
            .to_string()
        },
        Some(Duration::ZERO),
    )
    .await;
    for (registration, era, protocol) in [
        ("dcr", "handshake", "2025-11-25"),
        ("cimd", "stateless", "2026-07-28"),
    ] {
        let mut args: Vec<String> = [
            "--server",
            &app.address,
            "--email",
            email,
            "--password",
            password,
            "--registration",
            registration,
            "--era",
            era,
            "--redirect-uri",
            redirect,
        ]
        .map(str::to_owned)
        .to_vec();
        if registration == "cimd" {
            args.extend(["--client-metadata-url".to_owned(), document.clone()]);
        }
        let summary = python("sdk_client.py", args, None).await;
        let context = format!("{registration}/{era}: {summary}");
        assert_eq!(summary["ok"], json!(true), "{context}");
        assert_eq!(summary["protocol"], protocol, "{context}");
        assert_eq!(summary["iss"], app.address, "{context}");
        assert_eq!(summary["consent_unvetted"], json!(true), "{context}");
        assert_eq!(summary["completed_status"], "done", "{context}");
        let created = summary["created"].clone();
        assert!(
            !summary["listed_after_complete"]
                .as_array()
                .unwrap()
                .contains(&created),
            "{context}"
        );
        assert_eq!(summary["reminder_error"], json!(false), "{context}");
        assert!(
            !summary["bad_input_error_text"].as_str().unwrap().is_empty(),
            "{context}"
        );
        if registration == "cimd" {
            assert_eq!(summary["client_id"], json!(document), "{context}");
        }
    }
    // What the SDK did is what the API sees: the tasks are the user's.
    let user = app.user("sdk@example.com").await;
    let all: Value = app
        .list_tasks(&user, &[("status", "all")])
        .await
        .json()
        .await
        .unwrap();
    assert!(all["tasks"].as_array().unwrap().len() >= 4, "{all}");
}

#[tokio::test]
#[cfg_attr(
    not(mcp_sdk_tests),
    ignore = "needs the MCP Python SDK: set ERRAND_TEST_MCP_PYTHON to a Python with `mcp==2.3.0`"
)]
async fn exported_tool_schemas_are_json_schema_2020_12() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read", Resource::Mcp)
        .await;
    let listed: Value = listed_tools(&app, Some(&user.token)).await;
    let openai = app.get_json("/tools/openai.json").await;
    let exported = json!({"mcp": listed["result"]["tools"], "openai": openai});
    let checked = python("check_schemas.py", vec![], Some(exported.to_string())).await;
    assert_eq!(checked["checked"], json!(12 + 11 + 12), "{checked}");
}

#[tokio::test]
async fn tool_arguments_are_the_openapi_parameters_and_request_bodies() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read", Resource::Mcp)
        .await;
    let listed: Value = listed_tools(&app, Some(&user.token)).await;
    let openai = app.get_json("/tools/openai.json").await;
    let document = app.get_json("/openapi/gpt-actions.json").await;
    let schemas = &document["components"]["schemas"];
    for operations in document["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            let name = operation["operationId"].as_str().unwrap();
            let tool = listed["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .unwrap();
            let function = openai
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["function"]["name"] == name)
                .unwrap();
            let mut expected: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let body = &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            if let Some(reference) = body.as_str() {
                let body = &schemas[reference.rsplit('/').next().unwrap()];
                for (field, schema) in body["properties"].as_object().unwrap() {
                    assert_eq!(
                        &tool["inputSchema"]["properties"][field], schema,
                        "{name}.{field}"
                    );
                    expected.push(field.clone());
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let field = parameter["name"].as_str().unwrap();
                let argument = &tool["inputSchema"]["properties"][field];
                assert_eq!(
                    argument["type"], parameter["schema"]["type"],
                    "{name}.{field}"
                );
                assert_eq!(
                    argument["description"], parameter["description"],
                    "{name}.{field}"
                );
            }
            expected.sort();
            for properties in [
                &tool["inputSchema"]["properties"],
                &function["function"]["parameters"]["properties"],
            ] {
                let mut names: Vec<String> =
                    properties.as_object().unwrap().keys().cloned().collect();
                names.sort();
                assert_eq!(names, expected, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn the_consent_page_names_where_access_goes_and_for_which_door() {
    let app = TestApp::spawn().await;
    let register = |body: Value| {
        app.client
            .post(app.url("/oauth/register"))
            .json(&body)
            .send()
    };
    // A self-registered client may call itself anything and list a trusted
    // host first; the page names the host the code would go to.
    let client: Value = register(json!({"client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/cb", "https://evil.example.com/cb"]}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_path(&client_id, "https://evil.example.com/cb", &app.url("/mcp")),
            "carol@example.com",
            "a long password 1",
        )
        .await;
    assert!(
        consent.contains("Access goes to <strong>evil.example.com</strong>"),
        "{consent}"
    );
    assert!(!consent.contains("chatgpt.com"), "{consent}");
    let allowed = browser.decide(&consent, "allow").await;
    assert_eq!(allowed.status(), StatusCode::FOUND);

    // Allowing the MCP server is not allowing the API: asked again.
    let api = format!(
        "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=tasks%3Aread&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        urlencode("https://evil.example.com/cb")
    );
    let again = browser.get(&api).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again = again.text().await.unwrap();
    assert!(
        again.contains("s API:") && !again.contains("MCP server"),
        "{again}"
    );
    // The same door again is remembered.
    let remembered = browser
        .get(&authorize_path(
            &client_id,
            "https://evil.example.com/cb",
            &app.url("/mcp"),
        ))
        .await;
    assert_eq!(remembered.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn mcp_tokens_carry_only_the_scopes_the_mcp_server_takes() {
    let app = TestApp::spawn().await;
    let client = crate::oauth_common::register_with(
        &app,
        "Operator app",
        &[errand::oauth::clients::GrantType::AuthorizationCode],
        true,
        &[CALLBACK],
        "tasks:read tasks:write webhooks:manage",
    )
    .await;
    let explicit = format!(
        "{}&scope=webhooks%3Amanage",
        authorize_path(&client.id, CALLBACK, &app.url("/mcp")).replace("&scope=tasks%3Aread", "")
    );
    let mut browser = Browser::new(&app);
    browser
        .sign_up_via(
            &authorize_path(&client.id, CALLBACK, &app.url("/mcp")),
            "dave@example.com",
            "a long password 1",
        )
        .await;
    let refused = browser.get(&explicit).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    let params = redirect_params(&refused);
    assert_eq!(params["error"], "invalid_scope");
    assert!(
        params["error_description"].contains("MCP endpoint"),
        "{params:?}"
    );
    let default =
        authorize_path(&client.id, CALLBACK, &app.url("/mcp")).replace("&scope=tasks%3Aread", "");
    let consent = browser.get(&default).await.text().await.unwrap();
    assert!(
        consent.contains("See your tasks") && !consent.contains("web addresses you choose"),
        "{consent}"
    );
}

#[tokio::test]
async fn looking_up_client_documents_is_rationed_per_address() {
    let app = TestApp::spawn().await;
    let document = serve_document(
        |_| json!({"client_id": "https://elsewhere.example.com/c.json"}).to_string(),
        Some(Duration::ZERO),
    )
    .await;
    let mut last = String::new();
    for n in 0..31 {
        let (_, page) = refusal_for(&app, &format!("{document}?n={n}")).await;
        last = page;
    }
    assert!(last.contains("too many apps were looked up"), "{last}");
}

#[tokio::test]
async fn self_registered_clients_nobody_used_are_forgotten() {
    let app = TestApp::spawn().await;
    let register = || {
        app.client
            .post(app.url("/oauth/register"))
            .json(&json!({"redirect_uris": [CALLBACK]}))
            .send()
    };
    let unused: Value = register().await.unwrap().json().await.unwrap();
    let used: Value = register().await.unwrap().json().await.unwrap();
    let user = app.user("erin@example.com").await;
    errand::auth::grants::create(
        &app.app.db,
        user.id,
        used["client_id"].as_str(),
        &errand::auth::ScopeSet::parse("tasks:read").unwrap(),
        Resource::Mcp,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(
        errand::oauth::sweep::sweep(&app.app.db, now)
            .await
            .unwrap()
            .clients,
        0
    );
    let later = now + errand::oauth::sweep::UNUSED_CLIENT_RETENTION + chrono::TimeDelta::hours(1);
    assert_eq!(
        errand::oauth::sweep::sweep(&app.app.db, later)
            .await
            .unwrap()
            .clients,
        1
    );
    let (status, page) = refusal_for(&app, unused["client_id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not registered"), "{page}");
    assert!(
        errand::oauth::clients::find(&app.app.db, used["client_id"].as_str().unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_server_card_and_catalogs_describe_the_endpoint_to_anyone() {
    let app = TestApp::spawn().await;
    let card = app
        .client
        .get(app.url("/mcp/server-card"))
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), StatusCode::OK);
    assert_eq!(
        card.headers()["content-type"],
        "application/mcp-server-card+json"
    );
    assert_eq!(card.headers()["access-control-allow-origin"], "*");
    let etag = card.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = card.json().await.unwrap();
    assert_eq!(body["remotes"][0]["url"], app.url("/mcp"));
    assert_eq!(body["remotes"][0]["type"], "streamable-http");
    assert_eq!(body["name"], "1.0.0.127/errand");
    let again = app
        .client
        .get(app.url("/mcp/server-card"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/mcp/server-card"))
        .header("origin", "https://directory.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    for path in [
        "/.well-known/ai-catalog.json",
        "/.well-known/mcp/catalog.json",
    ] {
        let catalog = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            catalog.headers()["access-control-allow-origin"],
            "*",
            "{path}"
        );
        let catalog: Value = catalog.json().await.unwrap();
        assert_eq!(
            catalog["entries"][0]["url"],
            app.url("/mcp/server-card"),
            "{path}"
        );
        assert_eq!(
            catalog["entries"][0]["type"],
            "application/mcp-server-card+json"
        );
    }
    // No domain-verification token configured: nothing to show.
    let challenge = app
        .client
        .get(app.url("/.well-known/openai-apps-challenge"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), StatusCode::NOT_FOUND);
    let replica = crate::common::Replica::start_with(
        &app,
        &[("ERRAND_OPENAI_APPS_CHALLENGE", "oai-challenge-7f3a")],
    )
    .await;
    let challenge = app
        .client
        .get(format!(
            "{}/.well-known/openai-apps-challenge",
            replica.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), StatusCode::OK);
    assert!(
        challenge.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(challenge.text().await.unwrap(), "oai-challenge-7f3a");
}
