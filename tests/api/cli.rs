//! The `errand` binary: `token` mints tokens that the running server accepts,
//! `migrate` is repeatable, `openapi` prints the contract.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestApp;

fn errand(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_errand"));
    command
        .env_clear()
        .env("ERRAND_DATABASE_URL", &app.database_url)
        .env("ERRAND_PUBLIC_URL", &app.address)
        .env("ERRAND_LOG", "warn");
    command
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
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
