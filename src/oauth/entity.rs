//! The authorization server's rows; only `oauth` reads or writes them.

macro_rules! plain_entity {
    ($module:ident, table_name = $table:literal, { $($(#[$meta:meta])* pub $field:ident: $ty:ty,)+ }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($(#[$meta])* pub $field: $ty,)+
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

plain_entity!(client, table_name = "oauth_clients", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub scopes: String,
    pub grant_types: String,
    pub service_user_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// `operator`, `dynamic` or `metadata_document` (see `clients::Origin`).
    pub origin: String,
});

plain_entity!(code, table_name = "oauth_codes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: Option<String>,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub grant_id: Option<Uuid>,
    /// The RFC 8707 resource asked for (`Resource::stored`).
    pub resource: Option<String>,
    /// The authorization request named `redirect_uri`, so the token request
    /// must name it again.
    pub redirect_uri_required: bool,
});

plain_entity!(refresh_token, table_name = "oauth_refresh_tokens", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub grant_id: Uuid,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
});

plain_entity!(consent, table_name = "oauth_consents", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub scopes: String,
    pub created_at: DateTimeUtc,
    /// The resources the consent covers, space-separated (`api`, `mcp`).
    pub resources: String,
});

plain_entity!(session, table_name = "web_sessions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    pub user_id: Uuid,
    pub expires_at: DateTimeUtc,
});

plain_entity!(throttle, table_name = "sign_in_throttle", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub failures: i32,
    pub window_started_at: DateTimeUtc,
});

plain_entity!(csrf_key, table_name = "oauth_csrf_keys", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// 32 random bytes, base64.
    pub key: String,
    pub created_at: DateTimeUtc,
});
