//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the way MCP clients identify themselves): the `client_id` is an https URL,
//! and the JSON document at that URL says the client's name and redirect
//! URIs. Nothing is registered beforehand; the authorization server fetches
//! the document when the client first sends a user to sign in.
//!
//! The URL is the client's choice, so the fetch goes through the SSRF guard
//! (`outbound`): no private or metadata addresses, no redirects, a time and a
//! size limit. A document that passes is cached in the process for a few
//! minutes and recorded as an `oauth_clients` row (origin
//! `metadata_document`), so that codes, grants and consents refer to it like
//! to any other client and the token endpoint never fetches anything.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Deserialize;
use url::Url;

use super::{
    authorize::session::address_bucket,
    clients::{self, Client, ClientError},
    ration,
};
use crate::{
    outbound::{self, GuardPolicy},
    urls::host_of,
};
use sea_orm::DatabaseConnection;

/// Documents larger than this are refused (the draft suggests 5 KB; a name
/// and a few redirect URIs fit many times over).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The whole fetch, connection included, must finish within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is trusted before it is fetched again.
pub const CACHE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// At most this many documents are cached per process.
const CACHE_CAPACITY: usize = 1000;
/// Documents fetched per caller address in `ration::WINDOW`:
/// each fetch is a request Errand sends and may record a client, for anyone
/// who asks, so it is rationed like registration.
pub const MAX_FETCHES_PER_ADDRESS: i32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "the client_id URL must be https with a path, and no fragment, credentials or `.`/`..` \
         segments"
    )]
    BadUrl,
    #[error("the client_id URL is not allowed: {}", refusal(.0))]
    Guarded(#[from] outbound::GuardError),
    #[error("the client metadata document could not be fetched within {} seconds", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("the client metadata document could not be fetched ({0})")]
    Unreachable(String),
    #[error("fetching the client metadata document answered HTTP {0}, not 200")]
    Status(u16),
    #[error("the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the client metadata document is not valid: {0}")]
    Invalid(String),
    #[error("too many apps were looked up from this address; try again in {minutes} minutes")]
    Throttled { minutes: i64 },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Why the guard refused, in terms of this fetch: its own messages speak of
/// webhooks and of the webhook switches, which do not govern these fetches
/// in production.
fn refusal(error: &outbound::GuardError) -> String {
    use outbound::GuardError;
    match error {
        GuardError::Forbidden { host, .. } | GuardError::LoopbackName { host } => format!(
            "`{host}` is not a public address, and Errand fetches client metadata documents \
             only from public https addresses"
        ),
        GuardError::HttpNotAllowed | GuardError::UnsupportedScheme(_) => {
            "client metadata documents must be served over https".to_owned()
        }
        GuardError::Credentials => "the URL may not carry a user name or password".to_owned(),
        GuardError::TooLong(_) => "the URL is too long".to_owned(),
        GuardError::Invalid(_) | GuardError::MissingHost => "it is not a valid URL".to_owned(),
        GuardError::Unresolvable { host, .. } => format!("the host `{host}` does not resolve"),
    }
}

/// What the document may say; unknown members are ignored (the format is
/// the RFC 7591 client metadata, which has many).
#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    /// The newer list form (ChatGPT publishes both while clients move to
    /// it): the client can use any of these, and picks one Errand offers.
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_secret: Option<serde_json::Value>,
}

/// Whether a client id is a metadata document URL rather than an id Errand
/// issued (those never contain `:`).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// The draft's rules for the URL itself, before anything is fetched.
fn check_url(policy: &GuardPolicy, client_id: &str) -> Result<Url, MetadataError> {
    let url = outbound::check_url(policy, client_id)?;
    let path = url.path();
    let dot_segment = client_id
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .split('/')
        .any(|segment| segment == "." || segment == "..");
    if path.len() <= 1 || url.fragment().is_some() || dot_segment {
        return Err(MetadataError::BadUrl);
    }
    Ok(url)
}

/// Checks a fetched document against its URL.
fn validate(client_id: &str, body: &[u8]) -> Result<clients::NewClient, MetadataError> {
    let invalid = |why: &str| MetadataError::Invalid(why.to_owned());
    let document: Document = serde_json::from_slice(body)
        .map_err(|err| MetadataError::Invalid(format!("not the expected JSON object ({err})")))?;
    if document.client_id != client_id {
        return Err(invalid("its client_id is not the URL it was fetched from"));
    }
    if document.client_secret.is_some() {
        return Err(invalid(
            "it contains a client_secret, which a public document must not",
        ));
    }
    let offers_none = document
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|methods| methods.iter().any(|m| m == "none"));
    match document.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(_) if offers_none => {}
        Some(other) => {
            return Err(MetadataError::Invalid(format!(
                "token_endpoint_auth_method `{other}` is not supported; use `none` (with PKCE)"
            )));
        }
    }
    if document
        .grant_types
        .as_ref()
        .is_some_and(|types| !types.iter().any(|t| t == "authorization_code"))
    {
        return Err(invalid("its grant_types do not include authorization_code"));
    }
    if document
        .response_types
        .as_ref()
        .is_some_and(|types| !types.iter().any(|t| t == "code"))
    {
        return Err(invalid("its response_types do not include code"));
    }
    if document.redirect_uris.is_empty() {
        return Err(invalid("it lists no redirect_uris"));
    }
    for uri in &document.redirect_uris {
        clients::check_redirect_uri(uri)?;
    }
    let name = document
        .client_name
        .map(|name| name.trim().chars().take(100).collect::<String>())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| host_of(client_id).unwrap_or_default());
    Ok(clients::NewClient::public_app(name, document.redirect_uris))
}

/// Fetched documents, by client id.
#[derive(Debug)]
pub struct ClientDocuments {
    policy: GuardPolicy,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (Instant, Client)>>,
}

impl ClientDocuments {
    pub fn new(policy: GuardPolicy) -> Result<Self, reqwest::Error> {
        Ok(Self {
            policy,
            http: outbound::client(policy, FETCH_TIMEOUT)?,
            cache: Mutex::default(),
        })
    }

    fn cached(&self, client_id: &str) -> Option<Client> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(client_id)
            .filter(|(fetched, _)| fetched.elapsed() < CACHE_LIFETIME)
            .map(|(_, client)| client.clone())
    }

    fn remember(&self, client: &Client) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, (fetched, _)| fetched.elapsed() < CACHE_LIFETIME);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(client.id.clone(), (Instant::now(), client.clone()));
        }
    }

    /// The client a metadata document URL describes: from the cache, or
    /// fetched, checked and recorded. `requester` is the caller's address,
    /// which fetches are rationed by.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        client_id: &str,
        requester: &str,
    ) -> Result<Client, MetadataError> {
        if let Some(client) = self.cached(client_id) {
            return Ok(client);
        }
        let url = check_url(&self.policy, client_id)?;
        let key = format!("client-document:{}", address_bucket(requester));
        let now = chrono::Utc::now();
        let database = |err: sea_orm::DbErr| MetadataError::Client(ClientError::Database(err));
        if let Some(minutes) = ration::take_one(db, &key, MAX_FETCHES_PER_ADDRESS, now)
            .await
            .map_err(database)?
        {
            return Err(MetadataError::Throttled { minutes });
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, self.fetch(url))
            .await
            .map_err(|_| MetadataError::Timeout)??;
        let new = validate(client_id, &body)?;
        let client = clients::record_document_client(db, client_id, new).await?;
        self.remember(&client);
        Ok(client)
    }

    async fn fetch(&self, url: Url) -> Result<Vec<u8>, MetadataError> {
        let unreachable = |err: reqwest::Error| {
            if err.is_timeout() {
                return MetadataError::Timeout;
            }
            // The guard's refusal travels inside reqwest's error; say it.
            let mut source: Option<&dyn std::error::Error> = Some(&err);
            while let Some(current) = source {
                if let Some(guard) = current.downcast_ref::<outbound::GuardError>() {
                    return MetadataError::Unreachable(refusal(guard));
                }
                source = current.source();
            }
            MetadataError::Unreachable("connection failed".to_owned())
        };
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(MetadataError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(MetadataError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(MetadataError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: GuardPolicy = GuardPolicy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn client_id_urls_follow_the_draft() {
        assert!(check_url(&STRICT, "https://app.example.com/oauth/client.json").is_ok());
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a/../b.json",
            "https://app.example.com/a/./b.json",
            "https://app.example.com/c.json#x",
            "https://user:pw@app.example.com/c.json",
            "http://app.example.com/c.json",
            "https://127.0.0.1/c.json",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(check_url(&STRICT, bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn documents_must_name_themselves_and_their_redirects() {
        let id = "https://app.example.com/client.json";
        let ok = serde_json::json!({
            "client_id": id, "client_name": "App", "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "none"
        });
        let new = validate(id, ok.to_string().as_bytes()).unwrap();
        assert_eq!(new.name, "App");
        let with = |key: &str, value: serde_json::Value| {
            let mut doc = ok.clone();
            doc[key] = value;
            validate(id, doc.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(
            with("client_id", "https://other.example.com/client.json".into()).contains("client_id")
        );
        assert!(with("redirect_uris", serde_json::json!([])).contains("redirect_uris"));
        assert!(with("client_secret", "s".into()).contains("client_secret"));
        assert!(
            with("token_endpoint_auth_method", "client_secret_basic".into())
                .contains("not supported")
        );
        // ChatGPT's document: the legacy singular says private_key_jwt, the
        // list offers none too, which is what Errand uses.
        let mut chatgpt = ok.clone();
        chatgpt["token_endpoint_auth_method"] = "private_key_jwt".into();
        chatgpt["token_endpoint_auth_methods_supported"] =
            serde_json::json!(["none", "private_key_jwt"]);
        assert!(validate(id, chatgpt.to_string().as_bytes()).is_ok());
        assert!(
            with(
                "redirect_uris",
                serde_json::json!(["http://app.example.com/cb"])
            )
            .contains("https")
        );
        assert!(validate(id, b"[1]").is_err());
    }
}
