//! Announces revocations to every Errand process on the same PostgreSQL:
//! whenever a grant is revoked or deleted, or a user or one of their
//! identity links is deleted, a `NOTIFY errand_revocations` names it
//! (`grant:<id>`, `user:<id>`). Triggers rather than application code, so
//! that no path can forget: cascades from deleting a user or client, and
//! rows changed by hand, are announced too. NOTIFY is delivered at commit,
//! so a rolled-back revocation is never announced.
//!
//! SQLite has no NOTIFY; a single server process watches the file instead.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE FUNCTION errand_announce_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_revocations', 'grant:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION errand_announce_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_revocations', 'user:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION errand_announce_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('errand_revocations', 'user:' || OLD.user_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER oauth_grants_revoked AFTER UPDATE OF revoked_at ON oauth_grants
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION errand_announce_grant();
CREATE TRIGGER oauth_grants_deleted AFTER DELETE ON oauth_grants
    FOR EACH ROW EXECUTE FUNCTION errand_announce_grant();
CREATE TRIGGER users_deleted AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION errand_announce_user();
CREATE TRIGGER user_identities_changed AFTER UPDATE OR DELETE ON user_identities
    FOR EACH ROW EXECUTE FUNCTION errand_announce_identity();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS user_identities_changed ON user_identities;
DROP TRIGGER IF EXISTS users_deleted ON users;
DROP TRIGGER IF EXISTS oauth_grants_deleted ON oauth_grants;
DROP TRIGGER IF EXISTS oauth_grants_revoked ON oauth_grants;
DROP FUNCTION IF EXISTS errand_announce_identity();
DROP FUNCTION IF EXISTS errand_announce_user();
DROP FUNCTION IF EXISTS errand_announce_grant();
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
