//! Connecting to PostgreSQL or SQLite by URL, migrations, and how write
//! transactions are opened on each.

use std::time::Duration;

use errand_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::DatabaseSettings;

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("the database URL must start with postgres://, postgresql:// or sqlite:")]
    UnsupportedUrl,
    #[error("could not connect to the database")]
    Connect(#[source] DbErr),
    #[error("could not apply database migrations")]
    Migrate(#[source] DbErr),
    #[error(
        "{0} database migration(s) are pending and ERRAND_MIGRATE_ON_START is false: run `errand migrate` (the migration Job) first"
    )]
    Pending(usize),
}

/// Opens a pool. SQLite files are created if missing and run in WAL mode with a
/// busy timeout, so the CLI and a running server can share one file.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbSetupError> {
    let url = normalise_url(&settings.url)?;
    let mut options = ConnectOptions::new(url.clone());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One connection: SQLite serialises writers anyway, and a single
        // connection turns lock contention into queueing instead of
        // "database is locked" errors.
        options.max_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    } else {
        options
            .max_connections(settings.max_connections)
            .min_connections(1)
            // Pinging on every checkout costs a round trip per query; only a
            // connection idle long enough for a proxy or firewall to have
            // dropped it is worth checking.
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
        if let Some(timeout) = settings.statement_timeout {
            // A runaway query is cancelled by the server instead of holding
            // a connection (and the request) past the request timeout.
            let millis = timeout.as_millis().to_string();
            options.map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", millis.as_str())])
            });
        }
    }
    Database::connect(options)
        .await
        .map_err(DbSetupError::Connect)
}

fn normalise_url(url: &str) -> Result<String, DbSetupError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_owned());
    }
    if url.starts_with("sqlite:") {
        // Creating the file when missing is what a newcomer expects.
        if url.contains("mode=") || url.contains(":memory:") {
            return Ok(url.to_owned());
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        return Ok(format!("{url}{separator}mode=rwc"));
    }
    Err(DbSetupError::UnsupportedUrl)
}

/// Any number that no other lock of ours uses: "errand" in ASCII.
const MIGRATION_LOCK: i64 = 0x6572_7261_6e64;

/// Applies every pending migration. On PostgreSQL under an advisory lock
/// held by a transaction of its own for the whole run, so that replicas
/// starting together, or a migration job beside them, migrate one at a
/// time (the others then find nothing pending).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbSetupError> {
    // The lock's transaction holds a connection: a pool of one would leave
    // none for the migrations.
    if db.get_database_backend() != DbBackend::Postgres || pool_state(db).max < 2 {
        return Migrator::up(db, None).await.map_err(DbSetupError::Migrate);
    }
    let lock = db.begin().await.map_err(DbSetupError::Migrate)?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await
        .map_err(DbSetupError::Migrate)?;
    let migrated = Migrator::up(db, None).await.map_err(DbSetupError::Migrate);
    lock.commit().await.map_err(DbSetupError::Migrate)?;
    migrated
}

/// Connects and migrates: what the commands and the tests do at start.
pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbSetupError> {
    let db = connect(settings).await?;
    migrate(&db).await?;
    Ok(db)
}

/// What `serve` does at start: migrates, or, where migrations are applied
/// by a job of their own (`migrate_on_start` false), refuses a database
/// whose schema is behind this build rather than serving on it.
pub async fn connect_for_serving(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbSetupError> {
    if settings.migrate_on_start {
        return connect_and_migrate(settings).await;
    }
    let db = connect(settings).await?;
    let pending = Migrator::get_pending_migrations(&db)
        .await
        .map_err(DbSetupError::Migrate)?;
    if !pending.is_empty() {
        return Err(DbSetupError::Pending(pending.len()));
    }
    Ok(db)
}

/// Begins a transaction that will write. On SQLite it takes the write lock up
/// front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
/// can fail with SQLITE_BUSY when another process wrote in between, instead of
/// waiting for the lock. Inside [`shared`] work it joins the shared
/// transaction (as a savepoint), so it commits or rolls back with it.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if let Some(shared) = shared_transaction() {
        return shared.begin().await;
    }
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}

/// Makes concurrent transactions that name the same `key` run one after
/// another from here until they end, for rules a count alone cannot keep
/// (at most N of something per user): on PostgreSQL an advisory lock on the
/// key's hash, held until the transaction ends; on SQLite nothing, since the
/// transaction from [`begin_write`] already holds the only write lock.
pub async fn serialize_on(txn: &impl ConnectionTrait, key: &str) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [key.into()],
    ))
    .await
    .map(|_| ())
}

type Hook = Box<dyn FnOnce() + Send>;

/// The transaction that work run by [`shared`] joins, and what is to happen
/// once it commits.
struct Shared {
    txn: std::sync::Arc<DatabaseTransaction>,
    after_commit: std::sync::Mutex<Vec<Hook>>,
}

tokio::task_local! {
    static SHARED: Shared;
}

fn shared_transaction() -> Option<std::sync::Arc<DatabaseTransaction>> {
    SHARED.try_with(|shared| shared.txn.clone()).ok()
}

/// Runs `work` so that every write it begins with [`begin_write`] (and every
/// statement it runs through [`conn`]) joins `txn`: the caller then commits
/// or rolls back all of it at once, with whatever it wrote itself. For an
/// action and its `Idempotency-Key` record, which must commit together.
/// Returns the work's output with the transaction, to be finished with
/// [`Finish::commit`] or dropped (which rolls back).
pub async fn shared<T>(txn: DatabaseTransaction, work: impl Future<Output = T>) -> (T, Finish) {
    let shared = Shared {
        txn: std::sync::Arc::new(txn),
        after_commit: std::sync::Mutex::new(Vec::new()),
    };
    let (output, shared) = SHARED
        .scope(shared, async move {
            let output = work.await;
            let shared = SHARED.try_with(|shared| {
                (
                    shared.txn.clone(),
                    std::mem::take(
                        &mut *shared
                            .after_commit
                            .lock()
                            .unwrap_or_else(|e| e.into_inner()),
                    ),
                )
            });
            (output, shared)
        })
        .await;
    let (txn, hooks) = match shared {
        Ok((txn, hooks)) => (std::sync::Arc::into_inner(txn), hooks),
        Err(_) => (None, Vec::new()),
    };
    (output, Finish { txn, hooks })
}

/// A shared transaction after its work, to commit or drop.
pub struct Finish {
    /// `None` only if the work kept a handle to it (a bug): nothing is
    /// committed then.
    txn: Option<DatabaseTransaction>,
    hooks: Vec<Hook>,
}

impl Finish {
    /// The transaction, for what the caller writes beside the work.
    pub fn transaction(&self) -> Option<&DatabaseTransaction> {
        self.txn.as_ref()
    }

    /// Commits, then runs what the work asked to run after its commit.
    pub async fn commit(self) -> Result<(), DbErr> {
        let txn = self
            .txn
            .ok_or_else(|| DbErr::Custom("the shared transaction is still in use".to_owned()))?;
        txn.commit().await?;
        for hook in self.hooks {
            hook();
        }
        Ok(())
    }
}

/// Runs `hook` once the current work's changes are committed: at once when
/// the caller has committed its own transaction (call it after that), or,
/// inside [`shared`] work, when the shared transaction commits (and never if
/// it rolls back). For waking the jobs that pick up what was written.
pub fn after_commit(hook: impl FnOnce() + Send + 'static) {
    let mut hook = Some(Box::new(hook) as Hook);
    let _ = SHARED.try_with(|shared| {
        if let (Ok(mut hooks), Some(hook)) = (shared.after_commit.lock(), hook.take()) {
            hooks.push(hook);
        }
    });
    if let Some(hook) = hook {
        hook();
    }
}

/// Where a statement outside [`begin_write`] runs: in the shared
/// transaction inside [`shared`] work, else on the pool.
pub fn conn(db: &DatabaseConnection) -> Conn<'_> {
    match shared_transaction() {
        Some(txn) => Conn::Shared(txn),
        None => Conn::Pool(db),
    }
}

/// A connection for one statement: the pool, or the shared transaction.
pub enum Conn<'a> {
    Pool(&'a DatabaseConnection),
    Shared(std::sync::Arc<DatabaseTransaction>),
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pool(db) => db.get_database_backend(),
            Self::Shared(txn) => txn.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Self::Pool(db) => db.execute_raw(stmt).await,
            Self::Shared(txn) => txn.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Self::Pool(db) => db.execute_unprepared(sql).await,
            Self::Shared(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_one_raw(stmt).await,
            Self::Shared(txn) => txn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_all_raw(stmt).await,
            Self::Shared(txn) => txn.query_all_raw(stmt).await,
        }
    }
}

/// Rows claimed for work that several processes share (a batch of due
/// reminders, of webhook deliveries): on PostgreSQL `FOR UPDATE SKIP
/// LOCKED`, so each process takes rows no other holds; on SQLite nothing,
/// since the transaction from [`begin_write`] already holds the only write
/// lock. Use inside that transaction.
pub fn claim<E: sea_orm::EntityTrait>(
    select: sea_orm::Select<E>,
    backend: DbBackend,
) -> sea_orm::Select<E> {
    use sea_orm::{
        QuerySelect,
        sea_query::{LockBehavior, LockType},
    };
    match backend {
        DbBackend::Postgres => {
            select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        }
        _ => select,
    }
}

/// Wake-ups from a PostgreSQL `NOTIFY` channel, for background work that
/// also polls: a notification only says "look now", so a lost connection
/// just wakes the caller (something may have been missed) and reconnects on
/// the next call. On SQLite, which has no NOTIFY, it never wakes.
pub struct Wakeups {
    pool: Option<sea_orm::sqlx::PgPool>,
    channel: &'static str,
    listener: Option<sea_orm::sqlx::postgres::PgListener>,
}

/// How long to wait before reconnecting a listener that failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

impl Wakeups {
    /// `application_name` labels the listener's own connection (it holds
    /// one for as long as it runs, which would take one from the pool).
    pub fn new(db: &DatabaseConnection, application_name: &str, channel: &'static str) -> Self {
        let pool = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            let options = (*db.get_postgres_connection_pool().connect_options())
                .clone()
                .application_name(application_name);
            sea_orm::sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .connect_lazy_with(options)
        });
        Self {
            pool,
            channel,
            listener: None,
        }
    }

    /// Resolves at the next notification (cancel-safe).
    pub async fn next(&mut self) {
        let Some(pool) = &self.pool else {
            return std::future::pending().await;
        };
        let listener = match &mut self.listener {
            Some(listener) => listener,
            None => {
                let listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
                    Ok(mut listener) => match listener.listen(self.channel).await {
                        Ok(()) => listener,
                        Err(err) => {
                            tracing::debug!(error = %err, channel = self.channel, "cannot LISTEN");
                            tokio::time::sleep(LISTEN_RETRY).await;
                            return;
                        }
                    },
                    Err(err) => {
                        tracing::debug!(error = %err, channel = self.channel, "cannot connect to LISTEN");
                        tokio::time::sleep(LISTEN_RETRY).await;
                        return;
                    }
                };
                self.listener.insert(listener)
            }
        };
        if listener.recv().await.is_err() {
            self.listener = None;
        }
    }
}

/// A pool's connections at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolState {
    pub open: u32,
    pub idle: u32,
    /// The most it may open.
    pub max: u32,
}

/// The pool's connections now, for metrics and the migration lock.
pub fn pool_state(db: &DatabaseConnection) -> PoolState {
    fn state<D: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<D>) -> PoolState {
        PoolState {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
    match db.get_database_backend() {
        DbBackend::Postgres => state(db.get_postgres_connection_pool()),
        DbBackend::Sqlite => state(db.get_sqlite_connection_pool()),
        _ => PoolState::default(),
    }
}

/// A hand-written statement for either database: `sql` numbers its
/// parameters PostgreSQL's way (`$1`), which SQLite reads as `?1`. Only for
/// SQL that is the same on both but for that (and with no `$` elsewhere).
pub fn statement(
    db: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = sea_orm::Value>,
) -> sea_orm::Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// The driver's error under a SeaORM one, for the checks below that read
/// its kind or the database's error code.
fn sqlx_cause(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// Whether a failure is the database being busy rather than broken: a lock
/// or the pool not handed out in time, a statement cancelled for taking too
/// long, SQLite's busy or locked answers. What waits too long behind another
/// transaction gets, so the caller may say "retry shortly".
pub fn is_contention(err: &DbErr) -> bool {
    use sea_orm::{ConnAcquireErr, sqlx};
    if matches!(err, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)) {
        return true;
    }
    sqlx_cause(err).is_some_and(|err| match err {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // PostgreSQL: query_canceled (statement_timeout), lock_not_available;
            // SQLite: SQLITE_BUSY, SQLITE_LOCKED.
            Some("57014" | "55P03" | "5" | "6")
        ),
        _ => false,
    })
}

/// Whether a failure means the database cannot answer right now, so the
/// caller should retry shortly rather than report a fault: contention (above),
/// or the database unreachable — no connection to be had, the connection
/// lost, the server shutting down or refusing new connections.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx;
    if is_contention(err) || matches!(err, DbErr::ConnectionAcquire(_)) {
        return true;
    }
    sqlx_cause(err).is_some_and(|err| match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08…), too_many_connections,
            // admin_shutdown, crash_shutdown, cannot_connect_now;
            // SQLite: SQLITE_CANTOPEN, SQLITE_IOERR.
            code.starts_with("08")
                || matches!(&*code, "53300" | "57P01" | "57P02" | "57P03" | "14" | "10")
        }),
        _ => false,
    })
}

/// `SELECT 1`, for readiness.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file_unless_a_mode_is_given() {
        assert_eq!(
            normalise_url("sqlite://errand.db").unwrap(),
            "sqlite://errand.db?mode=rwc"
        );
        assert_eq!(
            normalise_url("sqlite://errand.db?mode=ro").unwrap(),
            "sqlite://errand.db?mode=ro"
        );
    }

    #[test]
    fn other_schemes_are_rejected() {
        assert!(matches!(
            normalise_url("mysql://localhost/errand"),
            Err(DbSetupError::UnsupportedUrl)
        ));
    }
}
