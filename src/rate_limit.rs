//! Rate limits for authenticated callers: a token bucket per user (all
//! their clients together) and per OAuth client (all its users together),
//! kept in the database so that every replica spends from the same buckets.
//!
//! Each bucket is stored in GCRA form (the generic cell rate algorithm, a
//! token bucket written as one timestamp): `tat` is when the bucket would be
//! full again. A request spends one token if `max(tat, now) + interval -
//! now <= period`, moving `tat` on by one interval. One upsert per request
//! covers both buckets, refilling and spending atomically on PostgreSQL and
//! SQLite alike; no clock but the replicas' own is needed.
//!
//! Answers carry the limit in the IETF `RateLimit-Policy` and `RateLimit`
//! fields (draft-ietf-httpapi-ratelimit-headers) and a 429 carries
//! `Retry-After`, which ChatGPT honours by backing off.

use std::time::Duration;

use poem::http::{HeaderName, HeaderValue};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

use crate::{
    auth::Principal,
    config::{Rate, RateLimitSettings},
};

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Which bucket a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    User,
    Client,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
        }
    }
}

/// One bucket after a request was counted against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub bucket: Bucket,
    pub rate: Rate,
    pub allowed: bool,
    /// Requests the bucket still holds.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds until one more request would be allowed (when refused).
    pub retry_after: u64,
}

/// What the limits say about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub standings: Vec<Standing>,
}

impl Verdict {
    /// The bucket that refused the request, if one did.
    pub fn refused_by(&self) -> Option<&Standing> {
        self.standings
            .iter()
            .filter(|standing| !standing.allowed)
            .max_by_key(|standing| standing.retry_after)
    }

    /// Seconds to wait before retrying (at least 1).
    pub fn retry_after(&self) -> u64 {
        self.refused_by().map_or(1, |s| s.retry_after.max(1))
    }

    /// `RateLimit-Policy` and `RateLimit`: every policy, and the standing
    /// of the one closest to running out.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let policy = self
            .standings
            .iter()
            .map(|s| {
                format!(
                    "\"{}\";q={};w={}",
                    s.bucket.name(),
                    s.rate.requests,
                    s.rate.per.as_secs()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let tightest = self.refused_by().copied().or_else(|| {
            self.standings
                .iter()
                .min_by_key(|standing| standing.remaining)
                .copied()
        });
        let mut headers = Vec::new();
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.push((RATELIMIT_POLICY, value));
        }
        if let Some(s) = tightest {
            let value = format!("\"{}\";r={};t={}", s.bucket.name(), s.remaining, s.reset);
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.push((RATELIMIT, value));
            }
        }
        headers
    }
}

/// The buckets a principal spends from, with their rates.
fn buckets(settings: &RateLimitSettings, principal: &Principal) -> Vec<(Bucket, String, Rate)> {
    let mut buckets = Vec::new();
    // Always user then client: concurrent upserts lock rows in the same
    // order, so they cannot deadlock.
    if let Some(rate) = settings.per_user {
        buckets.push((Bucket::User, format!("user:{}", principal.user_id), rate));
    }
    if let (Some(rate), Some(client)) = (settings.per_client, &principal.client_id) {
        buckets.push((Bucket::Client, format!("client:{client}"), rate));
    }
    buckets
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Counts one request by `principal` at `now_ms` (epoch milliseconds);
/// `None` when no limit applies to it.
pub async fn check(
    db: &DatabaseConnection,
    settings: &RateLimitSettings,
    principal: &Principal,
    now_ms: i64,
) -> Result<Option<Verdict>, DbErr> {
    let buckets = buckets(settings, principal);
    if buckets.is_empty() {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let greatest = match backend {
        DbBackend::Postgres => "GREATEST",
        _ => "max",
    };
    let mut values = Vec::new();
    let mut rows = Vec::new();
    for (index, (_, key, rate)) in buckets.iter().enumerate() {
        let interval = (millis(rate.per) / i64::from(rate.requests)).max(1);
        let base = index * 5;
        rows.push(format!(
            "(${}, ${}, TRUE, ${}, ${}, ${})",
            base + 1,
            base + 2,
            base + 3,
            base + 4,
            base + 5
        ));
        values.extend([
            Value::from(key.clone()),
            Value::from(now_ms + interval),
            Value::from(now_ms),
            Value::from(interval),
            Value::from(millis(rate.per)),
        ]);
    }
    let fits = format!(
        "{greatest}(rate_limits.tat_ms, excluded.seen_ms) + excluded.interval_ms - excluded.seen_ms <= excluded.period_ms"
    );
    let sql = format!(
        "INSERT INTO rate_limits (key, tat_ms, allowed, seen_ms, interval_ms, period_ms) VALUES {rows} \
         ON CONFLICT (key) DO UPDATE SET \
           allowed = {fits}, \
           tat_ms = CASE WHEN {fits} \
             THEN {greatest}(rate_limits.tat_ms, excluded.seen_ms) + excluded.interval_ms \
             ELSE rate_limits.tat_ms END, \
           seen_ms = excluded.seen_ms, \
           interval_ms = excluded.interval_ms, \
           period_ms = excluded.period_ms \
         RETURNING key, tat_ms, allowed, interval_ms",
        rows = rows.join(", "),
    );
    let sql = match backend {
        DbBackend::Postgres => sql,
        // SQLite numbers its parameters `?NNN`.
        _ => sql.replace('$', "?"),
    };
    let returned = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut standings = Vec::with_capacity(buckets.len());
    for (bucket, key, rate) in buckets {
        let Some(row) = returned
            .iter()
            .find(|row| row.try_get::<String>("", "key").ok().as_deref() == Some(&key))
        else {
            continue;
        };
        let tat: i64 = row.try_get("", "tat_ms")?;
        let allowed: bool = row.try_get("", "allowed")?;
        let interval: i64 = row.try_get("", "interval_ms")?;
        standings.push(standing(bucket, rate, allowed, tat, interval, now_ms));
    }
    Ok(Some(Verdict { standings }))
}

/// Reads a bucket's state: what is left is the part of the period `tat`
/// has not yet reached into, in whole intervals.
fn standing(
    bucket: Bucket,
    rate: Rate,
    allowed: bool,
    tat: i64,
    interval: i64,
    now: i64,
) -> Standing {
    let period = millis(rate.per);
    let ahead = (tat - now).max(0);
    let remaining = u64::try_from((period - ahead).max(0) / interval.max(1)).unwrap_or(0);
    let ceil_secs = |ms: i64| u64::try_from((ms.max(0) + 999) / 1000).unwrap_or(0);
    Standing {
        bucket,
        rate,
        allowed,
        remaining: remaining.min(u64::from(rate.requests)),
        reset: ceil_secs(ahead),
        retry_after: if allowed {
            0
        } else {
            ceil_secs(tat + interval - period - now).max(1)
        },
    }
}

/// Forgets buckets that are full again (nothing to remember), for the
/// janitor.
pub async fn sweep(db: &DatabaseConnection, now_ms: i64) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "DELETE FROM rate_limits WHERE tat_ms < $1",
        _ => "DELETE FROM rate_limits WHERE tat_ms < ?",
    };
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(now_ms)],
        ))
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PER_MINUTE: Rate = Rate {
        requests: 60,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_fresh_bucket_has_all_but_the_request_just_made() {
        // First request: tat = now + 1 s.
        let s = standing(Bucket::User, PER_MINUTE, true, 1_000, 1_000, 0);
        assert_eq!((s.remaining, s.reset, s.retry_after), (59, 1, 0));
    }

    #[test]
    fn an_empty_bucket_says_when_the_next_request_fits() {
        // 60 requests at once: tat = now + 60 s; the 61st is refused and one
        // more fits after one interval.
        let s = standing(Bucket::Client, PER_MINUTE, false, 60_000, 1_000, 0);
        assert_eq!((s.remaining, s.reset, s.retry_after), (0, 60, 1));
        let verdict = Verdict {
            standings: vec![standing(Bucket::User, PER_MINUTE, true, 5_000, 1_000, 0), s],
        };
        assert_eq!(verdict.retry_after(), 1);
        let headers = verdict.headers();
        assert_eq!(headers[0].1, "\"user\";q=60;w=60, \"client\";q=60;w=60");
        assert_eq!(headers[1].1, "\"client\";r=0;t=60");
    }
}
