//! The grant types (RFC 6749, RFC 9700): authorization codes, refresh
//! tokens and client credentials exchanged for access tokens, and revocation.
//!
//! Every access token names a grant (`auth::grants`); the rules here are:
//! * a code is single-use, lives 10 minutes, and is bound to its client, its
//!   redirect URI and its PKCE challenge; presenting a used code again
//!   revokes the grant it produced;
//! * a refresh token is single-use; presenting a rotated one again revokes
//!   the whole grant (the family), because either the client or a thief is
//!   replaying it and the server cannot tell which.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::entity::{code, refresh_token};
use crate::{
    auth::{Authenticator, Resource, ScopeSet, TokenError, TokenService, grants},
    secrets::{self, SecretError},
    timestamp::from_now,
};

pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// RFC 6749 `invalid_grant`, with a description for the client.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// RFC 6749 `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8707 `invalid_target`.
    #[error("{0}")]
    InvalidTarget(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("database error")]
    Database(#[from] DbErr),
}

/// What the token endpoint hands out.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub scopes: ScopeSet,
}

async fn new_refresh_token(
    db: &impl ConnectionTrait,
    grant_id: Uuid,
) -> Result<String, GrantError> {
    let token = secrets::random_token()?;
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_hash: Set(secrets::digest(&token)),
        grant_id: Set(grant_id),
        created_at: Set(Utc::now()),
        expires_at: Set(from_now(REFRESH_TOKEN_LIFETIME)),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(token)
}

/// A client's access token under `grant_id`, with the refresh token (if any)
/// issued alongside it.
fn issue(
    tokens: &TokenService,
    user_id: Uuid,
    client_id: &str,
    grant_id: Uuid,
    scopes: ScopeSet,
    refresh_token: Option<String>,
    resource: Resource,
) -> Result<IssuedTokens, GrantError> {
    let access_token = tokens.mint(
        user_id,
        &scopes,
        ACCESS_TOKEN_LIFETIME,
        Some(client_id),
        grant_id,
        resource,
    )?;
    Ok(IssuedTokens {
        access_token,
        expires_in: ACCESS_TOKEN_LIFETIME.as_secs(),
        refresh_token,
        scopes,
    })
}

/// The scopes to issue: what was granted, or the requested subset of it.
fn narrowed(granted: &ScopeSet, requested: Option<&ScopeSet>) -> Result<ScopeSet, GrantError> {
    match requested {
        Some(requested) if !requested.iter().all(|s| granted.contains(s)) => {
            Err(GrantError::InvalidScope(format!(
                "the requested scope exceeds what was granted ({granted}); ask for the same or fewer scopes"
            )))
        }
        Some(requested) if !requested.is_empty() => Ok(*requested),
        _ => Ok(*granted),
    }
}

/// What an authorization code was issued for.
#[derive(Debug, Clone)]
pub struct CodeRequest<'a> {
    pub client_id: &'a str,
    pub user_id: Uuid,
    pub redirect_uri: &'a str,
    pub scopes: &'a ScopeSet,
    /// PKCE S256 challenge, if the client sent one.
    pub code_challenge: Option<&'a str>,
    /// The resource the tokens will be for.
    pub resource: Resource,
    /// The authorization request named the redirect URI, so redeeming the
    /// code must name it too.
    pub redirect_uri_sent: bool,
}

pub async fn issue_code(
    db: &DatabaseConnection,
    request: CodeRequest<'_>,
) -> Result<String, GrantError> {
    let code = secrets::random_token()?;
    code::Entity::insert(code::ActiveModel {
        code_hash: Set(secrets::digest(&code)),
        client_id: Set(request.client_id.to_owned()),
        user_id: Set(request.user_id),
        redirect_uri: Set(request.redirect_uri.to_owned()),
        scopes: Set(request.scopes.to_string()),
        code_challenge: Set(request.code_challenge.map(str::to_owned)),
        expires_at: Set(from_now(CODE_LIFETIME)),
        used_at: Set(None),
        grant_id: Set(None),
        resource: Set(request.resource.stored().map(str::to_owned)),
        redirect_uri_required: Set(request.redirect_uri_sent),
    })
    .exec_without_returning(db)
    .await?;
    Ok(code)
}

/// What the client sent to redeem a code.
#[derive(Debug, Clone)]
pub struct CodeRedemption<'a> {
    pub code: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    /// A `scope` sent with the code may narrow what was granted, never widen.
    pub requested: Option<&'a ScopeSet>,
    /// A `resource` sent with the code must be the one authorized.
    pub resource: Option<Resource>,
}

/// RFC 8707 §2.2: a token request may name the resource again, but only the
/// one the authorization was for (Errand's two resources are never granted
/// together).
fn same_resource(granted: Resource, requested: Option<Resource>) -> Result<(), GrantError> {
    match requested {
        Some(requested) if requested != granted => Err(GrantError::InvalidTarget(format!(
            "this authorization is for {}, not {}; start a new sign-in for that resource",
            granted.describe(),
            requested.describe()
        ))),
        _ => Ok(()),
    }
}

/// Exchanges a code for tokens (the `authorization_code` grant).
pub async fn redeem_code(
    db: &DatabaseConnection,
    auth: &Authenticator,
    redemption: CodeRedemption<'_>,
) -> Result<IssuedTokens, GrantError> {
    let hash = secrets::digest(redemption.code);
    let Some(row) = code::Entity::find_by_id(hash.clone()).one(db).await? else {
        return Err(GrantError::InvalidGrant(
            "the authorization code is not valid",
        ));
    };
    if row.client_id != redemption.client_id {
        return Err(GrantError::InvalidGrant(
            "the authorization code was issued to another client",
        ));
    }
    if row.used_at.is_some() {
        // A replayed code: whoever holds it, the tokens it produced are no
        // longer trustworthy.
        if let Some(grant_id) = row.grant_id {
            auth.revoke_grant(grant_id).await?;
        }
        return Err(GrantError::InvalidGrant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(GrantError::InvalidGrant(
            "the authorization code has expired; start the sign-in again",
        ));
    }
    match redemption.redirect_uri {
        Some(uri) if uri != row.redirect_uri => {
            return Err(GrantError::InvalidGrant(
                "redirect_uri does not match the authorization request",
            ));
        }
        // RFC 6749 §4.1.3: required when the authorization request had one.
        None if row.redirect_uri_required => {
            return Err(GrantError::InvalidGrant(
                "redirect_uri is required: send the one the authorization request carried",
            ));
        }
        _ => {}
    }
    match (&row.code_challenge, redemption.code_verifier) {
        (Some(challenge), Some(verifier)) if secrets::matches_digest(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(GrantError::InvalidGrant(
                "code_verifier does not match the code_challenge",
            ));
        }
        (Some(_), None) => {
            return Err(GrantError::InvalidGrant(
                "code_verifier is required: the authorization used PKCE",
            ));
        }
        (None, Some(_)) => {
            return Err(GrantError::InvalidGrant(
                "code_verifier was sent but the authorization had no code_challenge",
            ));
        }
        (None, None) => {}
    }

    let resource = Resource::from_stored(row.resource.as_deref());
    same_resource(resource, redemption.resource)?;
    let granted = ScopeSet::parse_lenient(&row.scopes);
    let scopes = narrowed(&granted, redemption.requested)?;
    let txn = db.begin().await?;
    let grant_id =
        grants::create(&txn, row.user_id, Some(&row.client_id), &scopes, resource).await?;
    // Claim the code atomically: of two concurrent redemptions only one
    // updates the row; the other sees a used code.
    let claimed = code::Entity::update_many()
        .col_expr(code::Column::UsedAt, Expr::value(Utc::now()))
        .col_expr(code::Column::GrantId, Expr::value(grant_id))
        .filter(code::Column::CodeHash.eq(hash))
        .filter(code::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        return Err(GrantError::InvalidGrant(
            "the authorization code was already used",
        ));
    }
    let refresh = new_refresh_token(&txn, grant_id).await?;
    txn.commit().await?;
    issue(
        auth.tokens(),
        row.user_id,
        &row.client_id,
        grant_id,
        scopes,
        Some(refresh),
        resource,
    )
}

/// Exchanges a refresh token for a new access token and a new refresh token
/// (the `refresh_token` grant). `requested` may narrow the scopes, never widen.
pub async fn refresh(
    db: &DatabaseConnection,
    auth: &Authenticator,
    presented: &str,
    client_id: &str,
    requested: Option<&ScopeSet>,
    resource: Option<Resource>,
) -> Result<IssuedTokens, GrantError> {
    let hash = secrets::digest(presented);
    let Some(row) = refresh_token::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
    else {
        return Err(GrantError::InvalidGrant("the refresh token is not valid"));
    };
    let Some(family) = grants::find(db, row.grant_id).await? else {
        return Err(GrantError::InvalidGrant("the refresh token is not valid"));
    };
    if family.client_id.as_deref() != Some(client_id) {
        return Err(GrantError::InvalidGrant(
            "the refresh token was issued to another client",
        ));
    }
    if family.revoked {
        return Err(GrantError::InvalidGrant(
            "the refresh token has been revoked; sign in again",
        ));
    }
    if row.used_at.is_some() {
        auth.revoke_grant(family.id).await?;
        return Err(GrantError::InvalidGrant(
            "the refresh token was already used; every token of this sign-in is now revoked",
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(GrantError::InvalidGrant(
            "the refresh token has expired; sign in again",
        ));
    }
    same_resource(family.resource, resource)?;
    let scopes = narrowed(&family.scopes, requested)?;
    let txn = db.begin().await?;
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        txn.rollback().await?;
        auth.revoke_grant(family.id).await?;
        return Err(GrantError::InvalidGrant(
            "the refresh token was already used; every token of this sign-in is now revoked",
        ));
    }
    let next = new_refresh_token(&txn, family.id).await?;
    txn.commit().await?;
    issue(
        auth.tokens(),
        family.user_id,
        client_id,
        family.id,
        scopes,
        Some(next),
        family.resource,
    )
}

/// An access token for a client's own service user (the
/// `client_credentials` grant). One grant per client and scope set is
/// reused, so frequent token requests do not pile up rows.
pub async fn client_credentials(
    db: &DatabaseConnection,
    tokens: &TokenService,
    client_id: &str,
    service_user: Uuid,
    scopes: &ScopeSet,
) -> Result<IssuedTokens, GrantError> {
    let existing = grants::find_live_for_client(db, client_id, service_user, scopes).await?;
    let grant_id = match existing {
        Some(id) => id,
        None => grants::create(db, service_user, Some(client_id), scopes, Resource::Api).await?,
    };
    issue(
        tokens,
        service_user,
        client_id,
        grant_id,
        *scopes,
        None,
        Resource::Api,
    )
}

/// RFC 7009: revokes the grant behind a refresh token or an access token, if
/// it belongs to `client_id`. Unknown tokens are not an error.
pub async fn revoke_token(
    db: &DatabaseConnection,
    auth: &Authenticator,
    client_id: &str,
    token: &str,
) -> Result<(), DbErr> {
    let grant_id = match refresh_token::Entity::find_by_id(secrets::digest(token))
        .one(db)
        .await?
    {
        Some(row) => Some(row.grant_id),
        // Expired access tokens may still be revoked, so only the signature
        // and issuer are checked here.
        None => auth.tokens().grant_of(token),
    };
    let Some(grant_id) = grant_id else {
        return Ok(());
    };
    let owned = grants::find(db, grant_id)
        .await?
        .is_some_and(|grant| grant.client_id.as_deref() == Some(client_id));
    if owned {
        auth.revoke_grant(grant_id).await?;
    }
    Ok(())
}
