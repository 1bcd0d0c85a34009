//! The operation list: every OpenAPI operation group the service has. The
//! server mounts it and the spec builder documents it; neither imports the
//! other.

use sea_orm::DatabaseConnection;

use crate::{
    config::{PublicUrl, WebhookSettings},
    events::Source,
    health::{Draining, HealthApi},
    reminders::RemindersApi,
    sealing::Sealer,
    tasks::TasksApi,
    users::api::AccountApi,
    webhooks::WebhooksApi,
};

/// Every OpenAPI operation group, in the order the documents list them.
pub type Apis = (TasksApi, RemindersApi, WebhooksApi, AccountApi, HealthApi);

/// The operations bound to their state.
pub fn apis(
    db: &DatabaseConnection,
    public_url: &PublicUrl,
    webhooks: &WebhookSettings,
    sealer: &Sealer,
    draining: &Draining,
) -> Apis {
    (
        TasksApi {
            db: db.clone(),
            public_url: public_url.clone(),
            events: Source::new(public_url),
        },
        RemindersApi {
            db: db.clone(),
            public_url: public_url.clone(),
            events: Source::new(public_url),
        },
        WebhooksApi {
            db: db.clone(),
            settings: webhooks.clone(),
            sealer: sealer.clone(),
        },
        AccountApi { db: db.clone() },
        HealthApi {
            db: db.clone(),
            draining: draining.clone(),
        },
    )
}

/// The operations without a database (a disconnected handle that is never
/// used): the documents are built from the operations' types alone.
pub fn detached(public_url: &PublicUrl) -> Apis {
    let db = DatabaseConnection::default();
    apis(
        &db,
        public_url,
        &WebhookSettings::default(),
        &Sealer::new(db.clone(), None),
        &Draining::default(),
    )
}
