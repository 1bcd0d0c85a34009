use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use errand::auth::{ScopeSet, keys::SigningKey};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{ALL_SCOPES, TestApp, problem};

/// Claims as Errand issues them, for forging variations.
fn claims(app: &TestApp, sub: uuid::Uuid, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": app.address, "aud": app.address, "sub": sub.to_string(),
        "iat": now, "nbf": now, "exp": now + exp_offset,
        "jti": "test", "scope": ALL_SCOPES, "grant": uuid::Uuid::new_v4(),
    })
}

fn sign_with(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
}

async fn assert_rejected(app: &TestApp, token: &str, says: &str) {
    let response = app.me(token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], "/problems/unauthorized");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(says), "`{detail}` should say `{says}`");
    assert!(
        challenge.starts_with("Bearer realm=\"errand\", error=\"invalid_token\""),
        "{challenge}"
    );
    // The same token is refused by a task operation too.
    let response = app
        .request(Method::GET, "/v1/tasks", Some(token), None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let response = app.request(Method::GET, "/v1/tasks", None, None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        &format!(
            "Bearer realm=\"errand\", resource_metadata=\"{}\"",
            app.url("/.well-known/oauth-protected-resource")
        )
    );
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("Bearer scheme"));
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let keys = app.app.tokens().keys();
    let key = keys.active();
    let token = sign_with(key, &claims(&app, alice.id, -120));
    assert_rejected(&app, &token, "expired").await;
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let app = TestApp::spawn().await;
    let reader = app
        .user_with_scopes("alice@example.com", "tasks:read")
        .await;
    // Grant ourselves tasks:write by editing the payload, keeping the signature.
    let parts: Vec<&str> = reader.token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["scope"] = json!(ALL_SCOPES);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_rejected(&app, &forged, "signature").await;
}

#[tokio::test]
async fn an_alg_none_token_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, alice.id, 600).to_string());
    assert_rejected(&app, &format!("{header}.{payload}."), "accepts only EdDSA").await;
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let keys = app.app.tokens().keys();
    let key = keys.active();
    let public = key.public_jwk();
    let public_bytes = URL_SAFE_NO_PAD
        .decode(public["x"].as_str().unwrap())
        .unwrap();
    let header = URL_SAFE_NO_PAD
        .encode(json!({ "alg": "HS256", "typ": "JWT", "kid": key.kid() }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, alice.id, 600).to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(&public_bytes).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_rejected(
        &app,
        &format!("{header}.{payload}.{signature}"),
        "accepts only EdDSA",
    )
    .await;

    // The same with jsonwebtoken's own HS256 encoder and the JWK text as secret.
    let token = jsonwebtoken::encode(
        &Header {
            kid: Some(key.kid().to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(&app, alice.id, 600),
        &EncodingKey::from_secret(public.to_string().as_bytes()),
    )
    .unwrap();
    assert_rejected(&app, &token, "accepts only EdDSA").await;
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let stranger = SigningKey::generate().unwrap();
    assert_rejected(
        &app,
        &sign_with(&stranger, &claims(&app, alice.id, 600)),
        "does not know",
    )
    .await;
}

#[tokio::test]
async fn wrong_issuer_and_wrong_audience_are_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let keys = app.app.tokens().keys();
    let key = keys.active();
    let mut other_issuer = claims(&app, alice.id, 600);
    other_issuer["iss"] = json!("https://evil.example.com");
    assert_rejected(
        &app,
        &sign_with(key, &other_issuer),
        "issued by https://evil.example.com, not by this server",
    )
    .await;
    let mut other_audience = claims(&app, alice.id, 600);
    other_audience["aud"] = json!("https://other-api.example.com");
    assert_rejected(&app, &sign_with(key, &other_audience), "different audience").await;
}

#[tokio::test]
async fn a_token_for_a_user_that_does_not_exist_is_refused() {
    let app = TestApp::spawn().await;
    let ghost = app
        .app
        .tokens()
        .mint(
            uuid::Uuid::new_v4(),
            &ScopeSet::all(),
            Duration::from_secs(60),
            None,
            uuid::Uuid::new_v4(),
            errand::auth::Resource::Api,
        )
        .unwrap();
    let body = problem(app.me(&ghost).await, StatusCode::UNAUTHORIZED).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
    let response = app
        .request(
            Method::POST,
            "/v1/tasks",
            Some(&ghost),
            Some(&json!({ "title": "x" })),
        )
        .await;
    problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn get_me_names_the_user_and_the_granted_scopes() {
    let app = TestApp::spawn().await;
    let alice = app
        .user_with_scopes("Alice@Example.com", "tasks:read")
        .await;
    let response = app.me(&alice.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["id"], alice.id.to_string());
    assert_eq!(me["scopes"], json!(["tasks:read"]));
    assert_eq!(me["client_id"], Value::Null);
    // A token without scopes still identifies its user.
    let bare = app.user_with_scopes("alice@example.com", "").await;
    assert_eq!(app.me(&bare.token).await.status(), StatusCode::OK);
}

/// What the documents say each operation needs is what the server enforces:
/// for every operation, a token with every other scope gets 403 naming the
/// missing scope, and a token with exactly the documented scopes gets past
/// authorization.
#[tokio::test]
async fn every_operation_enforces_the_scopes_it_documents() {
    let app = TestApp::spawn().await;
    let owner = app.user("alice@example.com").await;
    let document = app.get_json("/openapi.json").await;
    // A webhook with one delivery, for the operations that address them.
    let integrator = app
        .user_with_scopes("alice@example.com", "tasks:write webhooks:manage")
        .await;
    let webhook: Value = app
        .request(
            Method::POST,
            "/v1/webhooks",
            Some(&integrator.token),
            Some(&json!({ "url": "http://127.0.0.1:9/hook" })),
        )
        .await
        .json()
        .await
        .unwrap();
    let webhook_id = webhook["id"].as_str().unwrap().to_owned();
    app.new_task(&integrator, json!({ "title": "for a delivery" }))
        .await;
    let mut delivery_id = String::new();
    for _ in 0..150 {
        let listed: Value = app
            .request(
                Method::GET,
                &format!("/v1/webhooks/{webhook_id}/deliveries"),
                Some(&integrator.token),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        if let Some(id) = listed["deliveries"][0]["id"].as_str() {
            delivery_id = id.to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!delivery_id.is_empty(), "a delivery was queued");
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(security) = operation.get("security") else {
                continue;
            };
            let needed: Vec<&str> = security[0]["oauth2"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let others: Vec<&str> = ["tasks:read", "tasks:write", "webhooks:manage"]
                .into_iter()
                .filter(|s| !needed.contains(s))
                .collect();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let in_an_hour = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let body =
                operation
                    .get("requestBody")
                    .map(|_| match operation["operationId"].as_str() {
                        Some("createReminder") => json!({ "remind_at": in_an_hour }),
                        Some("createWebhook") => json!({ "url": "http://127.0.0.1:9/hook" }),
                        _ => json!({ "title": "scope check" }),
                    });
            // A task and a reminder exist so that reaching the handler
            // gives 2xx, not 404.
            let target = app.new_task(&owner, json!({ "title": "target" })).await;
            let reminder: Value = app
                .request(
                    Method::POST,
                    &format!("/v1/tasks/{}/reminders", target["number"]),
                    Some(&owner.token),
                    Some(&json!({ "remind_at": in_an_hour })),
                )
                .await
                .json()
                .await
                .unwrap();
            // deleteWebhook gets one of its own to delete.
            let webhook_id = if operation["operationId"] == "deleteWebhook" {
                let doomed: Value = app
                    .request(
                        Method::POST,
                        "/v1/webhooks",
                        Some(&integrator.token),
                        Some(&json!({ "url": "http://127.0.0.1:9/other" })),
                    )
                    .await
                    .json()
                    .await
                    .unwrap();
                doomed["id"].as_str().unwrap().to_owned()
            } else {
                webhook_id.clone()
            };
            let path = path
                .replace("{number}", &target["number"].to_string())
                .replace("{reminder_id}", reminder["id"].as_str().unwrap())
                .replace("{webhook_id}", &webhook_id)
                .replace("{delivery_id}", &delivery_id);

            if !needed.is_empty() {
                let lacking = app
                    .user_with_scopes("alice@example.com", &others.join(" "))
                    .await;
                let response = app
                    .request(method.clone(), &path, Some(&lacking.token), body.as_ref())
                    .await;
                let challenge = response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let problem = problem(response, StatusCode::FORBIDDEN).await;
                assert_eq!(problem["type"], "/problems/insufficient-scope");
                assert!(
                    challenge.contains(needed[0]),
                    "{method} {path}: {challenge}"
                );
            }
            let exact = app
                .user_with_scopes("alice@example.com", &needed.join(" "))
                .await;
            let response = app
                .request(method.clone(), &path, Some(&exact.token), body.as_ref())
                .await;
            assert!(
                response.status().is_success(),
                "{method} {path} with {needed:?}: {}",
                response.status()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 17, "every protected operation was checked");
}

/// Token-signing keys are sealed at rest like every other secret Errand
/// must use again: the database holds no private key in the clear. A key an
/// earlier version stored in the clear still signs and verifies, and is
/// sealed the first time it is loaded, keeping its kid.
#[tokio::test]
async fn signing_keys_are_sealed_at_rest_and_one_stored_in_the_clear_is_sealed_on_load() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
    use errand::auth::{KeyRing, keys::entity as signing_key};
    use sea_orm::{ActiveValue::Set, EntityTrait};

    let app = TestApp::spawn().await;
    let db = &app.app.db;
    let stored = || async {
        signing_key::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.kid, row.private_key_pem))
            .collect::<Vec<_>>()
    };
    let first = stored().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        !first[0].1.contains("PRIVATE KEY"),
        "the key is stored in the clear"
    );

    // As an Errand from before sealing left it: a newer key, in the clear.
    let pem = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    let legacy = SigningKey::from_pem(&pem).unwrap();
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(legacy.kid().to_owned()),
        algorithm: Set("EdDSA".to_owned()),
        private_key_pem: Set(pem.clone()),
        created_at: Set(chrono::Utc::now() + chrono::TimeDelta::seconds(1)),
        retired_at: Set(None),
    })
    .exec_without_returning(db)
    .await
    .unwrap();

    let ring = KeyRing::load(db, None, &app.app.sealer()).await.unwrap();
    assert_eq!(ring.active().kid(), legacy.kid(), "the newest key signs");
    assert!(ring.verifying_key(&first[0].0).is_some());
    let after = stored().await;
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|(_, key)| !key.contains("PRIVATE KEY")),
        "{after:?}"
    );
    // Sealed, it opens again to the same key.
    let again = KeyRing::load(db, None, &app.app.sealer()).await.unwrap();
    assert_eq!(again.active().public_jwk(), legacy.public_jwk());
}
