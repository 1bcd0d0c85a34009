//! Revocation reaches every process: a token revoked through one Errand is
//! refused by another within a second, and that other process does not ask
//! the database on every request to find out; a process that loses its
//! notification connection stops trusting what it remembers.

use std::time::Duration;

use errand::oauth::clients::GrantType;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::Value;

use crate::{
    common::{Replica, TestApp, on_postgres, refused_within},
    oauth_common::{RegisteredClient, register},
};

/// What the replica logs once it hears revocations made elsewhere.
const WATCHER_READY: &str = "revocation watcher ready";

/// A client-credentials token from `app`, with the client that may revoke it.
async fn client_token(app: &TestApp) -> (RegisteredClient, String) {
    let client = register(app, "Sync", &[GrantType::ClientCredentials], false).await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    (client, token)
}

async fn sql(app: &TestApp, statement: &str) {
    app.app.db.execute_unprepared(statement).await.unwrap();
}

/// Revokes the client's grants behind Errand's back, with the trigger that
/// announces revocations switched off: nobody is told.
async fn revoke_silently(app: &TestApp, client: &RegisteredClient) {
    sql(
        app,
        "ALTER TABLE oauth_grants DISABLE TRIGGER oauth_grants_revoked",
    )
    .await;
    sql(
        app,
        &format!(
            "UPDATE oauth_grants SET revoked_at = CURRENT_TIMESTAMP WHERE client_id = '{}'",
            client.id
        ),
    )
    .await;
}

/// A second process on `app`'s database, hearing revocations, which has
/// accepted (and so remembers) a client's token.
async fn replica_that_accepted(app: &TestApp) -> (Replica, RegisteredClient, String) {
    let (client, token) = client_token(app).await;
    let replica = Replica::start(app).await;
    replica.logged(WATCHER_READY, 1).await;
    assert_eq!(replica.me(app, &token).await, StatusCode::OK);
    (replica, client, token)
}

#[tokio::test]
async fn a_token_revoked_through_one_process_is_refused_by_another_within_a_second() {
    let app = TestApp::spawn().await;
    let (replica, client, token) = replica_that_accepted(&app).await;

    if on_postgres() {
        // The replica answers from memory: a revocation nobody announces goes
        // unnoticed, so its requests are not asking the database.
        revoke_silently(&app, &client).await;
        assert_eq!(replica.me(&app, &token).await, StatusCode::OK);
        sql(
            &app,
            &format!(
                "UPDATE oauth_grants SET revoked_at = NULL WHERE client_id = '{}'",
                client.id
            ),
        )
        .await;
        sql(
            &app,
            "ALTER TABLE oauth_grants ENABLE TRIGGER oauth_grants_revoked",
        )
        .await;
    }

    let response = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The process that revoked refuses the token at once…
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    // …and the other one within a second.
    assert!(
        refused_within(&app, &replica.address, &token, Duration::from_secs(1)).await,
        "the other process still accepted the revoked token a second later"
    );
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: set ERRAND_TEST_DATABASE_URL"
)]
async fn a_process_that_loses_its_listener_stops_trusting_what_it_remembers() {
    let app = TestApp::spawn().await;
    let (replica, client, token) = replica_that_accepted(&app).await;
    revoke_silently(&app, &client).await;
    assert_eq!(
        replica.me(&app, &token).await,
        StatusCode::OK,
        "served from memory"
    );

    // Cut every revocation listener's connection to this database.
    sql(
        &app,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'errand revocation watcher' AND datname = current_database()",
    )
    .await;
    // The replica stops answering from memory at once, so it finds the
    // revocation nobody announced…
    assert!(
        refused_within(&app, &replica.address, &token, Duration::from_secs(1)).await,
        "the replica kept trusting its memory after losing its listener"
    );
    // …and what it remembered is gone after it reconnects.
    replica.logged(WATCHER_READY, 2).await;
    assert_eq!(replica.me(&app, &token).await, StatusCode::UNAUTHORIZED);
}
