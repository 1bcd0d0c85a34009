//! From a bearer token to a [`Principal`]: Errand's own tokens (signature,
//! claims, then whether their grant is still live) or, when configured, an
//! external identity provider's.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::DatabaseConnection;

use super::{
    KeyRing, Principal, ScopeSet, TokenError, TokenService,
    oidc::{OidcError, OidcVerifier},
    token::unverified_issuer,
};
use crate::{oauth::grants, problem::Problem, users};

/// Unknown `kid`s reload the key ring at most this often.
const MIN_KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Authenticator {
    tokens: TokenService,
    db: DatabaseConnection,
    external: Option<Arc<OidcVerifier>>,
    /// Keys come from this file instead of the database; nothing to reload.
    key_file: Option<PathBuf>,
    last_reload: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

fn revoked() -> Problem {
    Problem::unauthorized(
        "The access token has been revoked, or the account or app it was issued to no longer \
         exists. Sign in again.",
        true,
    )
}

impl Authenticator {
    pub fn new(
        tokens: TokenService,
        db: DatabaseConnection,
        external: Option<OidcVerifier>,
        key_file: Option<PathBuf>,
    ) -> Self {
        Self {
            tokens,
            db,
            external: external.map(Arc::new),
            key_file,
            last_reload: Arc::default(),
        }
    }

    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, Problem> {
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
        }
        .map_err(Problem::from)?;
        let live = match principal.grant_id {
            Some(grant) => grants::is_live(&self.db, grant, principal.user_id)
                .await
                .map_err(Problem::internal)?,
            None => false,
        };
        if !live {
            return Err(revoked());
        }
        Ok(principal)
    }

    async fn authenticate_external(
        &self,
        external: &OidcVerifier,
        token: &str,
    ) -> Result<Principal, Problem> {
        let claims = external.verify(token).await.map_err(|err| match err {
            OidcError::Provider(_) | OidcError::InsecureIssuer(_) => Problem::unavailable(
                "The identity provider could not be reached; retry shortly.",
                err,
            ),
            other => Problem::unauthorized(
                format!("{other} Obtain a new access token from the identity provider."),
                true,
            ),
        })?;
        let verified_email = claims
            .email
            .as_deref()
            .filter(|_| claims.email_verified != Some(false))
            .and_then(|email| users::EmailAddress::parse(email).ok());
        let user = users::store::find_or_link_identity(
            &self.db,
            external.issuer(),
            &claims.sub,
            verified_email.as_ref(),
        )
        .await
        .map_err(Problem::internal)?;
        Ok(Principal {
            user_id: user.id,
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
        match KeyRing::load(&self.db, None).await {
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
