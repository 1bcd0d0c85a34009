//! Trusting an external identity provider: a provider on loopback publishes
//! its discovery document and JWKS; Errand accepts its tokens, maps them to
//! users, follows its key rotation, and refuses the rest.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use std::time::Duration;

use errand::{
    auth::keys::SigningKey,
    config::{AuthSettings, OidcSettings},
};
use jsonwebtoken::{Algorithm, Header};
use poem::{
    EndpointExt, Route, get, handler,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Json},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::common::{TestApp, problem};

const AUDIENCE: &str = "errand-api";

/// A minimal OpenID provider: discovery, a JWKS whose keys can be swapped,
/// and a count of JWKS fetches.
struct Provider {
    issuer: String,
    keys: Arc<RwLock<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ProviderState {
    issuer: String,
    keys: Arc<RwLock<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

#[handler]
fn discovery(Data(state): Data<&ProviderState>) -> Json<Value> {
    Json(json!({ "issuer": state.issuer, "jwks_uri": format!("{}/jwks", state.issuer) }))
}

#[handler]
async fn jwks(Data(state): Data<&ProviderState>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": *state.keys.read().await }))
}

impl Provider {
    async fn start(initial: &SigningKey) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}");
        let state = ProviderState {
            issuer: issuer.clone(),
            keys: Arc::new(RwLock::new(vec![initial.public_jwk()])),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
        };
        let routes = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(jwks))
            .data(state.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(routes).await;
        });
        Self {
            issuer,
            keys: state.keys,
            jwks_fetches: state.jwks_fetches,
        }
    }

    fn token(&self, key: &SigningKey, claims: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().to_owned());
        let now = chrono::Utc::now().timestamp();
        let mut body = json!({ "iss": self.issuer, "aud": AUDIENCE, "iat": now, "exp": now + 600 });
        for (k, v) in claims.as_object().unwrap() {
            body[k] = v.clone();
        }
        jsonwebtoken::encode(&header, &body, key.encoding_key()).unwrap()
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn errand_trusting_with(provider: &Provider, min_refetch_interval: Duration) -> TestApp {
    TestApp::spawn_with(AuthSettings {
        oidc: Some(OidcSettings {
            min_refetch_interval,
            ..OidcSettings::new(provider.issuer.clone(), AUDIENCE.to_owned())
        }),
        ..AuthSettings::default()
    })
    .await
}

async fn errand_trusting(provider: &Provider) -> TestApp {
    errand_trusting_with(provider, Duration::from_secs(30)).await
}

#[tokio::test]
async fn provider_tokens_map_to_users_with_their_scopes() {
    let key = SigningKey::generate().unwrap();
    let provider = Provider::start(&key).await;
    let app = errand_trusting(&provider).await;

    let token = provider.token(
        &key,
        json!({ "sub": "user-1", "email": "Sam@Example.com", "email_verified": true, "scp": ["tasks:read", "tasks:write"], "azp": "spa" }),
    );
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["email"], "sam@example.com");
    assert_eq!(me["scopes"], json!(["tasks:read", "tasks:write"]));
    assert_eq!(me["client_id"], "spa");
    let created = app
        .request(
            Method::POST,
            "/v1/tasks",
            Some(&token),
            Some(&json!({ "title": "via IdP" })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // The same subject is the same user; an Errand token for that email too.
    let again = provider.token(&key, json!({ "sub": "user-1", "scope": "tasks:read" }));
    let listed: Value = app
        .request(Method::GET, "/v1/tasks", Some(&again), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tasks"][0]["title"], "via IdP");
    let native = app.user("sam@example.com").await;
    let (tasks, _) = app.list_page(&native, &[]).await;
    assert_eq!(tasks.len(), 1);

    // A subject without a verified email gets an account of its own.
    let stranger = provider.token(&key, json!({ "sub": "user-2", "email": "sam@example.com", "email_verified": false, "scope": "tasks:read" }));
    let me: Value = app.me(&stranger).await.json().await.unwrap();
    assert_ne!(me["email"], "sam@example.com");
    let listed: Value = app
        .request(Method::GET, "/v1/tasks", Some(&stranger), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tasks"], json!([]));
    // Scopes are enforced for provider tokens too.
    let response = app
        .request(
            Method::POST,
            "/v1/tasks",
            Some(&stranger),
            Some(&json!({ "title": "x" })),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(provider.fetches(), 1, "the JWKS is cached");
}

#[tokio::test]
async fn a_rotated_provider_key_is_fetched_once_and_made_up_kids_are_rate_limited() {
    let first = SigningKey::generate().unwrap();
    let provider = Provider::start(&first).await;
    let app = errand_trusting(&provider).await;
    let ok = provider.token(&first, json!({ "sub": "u", "scope": "tasks:read" }));
    assert_eq!(app.me(&ok).await.status(), StatusCode::OK);
    assert_eq!(provider.fetches(), 1);

    // The provider starts signing with a new key: the unknown kid triggers one
    // refetch... but only after the minimum interval, so it waits for it.
    let second = SigningKey::generate().unwrap();
    provider.keys.write().await.push(second.public_jwk());
    let rotated = provider.token(&second, json!({ "sub": "u", "scope": "tasks:read" }));
    let response = app.me(&rotated).await;
    // Within 30 s of the last fetch, an unknown kid is refused without asking.
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(provider.fetches(), 1);

    // Tokens with made-up kids do not make Errand hammer the provider.
    let impostor = SigningKey::generate().unwrap();
    for _ in 0..10 {
        let forged = provider.token(&impostor, json!({ "sub": "u" }));
        assert_eq!(app.me(&forged).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_once_the_interval_has_passed() {
    let first = SigningKey::generate().unwrap();
    let provider = Provider::start(&first).await;
    let app = errand_trusting_with(&provider, Duration::from_millis(300)).await;
    let ok = provider.token(&first, json!({ "sub": "u", "scope": "tasks:read" }));
    assert_eq!(app.me(&ok).await.status(), StatusCode::OK);

    let second = SigningKey::generate().unwrap();
    provider.keys.write().await.push(second.public_jwk());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rotated = provider.token(&second, json!({ "sub": "u", "scope": "tasks:read" }));
    assert_eq!(app.me(&rotated).await.status(), StatusCode::OK);
    assert_eq!(provider.fetches(), 2, "one refetch for the new kid");
    assert_eq!(app.me(&rotated).await.status(), StatusCode::OK);
    assert_eq!(provider.fetches(), 2, "then cached");
}

#[tokio::test]
async fn the_first_token_fetches_the_keys_lazily() {
    let first = SigningKey::generate().unwrap();
    let second = SigningKey::generate().unwrap();
    let provider = Provider::start(&first).await;
    // The provider already publishes the next key; Errand fetches lazily, so
    // the first token it sees (signed with the second key) costs one fetch.
    provider.keys.write().await.push(second.public_jwk());
    let app = errand_trusting(&provider).await;
    let token = provider.token(&second, json!({ "sub": "u", "scope": "tasks:read" }));
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    let token = provider.token(&first, json!({ "sub": "u", "scope": "tasks:read" }));
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    assert_eq!(provider.fetches(), 1);
}

#[tokio::test]
async fn provider_tokens_with_the_wrong_audience_algorithm_or_lifetime_are_refused() {
    let key = SigningKey::generate().unwrap();
    let provider = Provider::start(&key).await;
    let app = errand_trusting(&provider).await;
    let refuse = |token: String, says: &'static str| {
        let app = &app;
        async move {
            let response = app.me(&token).await;
            let body = problem(response, StatusCode::UNAUTHORIZED).await;
            assert!(body["detail"].as_str().unwrap().contains(says), "{body}");
        }
    };
    refuse(
        provider.token(&key, json!({ "sub": "u", "aud": "someone-else" })),
        "different audience",
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    refuse(
        provider.token(&key, json!({ "sub": "u", "exp": now - 120 })),
        "expired",
    )
    .await;
    // Same kid, but HS256 keyed with the public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid().to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &json!({ "iss": provider.issuer, "aud": AUDIENCE, "sub": "u", "exp": now + 600 }),
        &jsonwebtoken::EncodingKey::from_secret(key.public_jwk()["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    refuse(forged, "does not match").await;
    // Errand's own signing key is not the provider's.
    let errand_key = app.app.tokens().keys();
    refuse(
        provider.token(errand_key.active(), json!({ "sub": "u" })),
        "does not publish",
    )
    .await;
}

/// A provider token that claims an address without vouching for it
/// (no `email_verified`, or `false`) never takes over the account that has
/// that address: it gets an account of its own.
#[tokio::test]
async fn an_unverified_email_claim_does_not_take_over_an_account() {
    let key = SigningKey::generate().unwrap();
    let provider = Provider::start(&key).await;
    let app = errand_trusting(&provider).await;
    let owner = app.user("owner@example.com").await;
    app.new_task(&owner, json!({ "title": "The owner's own task" }))
        .await;
    for (subject, claims) in [
        ("claims-only", json!({ "email": "owner@example.com" })),
        (
            "says-unverified",
            json!({ "email": "Owner@Example.com", "email_verified": false }),
        ),
    ] {
        let mut claims = claims;
        claims["sub"] = json!(subject);
        claims["scope"] = json!("tasks:read");
        let token = provider.token(&key, claims);
        let me: Value = app.me(&token).await.json().await.unwrap();
        assert_ne!(me["email"], "owner@example.com", "{subject}");
        let listed: Value = app
            .request(Method::GET, "/v1/tasks", Some(&token), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["tasks"], json!([]), "{subject} sees nobody's tasks");
    }
}
