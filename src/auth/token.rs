//! Minting and verifying access tokens.
//!
//! Verification accepts exactly one algorithm (EdDSA) and only keys from the
//! key ring, looked up by `kid`; the token's own header never chooses how it is
//! checked. That closes `alg: none` and the HS256-with-the-public-key trick.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{KeyRing, Resource, ScopeSet, principal::Principal};
use crate::config::PublicUrl;

/// Clock skew tolerated between the issuer and this server.
const LEEWAY_SECONDS: u64 = 30;

/// The claims of an Errand access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The grant the token was issued under; revoking it revokes the token.
    pub grant: Uuid,
}

/// How many verified tokens are remembered.
const VERIFIED_CACHE_CAPACITY: usize = 10_000;

/// Tokens whose signature and claims have been checked, by SHA-256 of the
/// token. A client sends the same token on every call until it expires
/// (ChatGPT does), so the Ed25519 check, the costliest step of a request,
/// runs once per token instead of once per call.
#[derive(Debug, Default)]
struct VerifiedTokens(RwLock<HashMap<[u8; 32], Principal>>);

impl VerifiedTokens {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Principal> {
        let entries = self.0.read().ok()?;
        entries.get(key).filter(|p| p.expires_at > now).cloned()
    }

    fn insert(&self, key: [u8; 32], principal: Principal, now: i64) {
        let Ok(mut entries) = self.0.write() else {
            return;
        };
        if entries.len() >= VERIFIED_CACHE_CAPACITY {
            entries.retain(|_, p| p.expires_at > now);
            if entries.len() >= VERIFIED_CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, principal);
    }
}

/// Issues and checks access tokens for one deployment: one issuer, one
/// audience per [`Resource`].
#[derive(Debug, Clone)]
pub struct TokenService {
    /// Replaced when keys are rotated (`reload_keys`).
    keys: Arc<RwLock<KeyRing>>,
    issuer: String,
    /// Each resource's identifier, in `Resource::ALL` order.
    audiences: [String; 2],
    verified: Arc<VerifiedTokens>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("The access token is not a well-formed JWT.")]
    Malformed,
    #[error(
        "The access token is signed with {0}; this server accepts only EdDSA tokens it issued."
    )]
    UnsupportedAlgorithm(String),
    #[error("The access token was signed by a key this server does not know.")]
    UnknownKey,
    #[error("The access token's signature does not verify.")]
    BadSignature,
    #[error("The access token has expired.")]
    Expired,
    #[error("The access token is not valid yet.")]
    NotYetValid,
    #[error(
        "The access token was issued by {issued_by}, not by this server ({expected}). A token \
         only works on the server that issued it."
    )]
    WrongIssuer { issued_by: String, expected: String },
    #[error("The access token was issued for a different audience (expected {0}).")]
    WrongAudience(String),
    #[error("The access token lacks the `{0}` claim.")]
    MissingClaim(String),
    #[error("The access token's subject is not an Errand user id.")]
    InvalidSubject,
    #[error("Could not sign the access token.")]
    Signing,
}

impl TokenService {
    pub fn new(keys: KeyRing, public_url: &PublicUrl) -> Self {
        Self {
            keys: Arc::new(RwLock::new(keys)),
            issuer: public_url.as_str().to_owned(),
            audiences: Resource::ALL.map(|r| r.identifier(public_url)),
            verified: Arc::default(),
        }
    }

    /// The current key ring (cheap to clone).
    pub fn keys(&self) -> KeyRing {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts signing with, and accepting, the given keys.
    pub fn replace_keys(&self, keys: KeyRing) {
        match self.keys.write() {
            Ok(mut current) => *current = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience of `resource`'s tokens (its identifier).
    pub fn audience(&self, resource: Resource) -> &str {
        match resource {
            Resource::Api => &self.audiences[0],
            Resource::Mcp => &self.audiences[1],
        }
    }

    /// Signs an access token for `user` carrying `scopes`, valid for `ttl`,
    /// under `grant`, for `resource`.
    pub fn mint(
        &self,
        user: Uuid,
        scopes: &ScopeSet,
        ttl: Duration,
        client_id: Option<&str>,
        grant: Uuid,
        resource: Resource,
    ) -> Result<String, TokenError> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: self.audience(resource).to_owned(),
            exp: now.saturating_add(ttl),
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            scope: scopes.to_string(),
            client_id: client_id.map(str::to_owned),
            grant,
        };
        let keys = self.keys();
        let key = keys.active();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, key.encoding_key()).map_err(|_| TokenError::Signing)
    }

    /// Checks a bearer token and says whose it is.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Utc::now().timestamp();
        if let Some(principal) = self.verified.get(&key, now) {
            return Ok(principal);
        }
        let principal = self.verify_uncached(token)?;
        self.verified.insert(key, principal.clone(), now);
        Ok(principal)
    }

    /// What every token of ours must be: EdDSA, this issuer, one of our
    /// resources as audience (which one the caller checks).
    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation
    }

    /// The grant a token of ours names, checking its signature and issuer but
    /// not its lifetime (an expired token may still be revoked).
    pub fn grant_of(&self, token: &str) -> Option<Uuid> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let keys = self.keys();
        let key = keys.verifying_key(header.kid.as_deref()?)?;
        let mut validation = self.validation();
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &validation)
            .ok()
            .map(|data| data.claims.grant)
    }

    fn verify_uncached(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| match raw_alg(token) {
            // A readable header naming an algorithm jsonwebtoken does not
            // implement, `none` among them.
            Some(alg) if alg != "EdDSA" => TokenError::UnsupportedAlgorithm(alg),
            _ => TokenError::Malformed,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::UnsupportedAlgorithm(format!(
                "{:?}",
                header.alg
            )));
        }
        let keys = self.keys();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.verifying_key(kid))
            .ok_or(TokenError::UnknownKey)?;

        let mut validation = self.validation();
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        // `grant` is required by the claims type: a token without one fails
        // to decode and is refused as malformed.

        let data = jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer {
                    // The caller's own claim, shown back to them; cut short.
                    issued_by: unverified_issuer(token).map_or_else(
                        || "another server".to_owned(),
                        |iss| iss.chars().take(100).collect(),
                    ),
                    expected: self.issuer.clone(),
                },
                ErrorKind::InvalidAudience => {
                    TokenError::WrongAudience(self.audiences.join(" or "))
                }
                ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => {
                    TokenError::UnsupportedAlgorithm(format!("{:?}", header.alg))
                }
                _ => TokenError::Malformed,
            })?;
        let claims = data.claims;
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| TokenError::InvalidSubject)?;
        let resource = if claims.aud == self.audiences[1] {
            Resource::Mcp
        } else {
            Resource::Api
        };
        Ok(Principal {
            resource,
            user_id,
            scopes: ScopeSet::parse_lenient(&claims.scope),
            client_id: claims.client_id,
            grant_id: Some(claims.grant),
            expires_at: claims.exp,
        })
    }
}

/// A string member of one part of a JWT (0 = header, 1 = payload), read
/// without verifying anything: only for choosing how to verify.
fn unverified_member(token: &str, part: usize, name: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let encoded = token.split('.').nth(part)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}

fn raw_alg(token: &str) -> Option<String> {
    unverified_member(token, 0, "alg")
}

/// Who claims to have issued a token, before any check.
pub fn unverified_issuer(token: &str) -> Option<String> {
    unverified_member(token, 1, "iss")
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::auth::{Scope, keys::SigningKey};

    fn service() -> TokenService {
        let url = PublicUrl::parse("http://127.0.0.1:8080").unwrap();
        TokenService::new(KeyRing::single(SigningKey::generate().unwrap()), &url)
    }

    /// A minute-long token with every scope for a random user.
    fn any_token(tokens: &TokenService) -> String {
        tokens
            .mint(
                Uuid::new_v4(),
                &ScopeSet::all(),
                Duration::from_secs(60),
                None,
                Uuid::new_v4(),
                Resource::Api,
            )
            .unwrap()
    }

    #[test]
    fn a_minted_token_verifies_with_its_user_and_scopes() {
        let tokens = service();
        let user = Uuid::new_v4();
        let scopes: ScopeSet = [Scope::TasksRead].into_iter().collect();
        let token = tokens
            .mint(
                user,
                &scopes,
                Duration::from_secs(60),
                None,
                Uuid::new_v4(),
                Resource::Api,
            )
            .unwrap();
        let principal = tokens.verify(&token).unwrap();
        assert_eq!(principal.user_id, user);
        assert_eq!(principal.scopes, scopes);
    }

    #[test]
    fn a_token_from_another_key_ring_is_rejected() {
        let token = any_token(&service());
        assert_eq!(service().verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn alg_none_is_rejected_as_unsupported() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let token = format!("{header}.{body}.");
        assert_eq!(
            service().verify(&token),
            Err(TokenError::UnsupportedAlgorithm("none".to_owned()))
        );
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let tokens = service();
        let token = any_token(&tokens);
        let principal = tokens.verify(&token).unwrap();
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert!(
            tokens
                .verified
                .get(&key, principal.expires_at - 1)
                .is_some()
        );
        assert!(tokens.verified.get(&key, principal.expires_at).is_none());
    }

    #[test]
    fn a_token_from_another_address_names_both_issuers() {
        let keys = KeyRing::single(SigningKey::generate().unwrap());
        let on_8080 = TokenService::new(
            keys.clone(),
            &PublicUrl::parse("http://127.0.0.1:8080").unwrap(),
        );
        let on_9000 = TokenService::new(keys, &PublicUrl::parse("http://127.0.0.1:9000").unwrap());
        let err = on_9000.verify(&any_token(&on_8080)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "issued by http://127.0.0.1:8080, not by this server (http://127.0.0.1:9000)"
            ),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(service().verify("not-a-jwt"), Err(TokenError::Malformed));
    }
}
