//! The `errand` binary: `token` mints tokens that the running server accepts,
//! `migrate` is repeatable, `openapi` prints the contract.

use std::{process::Command, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestApp, refused_within};

/// The `errand` command against the test's database. The tests run it
/// with a blocking `output()` on a multi-threaded runtime, so that the app's
/// background jobs keep running (and never hold a lock the command waits on).
fn errand(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .env_clear()
        .env("ERRAND_DATABASE_URL", &app.database_url)
        .env("ERRAND_PUBLIC_URL", &app.address)
        .env("ERRAND_LOG", "warn");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_only_a_token_the_server_accepts() {
    let app = TestApp::spawn().await;
    let output = errand(&app)
        .args([
            "token",
            "--user",
            "Carol@Example.com",
            "--scope",
            "tasks:read",
            "--ttl",
            "15m",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.trim_end();
    assert_eq!(token.lines().count(), 1);
    assert_eq!(token.split('.').count(), 3);

    let response = app.me(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "carol@example.com");
    assert_eq!(me["scopes"], serde_json::json!(["tasks:read"]));
    let expires =
        chrono::DateTime::parse_from_rfc3339(me["token_expires_at"].as_str().unwrap()).unwrap();
    let minutes = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((13..=15).contains(&minutes), "{minutes}");

    // Read-only: writing is refused.
    let response = app
        .request(
            reqwest::Method::POST,
            "/v1/tasks",
            Some(token),
            Some(&serde_json::json!({ "title": "x" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// With no logging settings at all, `errand token` prints the token and
/// nothing else, not even the lines of the migrations it applies.
#[test]
fn token_prints_no_log_lines_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_errand"))
        .env_clear()
        .current_dir(dir.path())
        .args(["token", "--user", "quiet@example.com"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(stdout.trim_end().split('.').count(), 3, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rejects_bad_input_with_a_clear_message() {
    let app = TestApp::spawn().await;
    for (args, says) in [
        (
            vec!["token", "--user", "not-an-email"],
            "not an email address",
        ),
        (
            vec!["token", "--user", "a@example.com", "--scope", "admin"],
            "unknown scope `admin`",
        ),
        (
            vec!["token", "--user", "a@example.com", "--ttl", "soon"],
            "not a duration",
        ),
        (
            vec!["token", "--user", "a@example.com", "--ttl", "400d"],
            "between 1s and 365d",
        ),
    ] {
        let output = errand(&app).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_can_run_again_on_a_migrated_database() {
    let app = TestApp::spawn().await;
    let output = errand(&app).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn openapi_prints_the_gpt_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_errand"))
        .env_clear()
        .args([
            "openapi",
            "--gpt",
            "--public-url",
            "https://tasks.example.org",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["servers"][0]["url"], "https://tasks.example.org");
    assert_eq!(document["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_prints_what_the_server_serves_and_refuses_unknown_formats() {
    let app = TestApp::spawn().await;
    let output = Command::new(env!("CARGO_BIN_EXE_errand"))
        .env_clear()
        .args(["tools", "--format", "openai"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, app.get_json("/tools/openai.json").await);
    assert_eq!(printed.as_array().unwrap().len(), 12);

    let wrong = Command::new(env!("CARGO_BIN_EXE_errand"))
        .env_clear()
        .args(["tools", "--format", "anthropic"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("possible values: openai"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_mcp_opens_only_the_mcp_door() {
    let app = TestApp::spawn().await;
    let output = errand(&app)
        .args(["token", "--user", "dan@example.com", "--resource", "mcp"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_owned();
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let listed = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let wrong = errand(&app)
        .args(["token", "--user", "dan@example.com", "--resource", "gpt"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("use api or mcp"));
}

/// `errand serve` applies migrations, answers, and exits cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_a_fresh_database_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_errand"))
        .env_clear()
        .current_dir(dir.path())
        .env("ERRAND_LISTEN", &listen)
        .env("ERRAND_LOG_FORMAT", "json")
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    errand::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut ready = false;
    // Generous: a debug build on a busy two-core machine can take a while.
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("http://{listen}/readyz")).send().await
            && response.status() == StatusCode::OK
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "serve never became ready");
    assert!(
        dir.path().join("errand.db").exists(),
        "the default SQLite file is created"
    );
    let index: Value = client
        .get(format!("http://{listen}/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["gpt_actions_openapi"], "/openapi/gpt-actions.json");

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let _ = server.wait();
        server.wait_with_output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    let log = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "shutting down"),
        "{log}"
    );
    // One JSON log line per request, with its status and request id.
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert!(requests.len() >= 2, "{log}");
    assert!(
        requests
            .iter()
            .all(|l| l["status"].is_u64() && l["span"]["request_id"].is_string())
    );
}

fn run_ok(app: &TestApp, args: &[&str]) -> String {
    let output = errand(app).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn printed(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}:")))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {label} in {output}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_create_for_a_gpt_registers_both_callbacks_and_prints_the_secret_once() {
    let app = TestApp::spawn().await;
    let out = run_ok(
        &app,
        &["clients", "create", "--name", "My GPT", "--gpt", "g-Abc123"],
    );
    let id = printed(&out, "client_id");
    let secret = printed(&out, "client_secret");
    assert!(id.starts_with("errand-") && secret.len() == 43);
    assert!(out.contains("https://chat.openai.com/aip/g-Abc123/oauth/callback"));
    assert!(out.contains("https://chatgpt.com/aip/g-Abc123/oauth/callback"));
    // Only a hash of the secret is stored.
    let stored = errand::oauth::clients::find(&app.app.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.public);
    let list = run_ok(&app, &["clients", "list"]);
    assert!(list.contains(&id) && list.contains("My GPT") && !list.contains(&secret));

    // Rotating the secret retires the old one.
    let rotated = printed(
        &run_ok(&app, &["clients", "rotate-secret", &id]),
        "client_secret",
    );
    let authenticate = |secret: String| {
        let (db, id) = (app.app.db.clone(), id.clone());
        async move {
            errand::oauth::clients::authenticate(&db, &id, Some(&secret))
                .await
                .unwrap()
                .is_ok()
        }
    };
    assert!(!authenticate(secret).await);
    assert!(authenticate(rotated).await);

    let output = errand(&app)
        .args(["clients", "create", "--name", "x", "--gpt", "not-a-gpt"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a GPT id"));
    let output = errand(&app)
        .args([
            "clients",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "http://app.example.com/cb",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("must use https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_token_stops_working() {
    let app = TestApp::spawn().await;
    let quinn = app.user("quinn@example.com").await;
    assert_eq!(app.me(&quinn.token).await.status(), StatusCode::OK);
    run_ok(&app, &["users", "delete", "quinn@example.com"]);
    // Another process deleted it: the server hears of it within a second.
    assert!(
        refused_within(&app, &app.address, &quinn.token, Duration::from_secs(1)).await,
        "still accepted a second after deletion"
    );
    let response = app.me(&quinn.token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_clients_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let out = run_ok(
        &app,
        &[
            "clients",
            "create",
            "--name",
            "Sync",
            "--grant",
            "client_credentials",
        ],
    );
    let (id, secret) = (printed(&out, "client_id"), printed(&out, "client_secret"));
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    run_ok(&app, &["clients", "delete", &id]);
    assert!(
        refused_within(&app, &app.address, access, Duration::from_secs(1)).await,
        "still accepted a second after deletion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_sign_new_tokens_while_old_tokens_keep_working() {
    let app = TestApp::spawn().await;
    let before = run_ok(&app, &["token", "--user", "rae@example.com"]);
    let before = before.trim();
    let old_kid = jsonwebtoken::decode_header(before).unwrap().kid.unwrap();

    let new_kid = run_ok(&app, &["keys", "rotate"]).trim().to_owned();
    assert_ne!(new_kid, old_kid);
    let after = run_ok(&app, &["token", "--user", "rae@example.com"]);
    let after = after.trim();
    assert_eq!(
        jsonwebtoken::decode_header(after).unwrap().kid.unwrap(),
        new_kid
    );

    // The running server has never seen the new key: it reloads on demand.
    assert_eq!(app.me(after).await.status(), StatusCode::OK);
    assert_eq!(app.me(before).await.status(), StatusCode::OK);
    let jwks = app.get_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_bundle_writes_what_a_submission_takes() {
    use std::io::Read;
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("errand-plugin.zip");
    let listing = [
        ("ERRAND_PLUGIN_DEVELOPER_NAME", "Example Ltd"),
        ("ERRAND_PLUGIN_WEBSITE_URL", "https://errand.example.com"),
        (
            "ERRAND_PLUGIN_SUPPORT_URL",
            "https://errand.example.com/help",
        ),
        (
            "ERRAND_PLUGIN_PRIVACY_URL",
            "https://errand.example.com/privacy",
        ),
        (
            "ERRAND_PLUGIN_TERMS_URL",
            "https://errand.example.com/terms",
        ),
    ];
    // Without the listing's links it says which is missing.
    let refused = errand(&app)
        .args(["plugin", "bundle", "--out", out.to_str().unwrap()])
        .envs(
            listing
                .iter()
                .copied()
                .filter(|(k, _)| *k != "ERRAND_PLUGIN_PRIVACY_URL"),
        )
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ERRAND_PLUGIN_PRIVACY_URL"));
    let built = errand(&app)
        .args(["plugin", "bundle", "--out", out.to_str().unwrap()])
        .env("ERRAND_PUBLIC_URL", "https://errand.example.com")
        .envs(listing.iter().copied())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let mut archive = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "assets/icon.svg",
            "mcp.json",
            "plugin.json",
            "review/README.md",
            "review/tool-hints.json",
            "skills/errand/SKILL.md",
        ]
    );
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let manifest: Value = serde_json::from_str(&read("plugin.json")).unwrap();
    let openai = &manifest["extensions"]["com.openai"];
    assert_eq!(
        openai["interface"]["privacyPolicyURL"],
        "https://errand.example.com/privacy"
    );
    assert!(
        openai["interface"]["shortDescription"]
            .as_str()
            .unwrap()
            .len()
            <= 30
    );
    assert_eq!(
        openai["review"]["test_cases"]["positive"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        openai["review"]["test_cases"]["negative"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let servers: Value = serde_json::from_str(&read("mcp.json")).unwrap();
    assert_eq!(
        servers["mcpServers"]["errand"]["url"],
        "https://errand.example.com/mcp"
    );
    let skill = read("skills/errand/SKILL.md");
    let instructions = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/actions/instructions.md"
    ))
    .unwrap();
    assert!(skill.starts_with("---\nname: errand\n") && skill.contains(instructions.trim()));
    // Every tool has a justification for each of its hints.
    let hints: Value = serde_json::from_str(&read("review/tool-hints.json")).unwrap();
    let tools = hints["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 12);
    for tool in tools {
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "openWorldHint",
            "idempotentHint",
        ] {
            assert!(tool["annotations"][hint].is_boolean(), "{tool}");
            assert!(
                tool["justifications"][hint]
                    .as_str()
                    .is_some_and(|j| j.len() > 10),
                "{tool}"
            );
        }
    }
    let create = tools.iter().find(|t| t["name"] == "createTask").unwrap();
    assert_eq!(create["annotations"]["idempotentHint"], false);
    let complete = tools.iter().find(|t| t["name"] == "completeTask").unwrap();
    assert_eq!(complete["annotations"]["idempotentHint"], true);
}
