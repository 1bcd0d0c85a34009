//! The webhook tables: subscriptions and deliveries.

pub mod webhook {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub url: String,
        pub event_types: String,
        pub description: Option<String>,
        pub secret_sealed: String,
        pub created_at: DateTimeUtc,
        pub failing_since: Option<DateTimeUtc>,
        pub last_failure_at: Option<DateTimeUtc>,
        pub disabled_at: Option<DateTimeUtc>,
        pub disabled_reason: Option<String>,
        /// `webhook` (an integrator's) or `mcp` (an MCP Events subscription).
        pub kind: String,
        /// An MCP subscription's identity (see `webhooks::mcp`).
        pub subscription_key: Option<String>,
        /// An MCP subscription's arguments, canonical JSON.
        pub event_filter: Option<String>,
        pub expires_at: Option<DateTimeUtc>,
        pub verified_at: Option<DateTimeUtc>,
        pub grant_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub webhook_id: Uuid,
        pub user_id: Uuid,
        pub event_id: Uuid,
        pub event_type: String,
        pub payload: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub last_attempt_at: Option<DateTimeUtc>,
        pub leased_until: Option<DateTimeUtc>,
        pub last_status_code: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
