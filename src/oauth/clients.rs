//! Registered OAuth clients: a custom GPT (authorization code, confidential),
//! an integrator's backend (client credentials), or a public app (PKCE).

use std::fmt;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, sea_query::OnConflict,
};
use url::Url;
use uuid::Uuid;

use super::entity::client;
use crate::{
    auth::{Scope, ScopeSet},
    db,
    secrets::{self, SecretError},
    urls::{is_https_or_loopback, is_loopback_host},
    users::{self, EmailAddress},
};

/// The two callback hosts ChatGPT uses for a GPT's OAuth action.
pub const CHATGPT_CALLBACK_ORIGINS: [&str; 2] = ["https://chat.openai.com", "https://chatgpt.com"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "authorization_code" => Some(Self::AuthorizationCode),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who registered a client; the consent page warns about the last two,
/// which nobody vetted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `errand clients create`.
    Operator,
    /// RFC 7591 dynamic registration (`POST /oauth/register`).
    Dynamic,
    /// A Client ID Metadata Document (`client_metadata`).
    MetadataDocument,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "dynamic" => Self::Dynamic,
            "metadata_document" => Self::MetadataDocument,
            _ => Self::Operator,
        }
    }
}

/// A client as the rest of the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// Public clients have no secret and must use PKCE.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: ScopeSet,
    pub grant_types: Vec<GrantType>,
    pub service_user_id: Option<Uuid>,
    pub created_at: chrono::DateTime<Utc>,
    pub origin: Origin,
}

impl Client {
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

fn to_client(row: client::Model) -> Client {
    Client {
        public: row.secret_hash.is_none(),
        redirect_uris: row.redirect_uris.lines().map(str::to_owned).collect(),
        scopes: ScopeSet::parse_lenient(&row.scopes),
        grant_types: row
            .grant_types
            .split_whitespace()
            .filter_map(GrantType::parse)
            .collect(),
        id: row.id,
        name: row.name,
        service_user_id: row.service_user_id,
        created_at: row.created_at,
        origin: Origin::parse(&row.origin),
    }
}

/// What `errand clients create` asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: ScopeSet,
    pub grant_types: Vec<GrantType>,
    pub public: bool,
}

impl NewClient {
    /// A public app that signs users in with PKCE and gets the scopes a
    /// user can grant (not `webhooks:manage`, which is for integrators).
    pub fn public_app(name: String, redirect_uris: Vec<String>) -> Self {
        Self {
            name,
            redirect_uris,
            scopes: ScopeSet::from_iter(Scope::USER),
            grant_types: vec![GrantType::AuthorizationCode],
            public: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("there is no client `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("database error")]
    Database(#[from] DbErr),
}

/// Both ChatGPT callback URLs of a GPT, from its id (`g-…`, shown in the GPT
/// editor's address bar once the GPT is saved).
pub fn gpt_redirect_uris(gpt_id: &str) -> Result<Vec<String>, ClientError> {
    let valid = gpt_id.strip_prefix("g-").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.chars().all(|c| c.is_ascii_alphanumeric())
    });
    if !valid {
        return Err(ClientError::Invalid(format!(
            "`{gpt_id}` is not a GPT id; it looks like g-AbC123 (from the GPT editor's address bar)"
        )));
    }
    Ok(CHATGPT_CALLBACK_ORIGINS
        .iter()
        .map(|origin| format!("{origin}/aip/{gpt_id}/oauth/callback"))
        .collect())
}

/// A redirect URI must be absolute, https (or http to a loopback host, for
/// development), and have no fragment (RFC 6749 §3.1.2).
pub fn check_redirect_uri(raw: &str) -> Result<String, ClientError> {
    let invalid = |why: &str| ClientError::Invalid(format!("redirect URI `{raw}` {why}"));
    let url = Url::parse(raw).map_err(|_| invalid("is not an absolute URL"))?;
    if !is_https_or_loopback(&url) {
        return Err(invalid(
            "must use https (http only for 127.0.0.1, ::1 or localhost)",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a #fragment"));
    }
    Ok(raw.to_owned())
}

/// Whether a requested redirect URI is a registered one: exactly, except
/// that a loopback `http` URI may name any port (RFC 8252 §7.3: native apps
/// and local MCP clients listen on whatever port is free).
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    registered.scheme() == "http"
        && requested.scheme() == "http"
        && is_loopback_host(&registered)
        && registered.host() == requested.host()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && requested.fragment().is_none()
        && requested.username().is_empty()
        && requested.password().is_none()
}

fn validate(new: &NewClient) -> Result<(), ClientError> {
    let name_len = new.name.trim().chars().count();
    if name_len == 0 || name_len > 100 {
        return Err(ClientError::Invalid(
            "the name must be 1 to 100 characters".into(),
        ));
    }
    // The name is shown on the consent page: it must read as what it is.
    if let Err(fault) = crate::text::judge_line(&new.name) {
        return Err(ClientError::Invalid(format!("the name {fault}")));
    }
    if new.grant_types.is_empty() {
        return Err(ClientError::Invalid(
            "at least one grant type is needed".into(),
        ));
    }
    if new.scopes.is_empty() {
        return Err(ClientError::Invalid("at least one scope is needed".into()));
    }
    if new.grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "the authorization_code grant needs --gpt g-ID or at least one --redirect-uri".into(),
        ));
    }
    if new.public && new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(ClientError::Invalid(
            "a public client has no secret, so it cannot use client_credentials".into(),
        ));
    }
    for uri in &new.redirect_uris {
        check_redirect_uri(uri)?;
    }
    Ok(())
}

/// Registers a client. Returns it with its secret, which is shown once and
/// only its hash kept.
pub async fn create(
    db: &DatabaseConnection,
    new: NewClient,
) -> Result<(Client, Option<String>), ClientError> {
    create_from(db, new, Origin::Operator).await
}

/// Registers a client on its own request (RFC 7591): always public.
pub async fn register_dynamic(
    db: &DatabaseConnection,
    new: NewClient,
) -> Result<Client, ClientError> {
    let (client, _) = create_from(
        db,
        NewClient {
            public: true,
            ..new
        },
        Origin::Dynamic,
    )
    .await?;
    Ok(client)
}

/// Records (or refreshes) the client a metadata document describes, under
/// the document's URL as its id.
pub async fn record_document_client(
    db: &DatabaseConnection,
    client_id: &str,
    new: NewClient,
) -> Result<Client, ClientError> {
    validate(&new)?;
    let row = client::Model {
        id: client_id.to_owned(),
        name: new.name.trim().to_owned(),
        secret_hash: None,
        redirect_uris: new.redirect_uris.join("\n"),
        scopes: new.scopes.to_string(),
        grant_types: GrantType::AuthorizationCode.as_str().to_owned(),
        service_user_id: None,
        created_at: Utc::now(),
        origin: Origin::MetadataDocument.as_str().to_owned(),
    };
    client::Entity::insert(client::ActiveModel::from(row.clone()))
        .on_conflict(
            OnConflict::column(client::Column::Id)
                .update_columns([client::Column::Name, client::Column::RedirectUris])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(to_client(row))
}

async fn create_from(
    db: &DatabaseConnection,
    new: NewClient,
    origin: Origin,
) -> Result<(Client, Option<String>), ClientError> {
    validate(&new)?;
    let id = format!("errand-{}", &secrets::random_token()?[..20]);
    let secret = if new.public {
        None
    } else {
        Some(secrets::random_token()?)
    };
    // Writes after reading: on SQLite the write lock is taken up front, so
    // a CLI command beside a running server waits instead of failing.
    let txn = db::begin_write(db).await?;
    // Client-credentials tokens act as a user of the client's own, which owns
    // whatever tasks the integration creates.
    let service_user_id = if new.grant_types.contains(&GrantType::ClientCredentials) {
        let email = EmailAddress::parse(&format!("{}@clients.errand.invalid", id.to_lowercase()))
            .map_err(|e| ClientError::Invalid(e.to_string()))?;
        Some(
            users::store::create_without_password(&txn, &email)
                .await?
                .id,
        )
    } else {
        None
    };
    let mut uris = new.redirect_uris.clone();
    uris.dedup();
    let row = client::Model {
        id,
        name: new.name.trim().to_owned(),
        secret_hash: secret.as_deref().map(secrets::digest),
        redirect_uris: uris.join("\n"),
        scopes: new.scopes.to_string(),
        grant_types: new
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        service_user_id,
        created_at: Utc::now(),
        origin: origin.as_str().to_owned(),
    };
    client::Entity::insert(client::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok((to_client(row), secret))
}

pub async fn find(db: &DatabaseConnection, id: &str) -> Result<Option<Client>, DbErr> {
    Ok(client::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .map(to_client))
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<Client>, DbErr> {
    Ok(client::Entity::find()
        .order_by_asc(client::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(to_client)
        .collect())
}

/// Replaces a confidential client's secret; the old one stops working at once.
pub async fn rotate_secret(db: &DatabaseConnection, id: &str) -> Result<String, ClientError> {
    let row = client::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
    if row.secret_hash.is_none() {
        return Err(ClientError::Invalid(format!(
            "`{id}` is a public client and has no secret"
        )));
    }
    let secret = secrets::random_token()?;
    let mut active = client::ActiveModel::from(row);
    active.secret_hash = Set(Some(secrets::digest(&secret)));
    active.update(db).await?;
    Ok(secret)
}

/// Deletes a client, its grants (so every token issued to it stops working),
/// and its service user with that user's tasks.
pub async fn delete(db: &DatabaseConnection, id: &str) -> Result<(), ClientError> {
    let txn = db::begin_write(db).await?;
    let row = client::Entity::find_by_id(id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| ClientError::NotFound(id.to_owned()))?;
    client::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    if let Some(user) = row.service_user_id {
        users::store::delete(&txn, user).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Why a client could not be authenticated; all are `invalid_client` on the
/// wire, with a description that does not say which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthFailure {
    UnknownOrWrongSecret,
    SecretRequired,
    PublicClientSentSecret,
}

/// The client, if `secret` authenticates it (confidential), or if it is a
/// public client and no secret was sent.
pub async fn authenticate(
    db: &DatabaseConnection,
    id: &str,
    secret: Option<&str>,
) -> Result<Result<Client, ClientAuthFailure>, DbErr> {
    let Some(row) = client::Entity::find()
        .filter(client::Column::Id.eq(id))
        .one(db)
        .await?
    else {
        return Ok(Err(ClientAuthFailure::UnknownOrWrongSecret));
    };
    let outcome = match (&row.secret_hash, secret) {
        (Some(stored), Some(secret)) if secrets::matches_digest(secret, stored) => {
            Ok(to_client(row))
        }
        (Some(_), Some(_)) => Err(ClientAuthFailure::UnknownOrWrongSecret),
        (Some(_), None) => Err(ClientAuthFailure::SecretRequired),
        (None, None) => Ok(to_client(row)),
        (None, Some(_)) => Err(ClientAuthFailure::PublicClientSentSecret),
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpt_id_gives_both_chatgpt_callbacks() {
        assert_eq!(
            gpt_redirect_uris("g-AbC123").unwrap(),
            [
                "https://chat.openai.com/aip/g-AbC123/oauth/callback",
                "https://chatgpt.com/aip/g-AbC123/oauth/callback"
            ]
        );
        assert!(gpt_redirect_uris("AbC123").is_err());
        assert!(gpt_redirect_uris("g-a/b").is_err());
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_nothing_else_does() {
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53122/cb"
        ));
        assert!(redirect_matches(
            "http://[::1]:8000/cb",
            "http://[::1]:9/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.2/cb"
        ));
        assert!(!redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com:444/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://user@127.0.0.1:5/cb"
        ));
    }

    #[test]
    fn redirect_uris_must_be_https_except_on_loopback() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://app.example.com/cb").is_err());
        assert!(check_redirect_uri("http://10.0.0.1/cb").is_err());
        assert!(check_redirect_uri("https://app.example.com/cb#x").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }
}
