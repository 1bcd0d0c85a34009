//! `Idempotency-Key` for the API's POST actions (draft-ietf-httpapi-
//! idempotency-key-header): an integrator that retries a request after a
//! timeout or a dropped connection gets the first response again instead of
//! a second task.
//!
//! Keys belong to a caller (user and client): the first request under a key
//! claims it with one insert; the response is kept for 24 hours (its body
//! sealed at rest, since a webhook's creation returns its signing secret
//! once). The same key with the same method, path and body replays that
//! response with `Idempotent-Replayed: true`; with anything else it is a
//! 422. A duplicate that arrives while the first still runs waits for its
//! result (in any replica: the claim is a database row), or gets a 409 with
//! `Retry-After` if the first outlasts the wait.
//!
//! Responses that did not act are not kept, so the request can be repeated
//! once the cause is fixed: 401/403 (the token), 408/429 (throttled, timed
//! out) and any 5xx. A claim whose request died with its process is taken
//! over once it is older than twice the request timeout.

use std::{sync::Arc, time::Duration};

use poem::{
    Body, Request, Response,
    http::{HeaderName, HeaderValue, StatusCode, header},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::{
    auth::Principal,
    db,
    problem::{Problem, ProblemKind},
    web::json_body::BODY_LIMIT,
    webhooks::sealing::SealingKey,
};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a response is kept for replay.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest key accepted (UUIDs and ULIDs fit with room to spare).
const MAX_KEY_LEN: usize = 255;
/// How often a waiting duplicate looks whether the first has finished.
const POLL: Duration = Duration::from_millis(25);
/// Response headers kept with the body; others (the date, the request id,
/// rate-limit standing) belong to each answer.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// Where kept responses live and how long duplicates wait.
#[derive(Clone)]
pub struct Idempotency {
    db: DatabaseConnection,
    sealing: Arc<OnceCell<SealingKey>>,
    configured_key: Option<String>,
    /// How long a duplicate waits for the first request's result.
    wait: Duration,
    /// When a claim without a result counts as abandoned.
    stale_after: Duration,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Idempotency")
    }
}

/// What the claim on a key found.
#[derive(Debug)]
enum Claim {
    /// This request is the first: run it and keep its response.
    Owner,
    Replay(KeptResponse),
    Mismatch,
    InProgress,
}

#[derive(Debug)]
struct KeptResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn millis_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The caller a key belongs to.
fn owner_of(principal: &Principal) -> String {
    format!(
        "{}/{}",
        principal.user_id,
        principal.client_id.as_deref().unwrap_or("-")
    )
}

/// The header's value when it is a usable key: 1 to 255 visible ASCII
/// characters (a quoted structured-field string is unquoted).
fn parse_key(value: &HeaderValue) -> Result<String, Problem> {
    let invalid = || {
        Problem::invalid_field(
            "Idempotency-Key",
            format!(
                "must be 1 to {MAX_KEY_LEN} visible ASCII characters, such as a UUID; send a new \
                 random key for each new request"
            ),
        )
    };
    let raw = value.to_str().map_err(|_| invalid())?.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(raw);
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

/// What makes two requests the same: method, path and query, body.
fn fingerprint(req: &Request, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str());
    hash.update(b" ");
    hash.update(
        req.uri()
            .path_and_query()
            .map_or(req.uri().path(), |p| p.as_str()),
    );
    hash.update(b"\n");
    hash.update(body);
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a response is kept for replay: it acted (or refused for good).
fn keeps(status: StatusCode) -> bool {
    !(status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        ))
}

impl Idempotency {
    pub fn new(
        db: DatabaseConnection,
        configured_key: Option<String>,
        request_timeout: Duration,
    ) -> Self {
        Self {
            db,
            sealing: Arc::new(OnceCell::new()),
            configured_key,
            wait: request_timeout
                .saturating_sub(Duration::from_secs(2))
                .max(POLL),
            stale_after: request_timeout * 2,
        }
    }

    /// Whether `req` asks for idempotency: a POST to the API with the header.
    pub fn applies_to(req: &Request) -> bool {
        req.method() == poem::http::Method::POST
            && req.uri().path().starts_with("/v1/")
            && req.headers().contains_key(IDEMPOTENCY_KEY)
    }

    async fn sealing(&self) -> Result<&SealingKey, Problem> {
        self.sealing
            .get_or_try_init(|| SealingKey::load(&self.db, self.configured_key.as_deref()))
            .await
            .map_err(Problem::internal)
    }

    /// Runs `next` once per key: the first request under a key runs and its
    /// response is kept; repeats get that response.
    pub async fn run<F, Fut>(
        &self,
        mut req: Request,
        principal: &Principal,
        next: F,
    ) -> Result<Response, Problem>
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Response>,
    {
        let key = match req.headers().get(IDEMPOTENCY_KEY) {
            Some(value) => parse_key(value)?,
            None => return Ok(next(req).await),
        };
        let body = req
            .take_body()
            .into_bytes_limit(BODY_LIMIT)
            .await
            .map_err(|_| {
                Problem::new(
                    ProblemKind::PayloadTooLarge,
                    format!("The body is larger than {BODY_LIMIT} bytes (64 KiB)."),
                )
            })?;
        let print = fingerprint(&req, &body);
        req.set_body(Body::from_bytes(body));
        let owner = owner_of(principal);
        let started = tokio::time::Instant::now();
        loop {
            match self
                .claim(&owner, &key, &print)
                .await
                .map_err(Problem::internal)?
            {
                Claim::Owner => break,
                Claim::Replay(kept) => return Self::replay(kept),
                Claim::Mismatch => {
                    return Err(Problem::new(
                        ProblemKind::IdempotencyKeyReused,
                        "This Idempotency-Key was already used for a request with a different \
                         method, path or body. Send a new key for a new request.",
                    ));
                }
                Claim::InProgress if started.elapsed() < self.wait => {
                    tokio::time::sleep(POLL).await;
                }
                Claim::InProgress => {
                    return Err(Problem::new(
                        ProblemKind::RequestInProgress,
                        "The first request with this Idempotency-Key is still running. Retry \
                         in a moment to receive its result.",
                    )
                    .with_header(header::RETRY_AFTER, "1"));
                }
            }
        }
        let mut response = next(req).await;
        if !keeps(response.status()) {
            if let Err(err) = self.release(&owner, &key).await {
                tracing::warn!(error = %err, "idempotency: could not release a key");
            }
            return Ok(response);
        }
        let bytes = response
            .take_body()
            .into_vec()
            .await
            .map_err(Problem::internal)?;
        let headers: Vec<(String, String)> = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect();
        let stored = self
            .complete(&owner, &key, response.status(), &headers, &bytes)
            .await;
        if let Err(err) = stored {
            // The action happened; the caller gets its answer. A repeat
            // then waits until the claim counts as abandoned.
            tracing::error!(error = %err, "idempotency: could not keep a response");
        }
        response.set_body(bytes);
        Ok(response)
    }

    fn replay(kept: KeptResponse) -> Result<Response, Problem> {
        let mut response = Response::builder()
            .status(StatusCode::from_u16(kept.status).map_err(Problem::internal)?)
            .body(kept.body);
        for (name, value) in kept.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
        Ok(response)
    }

    /// The sealed body's associated data: its owner and key.
    fn context(owner: &str, key: &str) -> Vec<u8> {
        format!("idempotency:{owner}:{key}").into_bytes()
    }

    async fn claim(&self, owner: &str, key: &str, print: &str) -> Result<Claim, DbErr> {
        let now = millis_now();
        for _ in 0..2 {
            let inserted = self
                .db
                .execute_raw(db::statement(&self.db,
                    "INSERT INTO idempotency_keys (owner, key, fingerprint, status, headers, body, created_ms, expires_ms) \
                     VALUES ($1, $2, $3, NULL, NULL, NULL, $4, $5) ON CONFLICT (owner, key) DO NOTHING",
                    vec![
                        owner.into(),
                        key.into(),
                        print.into(),
                        now.into(),
                        (now + millis(RETENTION)).into(),
                    ],
                ))
                .await?;
            if inserted.rows_affected() == 1 {
                return Ok(Claim::Owner);
            }
            let Some(row) = self
                .db
                .query_one_raw(db::statement(
                    &self.db,
                    "SELECT fingerprint, status, headers, body, created_ms, expires_ms \
                     FROM idempotency_keys WHERE owner = $1 AND key = $2",
                    vec![owner.into(), key.into()],
                ))
                .await?
            else {
                // Released between the insert and the look: try again.
                continue;
            };
            let expires: i64 = row.try_get("", "expires_ms")?;
            if expires <= now {
                self.db
                    .execute_raw(db::statement(&self.db,
                        "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND expires_ms <= $3",
                        vec![owner.into(), key.into(), now.into()],
                    ))
                    .await?;
                continue;
            }
            let stored: String = row.try_get("", "fingerprint")?;
            if stored != print {
                return Ok(Claim::Mismatch);
            }
            let status: Option<i16> = row.try_get("", "status")?;
            let Some(status) = status else {
                let created: i64 = row.try_get("", "created_ms")?;
                if now - created > millis(self.stale_after) {
                    let taken = self
                        .db
                        .execute_raw(db::statement(
                            &self.db,
                            "UPDATE idempotency_keys SET created_ms = $1 \
                             WHERE owner = $2 AND key = $3 AND status IS NULL AND created_ms = $4",
                            vec![now.into(), owner.into(), key.into(), created.into()],
                        ))
                        .await?;
                    if taken.rows_affected() == 1 {
                        tracing::warn!(
                            "idempotency: took over a key whose first request never finished"
                        );
                        return Ok(Claim::Owner);
                    }
                }
                return Ok(Claim::InProgress);
            };
            let headers: Option<String> = row.try_get("", "headers")?;
            let body: Option<String> = row.try_get("", "body")?;
            let headers = headers
                .and_then(|h| serde_json::from_str(&h).ok())
                .unwrap_or_default();
            let body = match body {
                Some(sealed) => {
                    let sealing = self
                        .sealing()
                        .await
                        .map_err(|p| DbErr::Custom(p.to_string()))?;
                    sealing
                        .open_bytes(&Self::context(owner, key), &sealed)
                        .map_err(|e| DbErr::Custom(e.to_string()))?
                }
                None => Vec::new(),
            };
            return Ok(Claim::Replay(KeptResponse {
                status: u16::try_from(status).unwrap_or(500),
                headers,
                body,
            }));
        }
        Ok(Claim::InProgress)
    }

    async fn complete(
        &self,
        owner: &str,
        key: &str,
        status: StatusCode,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), Problem> {
        let sealed = self
            .sealing()
            .await?
            .seal_bytes(&Self::context(owner, key), body)
            .map_err(Problem::internal)?;
        let headers = serde_json::to_string(headers).map_err(Problem::internal)?;
        self.db
            .execute_raw(db::statement(&self.db,
                "UPDATE idempotency_keys SET status = $1, headers = $2, body = $3 WHERE owner = $4 AND key = $5",
                vec![
                    i16::try_from(status.as_u16()).unwrap_or(500).into(),
                    headers.into(),
                    sealed.into(),
                    owner.into(),
                    key.into(),
                ],
            ))
            .await
            .map_err(Problem::internal)?;
        Ok(())
    }

    async fn release(&self, owner: &str, key: &str) -> Result<(), DbErr> {
        self.db
            .execute_raw(db::statement(
                &self.db,
                "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND status IS NULL",
                vec![owner.into(), key.into()],
            ))
            .await
            .map(|_| ())
    }
}

/// Forgets responses past their 24 hours, for the janitor.
pub async fn sweep(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let result = db
        .execute_raw(db::statement(
            db,
            "DELETE FROM idempotency_keys WHERE expires_ms < $1",
            [Value::from(millis_now())],
        ))
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let ok = |raw: &str| parse_key(&HeaderValue::from_str(raw).unwrap());
        assert_eq!(ok("8e0f-4b").unwrap(), "8e0f-4b");
        assert_eq!(ok("\"8e0f-4b\"").unwrap(), "8e0f-4b");
        assert!(ok("").is_err());
        assert!(ok("has space").is_err());
        assert!(ok(&"k".repeat(256)).is_err());
        assert!(ok(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn only_responses_that_acted_are_kept() {
        for kept in [
            StatusCode::CREATED,
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
        ] {
            assert!(keeps(kept), "{kept}");
        }
        for not in [
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert!(!keeps(not), "{not}");
        }
    }
}
