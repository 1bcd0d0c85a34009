//! Revocation without a round trip: what this process knows to be live, and
//! how it hears that something stopped being live elsewhere.
//!
//! Every authenticated request needs two answers: is the token's grant still
//! live, and (for an external identity provider's token) which Errand user is
//! its subject. Both rarely change, so each process remembers them in a
//! [`LiveCache`] and drops entries when told:
//!
//! * on PostgreSQL, triggers (migration `announce_revocations`) send a
//!   `NOTIFY` on [`CHANNEL`] whenever a grant is revoked or deleted, or a user
//!   or identity link is deleted — from any process, any code path, even a
//!   hand-written `DELETE` — and every process `LISTEN`s;
//! * on SQLite (one server process), the process that revokes updates its
//!   cache directly, and `PRAGMA data_version` shows when another process
//!   (the `errand` CLI) wrote to the file, which drops everything.
//!
//! The cache is trusted only while the watcher is known to hear changes:
//! before it has connected, and from the moment its connection fails (or
//! goes quiet past a probe) until it has reconnected, every lookup goes to
//! the database. A fill that raced with an invalidation is discarded: each
//! lookup notes the cache's epoch first and remembers its answer only if no
//! invalidation happened since.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

/// The PostgreSQL notification channel revocations are announced on.
pub const CHANNEL: &str = "errand_revocations";

/// How the listener's connection shows in `pg_stat_activity`.
const WATCHER_NAME: &str = "errand revocation watcher";

/// Entries per map before it is emptied (each is a few dozen bytes; a map
/// this full means many active sessions, which refill on use).
const CAPACITY: usize = 100_000;

/// How long the listener may hear nothing before it proves its connection
/// with a query; a failed or slow probe counts as a lost connection. A
/// connection that fails is noticed at once; one that goes silent without
/// failing, within these two (under a second).
const QUIET_PROBE_AFTER: Duration = Duration::from_millis(400);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// How often SQLite's `data_version` is read for writes by other processes.
const SQLITE_POLL: Duration = Duration::from_millis(200);

/// Something that stopped being live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A grant was revoked or deleted.
    Grant(Uuid),
    /// A user was deleted or an identity link of theirs changed: forget their
    /// grants and identities.
    User(Uuid),
    /// Anything may have changed.
    Everything,
}

impl Invalidation {
    /// The payload the triggers send: `grant:<uuid>` or `user:<uuid>`.
    pub fn parse(payload: &str) -> Option<Self> {
        let (kind, id) = payload.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "grant" => Some(Self::Grant(id)),
            "user" => Some(Self::User(id)),
            _ => None,
        }
    }
}

/// A snapshot of the invalidation count, taken before asking the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

/// What the cache can say about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recall<T> {
    Known(T),
    /// Ask the database, then [`LiveCache::remember_grant`] or
    /// [`LiveCache::remember_identity`] with this epoch.
    Unknown(Epoch),
}

#[derive(Debug, Default)]
struct Memory {
    trusted: bool,
    epoch: u64,
    /// Live grant → the user it belongs to.
    grants: HashMap<Uuid, Uuid>,
    /// The external identity provider's subject → Errand user (a process
    /// trusts one provider, so the subject alone is the key).
    identities: HashMap<String, Uuid>,
}

impl Memory {
    /// Whether an answer read at `asked` may be remembered: the watcher is
    /// heard and nothing was invalidated since.
    fn admits(&self, asked: Epoch) -> bool {
        self.trusted && self.epoch == asked.0
    }

    fn invalidate(&mut self, what: &Invalidation) {
        self.epoch += 1;
        match what {
            Invalidation::Grant(id) => {
                self.grants.remove(id);
            }
            Invalidation::User(user) => {
                self.grants.retain(|_, owner| owner != user);
                self.identities.retain(|_, owner| owner != user);
            }
            Invalidation::Everything => {
                self.grants.clear();
                self.identities.clear();
            }
        }
    }
}

/// Grants known to be live and external subjects known to map to a user.
#[derive(Debug, Default)]
pub struct LiveCache {
    memory: RwLock<Memory>,
}

impl LiveCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.memory.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Memory> {
        self.memory.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `grant` is known to be live for `user`.
    pub fn grant(&self, grant: Uuid, user: Uuid) -> Recall<()> {
        let memory = self.read();
        match memory.grants.get(&grant) {
            Some(owner) if memory.trusted && *owner == user => Recall::Known(()),
            _ => Recall::Unknown(Epoch(memory.epoch)),
        }
    }

    /// Remembers a grant the database said is live, unless something was
    /// invalidated since `asked` (the answer may predate it).
    pub fn remember_grant(&self, grant: Uuid, user: Uuid, asked: Epoch) {
        let mut memory = self.write();
        if memory.admits(asked) {
            insert_bounded(&mut memory.grants, grant, user);
        }
    }

    /// The Errand user the external provider's `subject` is known to map to.
    pub fn identity(&self, subject: &str) -> Recall<Uuid> {
        let memory = self.read();
        match memory.identities.get(subject) {
            Some(user) if memory.trusted => Recall::Known(*user),
            _ => Recall::Unknown(Epoch(memory.epoch)),
        }
    }

    pub fn remember_identity(&self, subject: &str, user: Uuid, asked: Epoch) {
        let mut memory = self.write();
        if memory.admits(asked) {
            insert_bounded(&mut memory.identities, subject.to_owned(), user);
        }
    }

    pub fn invalidate(&self, what: &Invalidation) {
        self.write().invalidate(what);
    }

    /// From now on the cache may answer: the watcher hears every change.
    /// Whatever was remembered before may have missed one, so it goes.
    fn trust(&self) {
        let mut memory = self.write();
        memory.invalidate(&Invalidation::Everything);
        memory.trusted = true;
    }

    /// The watcher may be missing changes: answer nothing from memory.
    fn distrust(&self) {
        let mut memory = self.write();
        if memory.trusted {
            tracing::warn!("revocation watcher lost; checking every token with the database");
        }
        memory.invalidate(&Invalidation::Everything);
        memory.trusted = false;
    }

    pub fn is_trusted(&self) -> bool {
        self.read().trusted
    }
}

/// Inserts, emptying the map first when it is full: the entries refill on use.
fn insert_bounded<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Uuid>, key: K, user: Uuid) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, user);
}

/// Keeps `cache` in step with revocations made by other processes, for as
/// long as the returned future runs (it never finishes on its own).
pub async fn watch(db: DatabaseConnection, cache: Arc<LiveCache>) {
    match db.get_database_backend() {
        DbBackend::Postgres => listen_postgres(&db, &cache).await,
        _ => poll_sqlite(&db, &cache).await,
    }
}

async fn listen_postgres(db: &DatabaseConnection, cache: &LiveCache) {
    use sea_orm::sqlx::{self, postgres::PgListener, postgres::PgPoolOptions};

    // A connection of its own: a listener holds it for as long as it runs,
    // which would take one from the request pool.
    let options = (*db.get_postgres_connection_pool().connect_options())
        .clone()
        .application_name(WATCHER_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with(options);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                // A lost connection must end this loop (and the cache's
                // trust), never be mended quietly inside the listener:
                // notifications sent meanwhile are gone.
                listener.eager_reconnect(false);
                listener
            }
            Err(err) => {
                cache.distrust();
                tracing::warn!(error = %err, "revocation watcher cannot connect; retrying");
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANNEL).await {
            cache.distrust();
            tracing::warn!(error = %err, "revocation watcher cannot LISTEN; retrying");
            tokio::time::sleep(RECONNECT_DELAY).await;
            continue;
        }
        cache.trust();
        tracing::debug!(channel = CHANNEL, "revocation watcher ready");
        loop {
            match tokio::time::timeout(QUIET_PROBE_AFTER, listener.try_recv()).await {
                Ok(Ok(Some(notification))) => match Invalidation::parse(notification.payload()) {
                    Some(what) => cache.invalidate(&what),
                    None => {
                        tracing::warn!(
                            payload = notification.payload(),
                            "unknown revocation notice; forgetting everything"
                        );
                        cache.invalidate(&Invalidation::Everything);
                    }
                },
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_quiet) => {
                    let probe = sqlx::query("SELECT 1").execute(&mut listener);
                    if !matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        cache.distrust();
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// `data_version` counts per connection, and a new connection starts its own
/// count: a temporary table (which only the connection that made it sees)
/// marks the connection the count was read on, so that a replaced
/// connection is noticed and the count not compared across connections.
const SQLITE_POLL_QUERY: &str = "SELECT data_version, \
     (SELECT count(*) FROM temp.sqlite_master WHERE name = 'errand_revocation_watch') \
     FROM pragma_data_version";
const SQLITE_MARK: &str = "CREATE TEMP TABLE IF NOT EXISTS errand_revocation_watch (x INTEGER)";

async fn poll_sqlite(db: &DatabaseConnection, cache: &LiveCache) {
    let poll = Statement::from_string(DbBackend::Sqlite, SQLITE_POLL_QUERY);
    let mut seen: Option<i64> = None;
    loop {
        let read = db.query_one_raw(poll.clone()).await.and_then(|row| {
            row.map(|r| {
                Ok::<_, sea_orm::DbErr>((
                    r.try_get_by_index::<i64>(0)?,
                    r.try_get_by_index::<i64>(1)? > 0,
                ))
            })
            .transpose()
        });
        match (read, seen) {
            (Ok(Some((version, true))), Some(before)) => {
                if version != before {
                    cache.invalidate(&Invalidation::Everything);
                }
                seen = Some(version);
            }
            (Ok(Some((version, marked))), _) => {
                // The first read on this connection: nothing can be
                // compared yet, so start afresh from here.
                let marked = marked || db.execute_unprepared(SQLITE_MARK).await.is_ok();
                if marked {
                    cache.trust();
                    tracing::debug!("revocation watcher ready");
                    seen = Some(version);
                } else {
                    cache.distrust();
                    seen = None;
                }
            }
            (Ok(None) | Err(_), _) => {
                cache.distrust();
                seen = None;
            }
        }
        tokio::time::sleep(SQLITE_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> LiveCache {
        let cache = LiveCache::default();
        cache.trust();
        cache
    }

    #[test]
    fn nothing_is_known_until_the_watcher_is_trusted() {
        let cache = LiveCache::default();
        let (grant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let Recall::Unknown(epoch) = cache.grant(grant, user) else {
            panic!("an untrusted cache answered");
        };
        cache.remember_grant(grant, user, epoch);
        assert!(matches!(cache.grant(grant, user), Recall::Unknown(_)));
    }

    #[test]
    fn a_remembered_grant_is_known_for_its_own_user_only() {
        let cache = trusted();
        let (grant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let Recall::Unknown(epoch) = cache.grant(grant, user) else {
            panic!("known before it was remembered");
        };
        cache.remember_grant(grant, user, epoch);
        assert_eq!(cache.grant(grant, user), Recall::Known(()));
        assert!(matches!(
            cache.grant(grant, Uuid::new_v4()),
            Recall::Unknown(_)
        ));
    }

    #[test]
    fn an_answer_older_than_an_invalidation_is_not_remembered() {
        let cache = trusted();
        let (grant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let Recall::Unknown(epoch) = cache.grant(grant, user) else {
            panic!("known before it was remembered");
        };
        // The database said "live", but a revocation arrived meanwhile.
        cache.invalidate(&Invalidation::Grant(grant));
        cache.remember_grant(grant, user, epoch);
        assert!(matches!(cache.grant(grant, user), Recall::Unknown(_)));
    }

    #[test]
    fn invalidations_forget_what_they_name() {
        let cache = trusted();
        let (a, b, user, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let remember = |grant, owner| {
            let Recall::Unknown(epoch) = cache.grant(grant, owner) else {
                panic!("known too early");
            };
            cache.remember_grant(grant, owner, epoch);
        };
        remember(a, user);
        remember(b, other);
        let Recall::Unknown(epoch) = cache.identity("sub") else {
            panic!("known too early");
        };
        cache.remember_identity("sub", user, epoch);

        cache.invalidate(&Invalidation::Grant(b));
        assert!(matches!(cache.grant(b, other), Recall::Unknown(_)));
        assert_eq!(cache.grant(a, user), Recall::Known(()));

        cache.invalidate(&Invalidation::User(user));
        assert!(matches!(cache.grant(a, user), Recall::Unknown(_)));
        assert!(matches!(cache.identity("sub"), Recall::Unknown(_)));
    }

    /// A lookup that began before the watcher was listening may have read a
    /// grant revoked in a moment nobody heard: it must not be remembered.
    #[test]
    fn an_answer_from_before_the_watcher_listened_is_not_remembered() {
        let cache = LiveCache::default();
        let (grant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let Recall::Unknown(asked) = cache.grant(grant, user) else {
            panic!("an untrusted cache answered");
        };
        cache.trust();
        cache.remember_grant(grant, user, asked);
        assert!(matches!(cache.grant(grant, user), Recall::Unknown(_)));
    }

    #[test]
    fn losing_the_watcher_forgets_everything_until_it_is_back() {
        let cache = trusted();
        let (grant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let Recall::Unknown(epoch) = cache.grant(grant, user) else {
            panic!("known too early");
        };
        cache.remember_grant(grant, user, epoch);
        cache.distrust();
        assert!(matches!(cache.grant(grant, user), Recall::Unknown(_)));
        cache.trust();
        assert!(matches!(cache.grant(grant, user), Recall::Unknown(_)));
    }

    #[test]
    fn trigger_payloads_parse() {
        let id = Uuid::new_v4();
        assert_eq!(
            Invalidation::parse(&format!("grant:{id}")),
            Some(Invalidation::Grant(id))
        );
        assert_eq!(
            Invalidation::parse(&format!("user:{id}")),
            Some(Invalidation::User(id))
        );
        assert_eq!(Invalidation::parse("grant:nope"), None);
        assert_eq!(Invalidation::parse("other"), None);
    }
}
