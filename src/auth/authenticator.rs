//! From a bearer token to a [`Principal`]: Errand's own tokens (signature,
//! claims, then whether their grant is still live) or, when configured, an
//! external identity provider's (then which Errand user its subject is).
//! Both lookups are answered from the process's [`LiveCache`] when it can
//! be trusted, so a request normally makes no extra database round trip.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use super::{
    KeyRing, Principal, Resource, ScopeSet, TokenError, TokenService, grants,
    oidc::{OidcError, OidcVerifier},
    revocation::{Invalidation, LiveCache, Recall},
    token::unverified_issuer,
};
use crate::{sealing::Sealer, users};

/// Unknown `kid`s reload the key ring at most this often.
const MIN_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the token's grant was revoked, or its user or client deleted")]
    Revoked,
    /// A live token, but for the other door (RFC 8707 audience).
    #[error("the token was issued for {}, not for {}", .issued_for.describe(), .expected.describe())]
    WrongResource {
        issued_for: Resource,
        expected: Resource,
        /// What to ask for instead: the expected resource's identifier.
        identifier: String,
    },
    /// The external identity provider refused the token.
    #[error(transparent)]
    External(OidcError),
    /// The external identity provider could not be asked.
    #[error("the identity provider is unreachable")]
    ProviderUnreachable(#[source] OidcError),
    #[error("database error")]
    Database(#[from] DbErr),
}

#[derive(Clone)]
pub struct Authenticator {
    tokens: TokenService,
    db: DatabaseConnection,
    external: Option<Arc<OidcVerifier>>,
    /// Keys come from this file instead of the database; nothing to reload.
    key_file: Option<PathBuf>,
    /// Opens the keys kept in the database.
    sealer: Sealer,
    last_reload: Arc<Mutex<Option<Instant>>>,
    live: Arc<LiveCache>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(
        tokens: TokenService,
        db: DatabaseConnection,
        external: Option<OidcVerifier>,
        key_file: Option<PathBuf>,
        sealer: Sealer,
    ) -> Self {
        Self {
            tokens,
            db,
            external: external.map(Arc::new),
            key_file,
            sealer,
            last_reload: Arc::default(),
            live: Arc::default(),
        }
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// What this process remembers as live; `revocation::watch` keeps it current.
    pub fn live_cache(&self) -> &Arc<LiveCache> {
        &self.live
    }

    /// The caller of a request to `resource`: a live token issued for it.
    /// Each door calls this with its own resource, so a token never opens
    /// the other one.
    pub async fn authenticate_for(
        &self,
        token: &str,
        resource: Resource,
    ) -> Result<Principal, AuthError> {
        let principal = self.authenticate(token).await?;
        if principal.resource != resource {
            return Err(AuthError::WrongResource {
                issued_for: principal.resource,
                expected: resource,
                identifier: self.tokens.audience(resource).to_owned(),
            });
        }
        Ok(principal)
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(external) = &self.external
            && unverified_issuer(token)
                .as_deref()
                .map(|i| i.trim_end_matches('/'))
                == Some(external.issuer())
        {
            return self.authenticate_external(external, token).await;
        }
        let principal = match self.tokens.verify(token) {
            Err(TokenError::UnknownKey) if self.reload_keys(false).await => {
                self.tokens.verify(token)
            }
            other => other,
        }?;
        let grant = principal.grant_id.ok_or(AuthError::Revoked)?;
        if let Recall::Unknown(asked) = self.live.grant(grant, principal.user_id) {
            if !grants::is_live(&self.db, grant, principal.user_id).await? {
                return Err(AuthError::Revoked);
            }
            self.live.remember_grant(grant, principal.user_id, asked);
        }
        Ok(principal)
    }

    /// Revokes a grant and stops accepting its tokens in this process at
    /// once (other processes are told by the database).
    pub async fn revoke_grant(&self, grant: Uuid) -> Result<(), DbErr> {
        grants::revoke(&self.db, grant).await?;
        self.live.invalidate(&Invalidation::Grant(grant));
        Ok(())
    }

    async fn authenticate_external(
        &self,
        external: &OidcVerifier,
        token: &str,
    ) -> Result<Principal, AuthError> {
        let claims = external.verify(token).await.map_err(|err| match err {
            OidcError::Provider(_) | OidcError::InsecureIssuer(_) => {
                AuthError::ProviderUnreachable(err)
            }
            other => AuthError::External(other),
        })?;
        let issuer = external.issuer();
        let user_id = match self.live.identity(&claims.sub) {
            Recall::Known(user) => user,
            Recall::Unknown(asked) => {
                // Only an address the provider vouches for links to an
                // existing account: a provider that lets anyone claim any
                // address would otherwise hand over that account.
                let verified_email = claims
                    .email
                    .as_deref()
                    .filter(|_| claims.email_verified == Some(true))
                    .and_then(|email| users::EmailAddress::parse(email).ok());
                let user = users::store::find_or_link_identity(
                    &self.db,
                    issuer,
                    &claims.sub,
                    verified_email.as_ref(),
                )
                .await?;
                self.live.remember_identity(&claims.sub, user.id, asked);
                user.id
            }
        };
        Ok(Principal {
            resource: Resource::Api,
            user_id,
            scopes: ScopeSet::parse_lenient(&claims.scopes()),
            client_id: claims.azp.clone(),
            grant_id: None,
            expires_at: claims.exp,
        })
    }

    /// Reloads signing keys from the database (after `errand keys rotate`).
    /// Unless `force`d, at most once per [`MIN_KEY_RELOAD_INTERVAL`].
    /// Returns whether keys were reloaded.
    pub async fn reload_keys(&self, force: bool) -> bool {
        if self.key_file.is_some() {
            return false;
        }
        {
            let Ok(mut last) = self.last_reload.lock() else {
                return false;
            };
            if !force && last.is_some_and(|at| at.elapsed() < MIN_KEY_RELOAD_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match KeyRing::load(&self.db, None, &self.sealer).await {
            Ok(keys) => {
                self.tokens.replace_keys(keys);
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not reload signing keys");
                false
            }
        }
    }
}
