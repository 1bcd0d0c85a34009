//! Trusting an external identity provider's JWTs (`ERRAND_OIDC_ISSUER`,
//! `ERRAND_OIDC_AUDIENCE`).
//!
//! The provider's discovery document names its JWKS, fetched with reqwest
//! and cached. A token signed with a `kid` not in the cache triggers one
//! refetch (key rotation at the provider), but at most one per minimum
//! interval (30 s by default), so tokens with made-up `kid`s cannot turn
//! Errand into a request amplifier. Each key is used only with the algorithm
//! it is published for; the token's header must name that algorithm.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm},
};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::{config::OidcSettings, urls::is_https_or_loopback};

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    #[error("ERRAND_OIDC_ISSUER `{0}` must be an https URL (http only for a loopback host)")]
    InsecureIssuer(String),
    #[error("the identity provider could not be reached or answered unexpectedly: {0}")]
    Provider(String),
    #[error("The access token was signed by a key the identity provider does not publish.")]
    UnknownKey,
    #[error("The access token's algorithm does not match the identity provider's key.")]
    AlgorithmMismatch,
    #[error("The access token is not valid: {0}.")]
    Invalid(String),
}

/// The claims Errand reads from a provider's token.
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalClaims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Azure AD and others put scopes here, as a string or a list.
    #[serde(default)]
    pub scp: Option<ScpClaim>,
    #[serde(default)]
    pub azp: Option<String>,
    pub exp: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScpClaim {
    Text(String),
    List(Vec<String>),
}

impl ExternalClaims {
    /// The granted scopes as one space-separated string.
    pub fn scopes(&self) -> String {
        let mut names: Vec<String> = self
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_owned))
            .collect();
        match &self.scp {
            Some(ScpClaim::Text(text)) => names.extend(text.split_whitespace().map(str::to_owned)),
            Some(ScpClaim::List(list)) => names.extend(list.iter().cloned()),
            None => {}
        }
        names.join(" ")
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
}

pub struct OidcVerifier {
    issuer: String,
    audience: String,
    min_refetch_interval: Duration,
    http: reqwest::Client,
    cache: Mutex<KeyCache>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

fn check_url(raw: &str) -> Result<Url, OidcError> {
    Url::parse(raw)
        .ok()
        .filter(is_https_or_loopback)
        .ok_or_else(|| OidcError::InsecureIssuer(raw.to_owned()))
}

/// The algorithm a JWK is for: its `alg` if published, else the one its key
/// type implies.
fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return match alg {
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::PS384 => Some(Algorithm::PS384),
            KeyAlgorithm::PS512 => Some(Algorithm::PS512),
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            // Symmetric and encryption algorithms are never accepted from a JWKS.
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

impl OidcVerifier {
    pub fn new(settings: &OidcSettings) -> Result<Self, OidcError> {
        let (issuer, audience) = (settings.issuer.as_str(), settings.audience.as_str());
        check_url(issuer)?;
        // reqwest would panic without one; say what is missing instead.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(OidcError::Provider(
                "no TLS crypto provider is installed; call errand::install_crypto_provider() \
                 when the process starts"
                    .to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Provider(e.to_string()))?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            min_refetch_interval: settings.min_refetch_interval,
            http,
            cache: Mutex::new(KeyCache::default()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Provider(format!(
                "GET {url}: {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("GET {url}: {e}")))
    }

    /// Fetches the discovery document and then the JWKS.
    async fn fetch_keys(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, OidcError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let discovery: Discovery = self
            .get_json(&format!("{}/.well-known/openid-configuration", self.issuer))
            .await?;
        if discovery.issuer.trim_end_matches('/') != self.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names issuer {}, not {}",
                discovery.issuer, self.issuer
            )));
        }
        check_url(&discovery.jwks_uri)?;
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        Ok(keys)
    }

    /// The key for `kid`, refetching the JWKS when it is unknown and the last
    /// fetch is old enough.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), OidcError> {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.keys.get(kid) {
            return Ok(found.clone());
        }
        let may_fetch = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.min_refetch_interval);
        if !may_fetch {
            return Err(OidcError::UnknownKey);
        }
        cache.fetched_at = Some(Instant::now());
        cache.keys = self.fetch_keys().await?;
        cache.keys.get(kid).cloned().ok_or(OidcError::UnknownKey)
    }

    pub async fn verify(&self, token: &str) -> Result<ExternalClaims, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| OidcError::Invalid("it is not a well-formed JWT".into()))?;
        let kid = header.kid.as_deref().ok_or(OidcError::UnknownKey)?;
        let (key, algorithm) = self.key(kid).await?;
        if header.alg != algorithm {
            return Err(OidcError::AlgorithmMismatch);
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[&self.issuer, &format!("{}/", self.issuer)]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                OidcError::Invalid(
                    match err.kind() {
                        ErrorKind::ExpiredSignature => "it has expired",
                        ErrorKind::InvalidAudience => "it was issued for a different audience",
                        ErrorKind::InvalidIssuer => "it was issued by a different server",
                        ErrorKind::InvalidSignature => "its signature does not verify",
                        _ => "its claims are not acceptable",
                    }
                    .to_owned(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_must_be_https_unless_loopback() {
        // What `main` does when the process starts.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let new =
            |issuer: &str| OidcVerifier::new(&OidcSettings::new(issuer.into(), "errand".into()));
        assert!(new("https://login.example.com").is_ok());
        assert!(new("http://127.0.0.1:9999").is_ok());
        assert_eq!(
            new("http://login.example.com").unwrap_err(),
            OidcError::InsecureIssuer("http://login.example.com".into())
        );
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims: ExternalClaims = serde_json::from_value(serde_json::json!({
            "sub": "s", "exp": 1, "scope": "tasks:read", "scp": ["tasks:write"]
        }))
        .unwrap();
        assert_eq!(claims.scopes(), "tasks:read tasks:write");
    }
}
