//! `Idempotency-Key` for the API's POST actions (draft-ietf-httpapi-
//! idempotency-key-header): an integrator that retries a request after a
//! timeout or a dropped connection gets the first response again instead of
//! a second task.
//!
//! Keys belong to a caller (user and client). The first request under a key
//! claims it with an insert inside a write transaction, runs the action in
//! that same transaction (every write the action begins joins it, see
//! `db::shared`), and records its response there too, so the claim, the
//! action and the kept response commit together or not at all: no crash,
//! lost connection or failed write between them can leave an action done
//! without its answer kept, and a retry never acts a second time. The
//! response is kept for 24 hours (its body sealed at rest, since a webhook's
//! creation returns its signing secret once). The same key with the same
//! method, path and body replays it with `Idempotent-Replayed: true`; with
//! anything else it is a 422. A duplicate that arrives while the first still
//! runs waits for its commit (the database makes it wait on the claimed
//! row), or gets a 409 with `Retry-After` if that takes too long.
//!
//! A replay is authorised like the original: the caller must hold the
//! scopes the operation requires, or the operation runs and answers its own
//! 403. Responses that did not act are not kept, and what they wrote is
//! rolled back with the claim, so the request can be repeated once the cause
//! is fixed: 401/403 (the token), 408/429 (throttled, timed out) and any 5xx.

use std::time::Duration;

use poem::{
    Body, Request, Response,
    http::{HeaderName, HeaderValue, StatusCode, header},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Value};
use sha2::{Digest, Sha256};

use crate::{
    auth::{Principal, Scope},
    db,
    problem::{Problem, ProblemKind},
    sealing::{Sealer, SealingKey},
    web::json_body::BODY_LIMIT,
};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a response is kept for replay.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest key accepted (UUIDs and ULIDs fit with room to spare).
const MAX_KEY_LEN: usize = 255;
/// Response headers kept with the body; others (the date, the request id,
/// rate-limit standing) belong to each answer.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// Where kept responses live and how long duplicates wait.
#[derive(Clone)]
pub struct Idempotency {
    db: DatabaseConnection,
    sealer: Sealer,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Idempotency")
    }
}

/// A response kept under a key.
#[derive(Debug)]
struct KeptResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What is recorded under a key, as far as a new request is concerned.
#[derive(Debug)]
enum Found {
    Nothing,
    Replay(KeptResponse),
    Mismatch,
    /// A claim without a response, written by an earlier release that
    /// recorded the two apart: whether it acted is unknown, so it is never
    /// taken over; it expires with the key.
    Unfinished,
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

fn in_progress() -> Problem {
    Problem::new(
        ProblemKind::RequestInProgress,
        "The first request with this Idempotency-Key is still running. Retry in a moment to \
         receive its result.",
    )
    .with_header(header::RETRY_AFTER, "1")
}

impl Idempotency {
    pub fn new(db: DatabaseConnection, sealer: Sealer) -> Self {
        Self { db, sealer }
    }

    /// Whether `req` asks for idempotency: a POST to the API with the header.
    pub fn applies_to(req: &Request) -> bool {
        req.method() == poem::http::Method::POST
            && req.uri().path().starts_with("/v1/")
            && req.headers().contains_key(IDEMPOTENCY_KEY)
    }

    /// Runs `next` once per key: the first request under a key runs in a
    /// transaction that also records its response; repeats get that
    /// response. `required` are the scopes the operation demands: a caller
    /// without them gets no replay (the operation refuses it itself).
    pub async fn run<F, Fut>(
        &self,
        mut req: Request,
        principal: &Principal,
        required: &[Scope],
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
        if !required
            .iter()
            .all(|scope| principal.scopes.contains(*scope))
        {
            // Authorised like the original, or not replayed at all.
            return Ok(next(req).await);
        }
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
        // Loaded before the claim: on SQLite the claim's transaction then
        // holds the only connection.
        let sealing = self.sealer.key().await.map_err(Problem::internal)?;
        let txn = loop {
            match self.find(sealing, &owner, &key, &print).await {
                Ok(Found::Nothing) => {}
                Ok(Found::Replay(kept)) => return Self::replay(kept),
                Ok(Found::Mismatch) => {
                    return Err(Problem::new(
                        ProblemKind::IdempotencyKeyReused,
                        "This Idempotency-Key was already used for a request with a different \
                         method, path or body. Send a new key for a new request.",
                    ));
                }
                Ok(Found::Unfinished) => return Err(in_progress()),
                Err(err) if db::is_contention(&err) => return Err(in_progress()),
                Err(err) => return Err(Problem::internal(err)),
            }
            match self.claim(&owner, &key, &print).await {
                Ok(Some(txn)) => break txn,
                // Someone else's claim committed meanwhile: look again.
                Ok(None) => continue,
                Err(err) if db::is_contention(&err) => return Err(in_progress()),
                Err(err) => return Err(Problem::internal(err)),
            }
        };
        let (mut response, finish) = db::shared(txn, next(req)).await;
        if !keeps(response.status()) {
            // Dropping the transaction rolls back the claim and whatever
            // the request wrote: it did not act.
            drop(finish);
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
        let recorded = match finish.transaction() {
            Some(txn) => {
                Self::record(
                    txn,
                    sealing,
                    &owner,
                    &key,
                    response.status(),
                    &headers,
                    &bytes,
                )
                .await
            }
            None => Err(DbErr::Custom(
                "the shared transaction is still in use".to_owned(),
            )),
        };
        // Commit only what was recorded: a failed statement leaves a
        // transaction that SQLite would still commit, action and all.
        let committed = match recorded {
            Ok(()) => finish.commit().await,
            Err(err) => Err(err),
        };
        if let Err(err) = committed {
            // Nothing committed: neither the action nor its answer.
            return Err(Problem::unavailable(
                "The request could not be completed and nothing was changed. Retry it with the \
                 same Idempotency-Key.",
                err,
            )
            .with_header(header::RETRY_AFTER, "1"));
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

    /// What is recorded under the key now (an expired record is removed).
    async fn find(
        &self,
        sealing: &SealingKey,
        owner: &str,
        key: &str,
        print: &str,
    ) -> Result<Found, DbErr> {
        let now = millis_now();
        let Some(row) = self
            .db
            .query_one_raw(db::statement(
                &self.db,
                "SELECT fingerprint, status, headers, body, expires_ms \
                 FROM idempotency_keys WHERE owner = $1 AND key = $2",
                vec![owner.into(), key.into()],
            ))
            .await?
        else {
            return Ok(Found::Nothing);
        };
        let expires: i64 = row.try_get("", "expires_ms")?;
        if expires <= now {
            self.db
                .execute_raw(db::statement(
                    &self.db,
                    "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND expires_ms <= $3",
                    vec![owner.into(), key.into(), now.into()],
                ))
                .await?;
            return Ok(Found::Nothing);
        }
        let stored: String = row.try_get("", "fingerprint")?;
        if stored != print {
            return Ok(Found::Mismatch);
        }
        let status: Option<i16> = row.try_get("", "status")?;
        let Some(status) = status else {
            return Ok(Found::Unfinished);
        };
        let headers: Option<String> = row.try_get("", "headers")?;
        let body: Option<String> = row.try_get("", "body")?;
        let headers = headers
            .and_then(|h| serde_json::from_str(&h).ok())
            .unwrap_or_default();
        let body = match body {
            Some(sealed) => sealing
                .open_bytes(&Self::context(owner, key), &sealed)
                .map_err(|e| DbErr::Custom(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Found::Replay(KeptResponse {
            status: u16::try_from(status).unwrap_or(500),
            headers,
            body,
        }))
    }

    /// Claims the key in a new write transaction, which the request's
    /// action then runs in; `None` if another claim holds it (committed, or
    /// committed while this one waited for it).
    async fn claim(
        &self,
        owner: &str,
        key: &str,
        print: &str,
    ) -> Result<Option<DatabaseTransaction>, DbErr> {
        let now = millis_now();
        let txn = db::begin_write(&self.db).await?;
        let inserted = txn
            .execute_raw(db::statement(
                &self.db,
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
        Ok((inserted.rows_affected() == 1).then_some(txn))
    }

    /// Records the response under the key, in the claim's transaction.
    async fn record(
        txn: &DatabaseTransaction,
        sealing: &SealingKey,
        owner: &str,
        key: &str,
        status: StatusCode,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), DbErr> {
        let sealed = sealing
            .seal_bytes(&Self::context(owner, key), body)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let headers = serde_json::to_string(headers).map_err(|e| DbErr::Custom(e.to_string()))?;
        txn.execute_raw(db::statement(
            txn,
            "UPDATE idempotency_keys SET status = $1, headers = $2, body = $3 WHERE owner = $4 AND key = $5",
            vec![
                i16::try_from(status.as_u16()).unwrap_or(500).into(),
                headers.into(),
                sealed.into(),
                owner.into(),
                key.into(),
            ],
        ))
        .await?;
        Ok(())
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
