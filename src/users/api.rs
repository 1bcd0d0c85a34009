use poem_openapi::{Object, OpenApi};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::store;
use crate::{
    auth::{AnyScope, Authorized},
    problem::Problem,
    timestamp::{Timestamp, UtcTimestamp},
    web::{ApiTag, Json},
};

pub struct AccountApi {
    pub db: DatabaseConnection,
}

/// The signed-in user and what the access token allows.
#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "Me")]
pub struct MeView {
    /// The user's id.
    pub id: Uuid,
    pub email: String,
    /// The scopes the access token grants, e.g. ["tasks:read", "tasks:write"].
    pub scopes: Vec<String>,
    /// The OAuth client the token was issued to, or null for a developer token.
    #[oai(nullable)]
    pub client_id: Option<String>,
    /// When the access token expires.
    pub token_expires_at: UtcTimestamp,
}

#[OpenApi(prefix_path = "/v1")]
impl AccountApi {
    /// Who am I
    ///
    /// Returns the signed-in user's email and the scopes this connection grants. Use it to check the account is connected.
    #[oai(
        path = "/me",
        method = "get",
        operation_id = "getMe",
        tag = "ApiTag::Account"
    )]
    async fn get_me(&self, auth: Authorized<AnyScope>) -> Result<Json<MeView>, Problem> {
        let user = store::find_by_id(&self.db, auth.user_id)
            .await
            .map_err(Problem::internal)?
            .ok_or_else(|| {
                Problem::unauthorized(
                    "The account this access token belongs to no longer exists. Sign in again.",
                    true,
                )
            })?;
        let expires = chrono::DateTime::from_timestamp(auth.expires_at, 0).unwrap_or_default();
        Ok(Json(MeView {
            id: user.id,
            email: user.email,
            scopes: auth.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            client_id: auth.client_id.clone(),
            token_expires_at: Timestamp::from_utc(expires).into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;

    #[test]
    fn serde_writes_what_the_schema_describes() {
        for client_id in [None, Some("client".to_owned())] {
            let me = MeView {
                id: Uuid::new_v4(),
                email: "a@example.com".into(),
                scopes: vec!["tasks:read".into()],
                client_id,
                token_expires_at: Timestamp::now().into(),
            };
            assert_eq!(serde_json::to_value(&me).unwrap(), me.to_json().unwrap());
        }
    }
}
