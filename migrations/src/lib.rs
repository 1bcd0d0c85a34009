//! Errand's schema history. One file per schema change; a file is never edited
//! once it has landed, because deployed databases have already run it. Changes
//! that must stay safe while the previous release is serving go in two steps
//! (expand, then contract) across releases.

pub use sea_orm_migration::prelude::*;

// The modules and `all()`, one per file `m<yyyymmdd>_<nnnnnn>_<what>.rs`
// in this directory (see build.rs).
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// How many shards the outbox is split into (see the outbox migration).
pub use m20261127_000007_create_outbox::SHARDS as OUTBOX_SHARDS;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        all()
    }
}
