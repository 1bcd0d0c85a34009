//! The inline views in a real browser, through the official MCP Apps host
//! bridge: a host page built on `@modelcontextprotocol/ext-apps`' AppBridge
//! loads each view from `resources/read` into a sandboxed iframe under the
//! CSP the resource declares, hands it a real tool result from a running
//! Errand, and the test sees the rows, checks a task off in the view and
//! finds it done through the API. Screenshots of every view, light and
//! dark, go to `target/screenshots/`.
//!
//! Needs Chromium (as the sign-in browser test does) and the package:
//! `npm install --prefix DIR @modelcontextprotocol/ext-apps@2.0.4
//! @modelcontextprotocol/client@2.4.0 @modelcontextprotocol/core@2.4.0
//! zod@4.6.7`, then `ERRAND_TEST_MCP_APPS=DIR` (`.ci/run` does both).

use std::{sync::Arc, time::Duration};

use errand::auth::Resource;
use fantoccini::Locator;
use poem::{
    EndpointExt, Response, Route, get, handler,
    http::StatusCode as PoemStatus,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::{Data, Path},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    browser::{chromium, element, screenshot},
    common::TestApp,
};

/// What the host page's server needs: where Errand's `/mcp` is, the user's
/// token, and where the package is installed.
struct Host {
    mcp: String,
    token: String,
    modules: std::path::PathBuf,
    client: reqwest::Client,
}

#[handler]
async fn host_page() -> Response {
    let page = std::fs::read_to_string(format!(
        "{}/tests/mcp/apps_host.html",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

#[handler]
async fn module(Path(path): Path<String>, host: Data<&Arc<Host>>) -> Response {
    if path.contains("..") {
        return Response::builder().status(PoemStatus::NOT_FOUND).finish();
    }
    match std::fs::read(host.modules.join(&path)) {
        Ok(bytes) => Response::builder()
            .content_type(if path.ends_with(".json") {
                "application/json"
            } else {
                "text/javascript"
            })
            .body(bytes),
        Err(_) => Response::builder().status(PoemStatus::NOT_FOUND).finish(),
    }
}

/// The host's backend: forwards the page's JSON-RPC to Errand's `/mcp`
/// with the user's token (a browser page on another origin may not call
/// `/mcp` itself, and should not hold the token).
#[handler]
async fn rpc(body: String, host: Data<&Arc<Host>>) -> Response {
    let answer = host
        .client
        .post(&host.mcp)
        .bearer_auth(&host.token)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    Response::builder()
        .content_type("application/json")
        .body(answer.text().await.unwrap())
}

async fn start_host(host: Host) -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    let app = Route::new()
        .at("/host.html", get(host_page))
        .at("/node_modules/*path", get(module))
        .at("/rpc", post(rpc))
        .data(Arc::new(host));
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    format!("http://127.0.0.1:{port}")
}

/// Opens `tool`'s view with `arguments` in `theme`, and enters its iframe
/// once the host has handed it the result.
async fn open(
    browser: &fantoccini::Client,
    host: &str,
    tool: &str,
    arguments: Value,
    theme: &str,
) -> Result<(), fantoccini::error::CmdError> {
    browser.enter_parent_frame().await.ok();
    browser
        .goto(&format!(
            "{host}/host.html?tool={tool}&theme={theme}&args={}",
            url::form_urlencoded::byte_serialize(arguments.to_string().as_bytes())
                .collect::<String>()
        ))
        .await?;
    for _ in 0..150 {
        let ready = browser
            .execute(
                "return [window.hostReady === true, window.hostError || null];",
                vec![],
            )
            .await?;
        if let Some(error) = ready[1].as_str() {
            panic!("the host failed: {error}");
        }
        if ready[0] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let frame = element(browser, Locator::Css("iframe")).await?;
    frame.enter_frame().await
}

#[tokio::test]
#[cfg_attr(
    not(all(browser_tests, mcp_apps_tests)),
    ignore = "needs Chromium and the MCP Apps host package: set ERRAND_TEST_MCP_APPS (see the module doc)"
)]
async fn the_views_render_through_the_official_bridge_and_complete_a_task() {
    let modules = std::env::var("ERRAND_TEST_MCP_APPS")
        .map(|dir| std::path::Path::new(&dir).join("node_modules"))
        .expect("ERRAND_TEST_MCP_APPS names the folder the package is installed in");
    let app = TestApp::spawn().await;
    let api = app.user("alice@example.com").await;
    let mcp = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let soon = (chrono::Utc::now() + chrono::TimeDelta::hours(3)).to_rfc3339();
    let late = (chrono::Utc::now() - chrono::TimeDelta::hours(5)).to_rfc3339();
    app.new_task(
        &api,
        json!({"title": "Renew passport", "due_at": late, "priority": "high", "tags": ["admin"]}),
    )
    .await;
    app.new_task(&api, json!({"title": "Call the plumber", "due_at": soon, "notes": "Kitchen tap drips.\nAsk about Thursday."}))
        .await;
    app.new_task(&api, json!({"title": "Buy birthday card"}))
        .await;
    let response = app
        .request(
            reqwest::Method::POST,
            "/v1/tasks/2/reminders",
            Some(&api.token),
            Some(&json!({"before_due": "PT1H"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let host = start_host(Host {
        mcp: app.url("/mcp"),
        token: mcp.token.clone(),
        modules,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    })
    .await;
    let (_driver, browser, _profile) = chromium().await;
    let outcome = async {
        for theme in ["light", "dark"] {
            // The task list: rows with checkboxes and a way to open each.
            open(&browser, &host, "listTasks", json!({}), theme).await?;
            let rows = browser.find_all(Locator::Css("li[data-number]")).await?;
            assert_eq!(rows.len(), 3);
            let checkbox = element(
                &browser,
                Locator::Css("li[data-number='1'] input[type=checkbox]"),
            )
            .await?;
            assert_eq!(
                checkbox.attr("aria-label").await?.as_deref(),
                Some("Mark done: #1 Renew passport")
            );
            browser.enter_parent_frame().await?;
            screenshot(&browser, &format!("mcp-view-tasks-{theme}")).await?;

            open(&browser, &host, "getAgenda", json!({"tz": "UTC"}), theme).await?;
            let overdue =
                element(&browser, Locator::XPath("//h2[starts-with(., 'Overdue')]")).await?;
            assert!(overdue.text().await?.contains("(1)"));
            browser.enter_parent_frame().await?;
            screenshot(&browser, &format!("mcp-view-agenda-{theme}")).await?;

            // One task, with its reminders (fetched by the view through the bridge).
            open(&browser, &host, "getTask", json!({"number": 2}), theme).await?;
            element(&browser, Locator::XPath("//h2[. = 'Reminders']")).await?;
            let card = element(&browser, Locator::Css(".card"))
                .await?
                .text()
                .await?;
            assert!(
                card.contains("Call the plumber") && card.contains("Kitchen tap drips."),
                "{card}"
            );
            assert!(card.contains("1 h before due"), "{card}");
            browser.enter_parent_frame().await?;
            screenshot(&browser, &format!("mcp-view-task-{theme}")).await?;

            open(&browser, &host, "listReminders", json!({}), theme).await?;
            let listed = browser.find_all(Locator::Css("li")).await?;
            assert_eq!(listed.len(), 1);
            browser.enter_parent_frame().await?;
            screenshot(&browser, &format!("mcp-view-reminders-{theme}")).await?;
        }

        // Checking a task off in the view completes it, through the tools.
        open(&browser, &host, "listTasks", json!({}), "light").await?;
        element(
            &browser,
            Locator::Css("li[data-number='3'] input[type=checkbox]"),
        )
        .await?
        .click()
        .await?;
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("li.done[data-number='3']"))
            .await?;
        browser.enter_parent_frame().await?;
        screenshot(&browser, "mcp-view-tasks-checked").await?;

        // Keyboard: Tab reaches the first checkbox, Space ticks it.
        open(&browser, &host, "listTasks", json!({}), "light").await?;
        let first = element(
            &browser,
            Locator::Css("li[data-number='1'] input[type=checkbox]"),
        )
        .await?;
        first.send_keys(" ").await?;
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("li.done[data-number='1']"))
            .await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    outcome.expect("browser steps");

    for number in [3, 1] {
        let task: Value = app.get_task(&api, number).await.json().await.unwrap();
        assert_eq!(
            task["status"], "done",
            "task {number} was completed in the view"
        );
    }
    let open_task: Value = app.get_task(&api, 2).await.json().await.unwrap();
    assert_eq!(open_task["status"], "open");
}
