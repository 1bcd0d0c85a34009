//! Rationing what anyone may try a few times: signing in, signing up,
//! registering a client, having a client metadata document fetched. The one
//! home of the `sign_in_throttle` table.
//!
//! An attempt is counted before it is judged, in one atomic statement per
//! key (an upsert that returns the new count), so attempts made at the same
//! moment cannot all pass a check made before any of them was counted: of a
//! burst of a hundred, exactly as many as the limit allows go on. Each key
//! counts in a fixed window that starts with its first attempt. Where only
//! failures should count (signing in), the caller gives its attempt back when
//! it succeeds, which takes back that one attempt and nobody else's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::entity::throttle;
use crate::timestamp::span;

/// How long a key's count lasts from its first attempt.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// At most `max` attempts under `key` per [`WINDOW`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub max: i32,
}

impl Limit {
    pub fn new(key: impl Into<String>, max: i32) -> Self {
        Self {
            key: key.into(),
            max,
        }
    }
}

/// Attempts that were counted and allowed, which [`give_back`] can return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Each key with the start of the window it was counted in.
    counted: Vec<(String, DateTime<Utc>)>,
}

/// What counting an attempt decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Taken),
    /// Over a limit: try again in this many minutes (at least 1).
    Refused {
        minutes: i64,
    },
}

/// Counts one attempt under every key of `limits` (all of them, even when
/// the first is already over) and allows it if every count is within its
/// limit.
pub async fn take(
    db: &DatabaseConnection,
    limits: &[Limit],
    now: DateTime<Utc>,
) -> Result<Verdict, DbErr> {
    let mut counted = Vec::with_capacity(limits.len());
    let mut wait_minutes = None;
    for limit in limits {
        let row = count(db, &limit.key, now).await?;
        if row.failures > limit.max {
            let ends = row.window_started_at + span(WINDOW);
            let minutes = Ord::max(((ends - now).num_seconds() + 59).div_euclid(60), 1);
            wait_minutes = Some(wait_minutes.map_or(minutes, |m: i64| Ord::max(m, minutes)));
        }
        counted.push((limit.key.clone(), row.window_started_at));
    }
    Ok(match wait_minutes {
        Some(minutes) => Verdict::Refused { minutes },
        None => Verdict::Allowed(Taken { counted }),
    })
}

/// Counts one attempt under `key` (for what every attempt counts against,
/// valid or not); `Some(minutes)` to wait if it is over `max`.
pub async fn take_one(
    db: &DatabaseConnection,
    key: &str,
    max: i32,
    now: DateTime<Utc>,
) -> Result<Option<i64>, DbErr> {
    Ok(match take(db, &[Limit::new(key, max)], now).await? {
        Verdict::Allowed(_) => None,
        Verdict::Refused { minutes } => Some(minutes),
    })
}

/// Takes back the attempts of `taken`, in the windows they were counted in
/// (a window that has since restarted is left alone).
pub async fn give_back(db: &DatabaseConnection, taken: &Taken) -> Result<(), DbErr> {
    for (key, window) in &taken.counted {
        throttle::Entity::update_many()
            .col_expr(
                throttle::Column::Failures,
                Expr::col(throttle::Column::Failures).sub(1),
            )
            .filter(throttle::Column::Key.eq(key.as_str()))
            .filter(throttle::Column::WindowStartedAt.eq(*window))
            .filter(throttle::Column::Failures.gt(0))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Adds one to `key`'s count, or starts a new window at `now` when the last
/// one has closed, in one statement; returns the row as it now is.
async fn count(
    db: &DatabaseConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<throttle::Model, DbErr> {
    let closed =
        Expr::col((throttle::Entity, throttle::Column::WindowStartedAt)).lte(now - span(WINDOW));
    throttle::Entity::insert(throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(1),
        window_started_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(throttle::Column::Key)
            .value(
                throttle::Column::Failures,
                Expr::case(closed.clone(), 1)
                    .finally(Expr::col((throttle::Entity, throttle::Column::Failures)).add(1)),
            )
            .value(
                throttle::Column::WindowStartedAt,
                Expr::case(closed, now).finally(Expr::col((
                    throttle::Entity,
                    throttle::Column::WindowStartedAt,
                ))),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await
}

/// Forgets windows that have closed, for the janitor.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(throttle::Entity::delete_many()
        .filter(throttle::Column::WindowStartedAt.lt(now - span(WINDOW)))
        .exec(db)
        .await?
        .rows_affected)
}
