//! Rate limits for authenticated callers: a token bucket per user (all
//! their clients together) and per OAuth client (all its users together),
//! kept in the database so that every replica spends from the same buckets.
//!
//! Each bucket is stored in GCRA form (the generic cell rate algorithm, a
//! token bucket written as one timestamp): `tat` is when the bucket would be
//! full again. Spending `n` tokens fits if `max(tat, now) + n * interval -
//! now <= period`, and moves `tat` on by `n` intervals. One upsert covers
//! both buckets, refilling and spending atomically on PostgreSQL and SQLite
//! alike; no clock but the replicas' own is needed.
//!
//! A process spends a hundredth of a bucket at a time and hands those
//! tokens out from memory ([`Limiter`]), so a busy caller costs one upsert
//! per hundred requests, not one per request (a quarter of createTask's
//! throughput otherwise), and the limit still holds across replicas: the
//! database never gives out more than the bucket holds.
//!
//! Answers carry the limit in the IETF `RateLimit-Policy` and `RateLimit`
//! fields (draft-ietf-httpapi-ratelimit-headers) and a 429 carries
//! `Retry-After`, which ChatGPT honours by backing off.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use poem::http::{HeaderName, HeaderValue};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};

use crate::{
    auth::Principal,
    config::{Rate, RateLimitSettings},
    db,
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

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// How many tokens one database round spends ahead for this process: a
/// hundredth of the bucket (at least one), so a busy caller costs one
/// upsert per hundred requests while the limit still holds across replicas
/// (no process can spend more than the database gave it; what a lease
/// leaves unspent when it lapses is lost, at most 1% of a bucket each).
fn lease_size(rate: Rate) -> u32 {
    (rate.requests / 100).clamp(1, 10_000)
}

/// How long a lease's tokens may be spent: past that, they count against a
/// window long gone.
fn lease_lifetime(rate: Rate) -> Duration {
    (rate.per / 100).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Tokens this process took from a bucket ahead of use.
#[derive(Debug, Clone, Copy)]
struct Lease {
    left: u32,
    until: std::time::Instant,
    /// The bucket's standing when the lease was taken (its `remaining`
    /// excludes the lease).
    standing: Standing,
}

/// One process's leases, by bucket key, and the database they come from.
#[derive(Debug)]
pub struct Limiter {
    db: DatabaseConnection,
    settings: RateLimitSettings,
    leases: Mutex<HashMap<String, Lease>>,
}

impl Limiter {
    pub fn new(db: DatabaseConnection, settings: RateLimitSettings) -> Self {
        Self {
            db,
            settings,
            leases: Mutex::default(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.settings.per_user.is_some() || self.settings.per_client.is_some()
    }

    /// Counts one request by `principal`; `None` when no limit applies.
    pub async fn check(&self, principal: &Principal) -> Result<Option<Verdict>, DbErr> {
        let buckets = buckets(&self.settings, principal);
        if buckets.is_empty() {
            return Ok(None);
        }
        let mut standings = Vec::with_capacity(buckets.len());
        let mut wanted = Vec::new();
        {
            let now = std::time::Instant::now();
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            for (bucket, key, rate) in buckets {
                match leases.get_mut(&key) {
                    Some(lease) if lease.left > 0 && lease.until > now => {
                        lease.left -= 1;
                        standings.push(Standing {
                            remaining: lease.standing.remaining + u64::from(lease.left),
                            ..lease.standing
                        });
                    }
                    _ => wanted.push((bucket, key, rate, lease_size(rate))),
                }
            }
        }
        if wanted.is_empty() {
            return Ok(Some(Verdict { standings }));
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut taken = spend(&self.db, &wanted, now_us).await?;
        // A lease the bucket could not give whole: ask for just this request.
        let short: Vec<_> = wanted
            .iter()
            .zip(&taken)
            .filter(|((.., cost), standing)| *cost > 1 && !standing.allowed)
            .map(|((bucket, key, rate, _), _)| (*bucket, key.clone(), *rate, 1))
            .collect();
        if !short.is_empty() {
            for (retry, standing) in short.iter().zip(spend(&self.db, &short, now_us).await?) {
                if let Some(index) = wanted.iter().position(|w| w.1 == retry.1) {
                    wanted[index].3 = 1;
                    taken[index] = standing;
                }
            }
        }
        let until = std::time::Instant::now();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        for ((_, key, rate, cost), standing) in wanted.into_iter().zip(taken) {
            if standing.allowed && cost > 1 {
                leases.insert(
                    key,
                    Lease {
                        left: cost - 1,
                        until: until + lease_lifetime(rate),
                        standing,
                    },
                );
            }
            standings.push(Standing {
                remaining: standing.remaining + u64::from(cost.saturating_sub(1)),
                ..standing
            });
        }
        // Lapsed leases of callers gone quiet are dropped as others come.
        if leases.len() > 10_000 {
            let now = std::time::Instant::now();
            leases.retain(|_, lease| lease.until > now);
        }
        Ok(Some(Verdict { standings }))
    }
}

/// Spends `cost` tokens from each bucket in one upsert (refilling them as
/// time has passed); how each stands afterwards, in the order given.
async fn spend(
    db: &DatabaseConnection,
    buckets: &[(Bucket, String, Rate, u32)],
    now_us: i64,
) -> Result<Vec<Standing>, DbErr> {
    let backend = db.get_database_backend();
    let greatest = match backend {
        DbBackend::Postgres => "GREATEST",
        _ => "max",
    };
    let mut values = Vec::new();
    let mut rows = Vec::new();
    for (index, (_, key, rate, cost)) in buckets.iter().enumerate() {
        // The row's interval is what this request spends: one interval per
        // token.
        let spent = interval_of(*rate) * i64::from(*cost);
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
            Value::from(now_us + spent),
            Value::from(now_us),
            Value::from(spent),
            Value::from(micros(rate.per)),
        ]);
    }
    let fits = format!(
        "{greatest}(rate_limits.tat_us, excluded.seen_us) + excluded.interval_us - excluded.seen_us <= excluded.period_us"
    );
    let sql = format!(
        "INSERT INTO rate_limits (key, tat_us, allowed, seen_us, interval_us, period_us) VALUES {rows} \
         ON CONFLICT (key) DO UPDATE SET \
           allowed = {fits}, \
           tat_us = CASE WHEN {fits} \
             THEN {greatest}(rate_limits.tat_us, excluded.seen_us) + excluded.interval_us \
             ELSE rate_limits.tat_us END, \
           seen_us = excluded.seen_us, \
           interval_us = excluded.interval_us, \
           period_us = excluded.period_us \
         RETURNING key, tat_us, allowed",
        rows = rows.join(", "),
    );
    let returned = db.query_all_raw(db::statement(db, &sql, values)).await?;
    let mut standings = Vec::with_capacity(buckets.len());
    for (bucket, key, rate, _) in buckets {
        let row = returned
            .iter()
            .find(|row| row.try_get::<String>("", "key").ok().as_deref() == Some(key))
            .ok_or_else(|| DbErr::RecordNotFound(format!("rate limit bucket {key}")))?;
        let tat: i64 = row.try_get("", "tat_us")?;
        let allowed: bool = row.try_get("", "allowed")?;
        standings.push(standing(
            *bucket,
            *rate,
            allowed,
            tat,
            interval_of(*rate),
            now_us,
        ));
    }
    Ok(standings)
}

/// The time one token takes to come back.
fn interval_of(rate: Rate) -> i64 {
    (micros(rate.per) / i64::from(rate.requests)).max(1)
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
    let period = micros(rate.per);
    let ahead = (tat - now).max(0);
    let remaining = u64::try_from((period - ahead).max(0) / interval.max(1)).unwrap_or(0);
    let ceil_secs = |us: i64| u64::try_from((us.max(0) + 999_999) / 1_000_000).unwrap_or(0);
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
pub async fn sweep(db: &DatabaseConnection, now_us: i64) -> Result<u64, DbErr> {
    let result = db
        .execute_raw(db::statement(
            db,
            "DELETE FROM rate_limits WHERE tat_us < $1",
            [Value::from(now_us)],
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
    fn leases_are_a_hundredth_of_a_bucket_and_always_fit_in_one() {
        let rate = |requests, secs| Rate {
            requests,
            per: Duration::from_secs(secs),
        };
        assert_eq!(lease_size(rate(120, 60)), 1);
        assert_eq!(lease_size(rate(1200, 60)), 12);
        assert_eq!(lease_size(rate(1_000_000, 1)), 10_000);
        // A whole lease's worth of intervals never exceeds the period, or
        // it could never be granted.
        for r in [
            rate(7, 3600),
            rate(1200, 60),
            rate(1_000_000, 1),
            rate(3_000_000, 1),
        ] {
            assert!(
                interval_of(r) * i64::from(lease_size(r)) <= micros(r.per),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_fresh_bucket_has_all_but_the_request_just_made() {
        // First request: tat = now + 1 s.
        let s = standing(Bucket::User, PER_MINUTE, true, 1_000_000, 1_000_000, 0);
        assert_eq!((s.remaining, s.reset, s.retry_after), (59, 1, 0));
    }

    #[test]
    fn an_empty_bucket_says_when_the_next_request_fits() {
        // 60 requests at once: tat = now + 60 s; the 61st is refused and one
        // more fits after one interval.
        let s = standing(Bucket::Client, PER_MINUTE, false, 60_000_000, 1_000_000, 0);
        assert_eq!((s.remaining, s.reset, s.retry_after), (0, 60, 1));
        let verdict = Verdict {
            standings: vec![
                standing(Bucket::User, PER_MINUTE, true, 5_000_000, 1_000_000, 0),
                s,
            ],
        };
        assert_eq!(verdict.retry_after(), 1);
        let headers = verdict.headers();
        assert_eq!(headers[0].1, "\"user\";q=60;w=60, \"client\";q=60;w=60");
        assert_eq!(headers[1].1, "\"client\";r=0;t=60");
    }
}
