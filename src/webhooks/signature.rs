//! Webhook signatures in the Standard Webhooks format
//! (<https://www.standardwebhooks.com/>).
//!
//! We follow the published format rather than inventing our own so that
//! integrators can verify deliveries with the off-the-shelf Standard Webhooks
//! libraries. Each delivery carries `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers; the signature is HMAC-SHA256, keyed with the
//! endpoint's secret, over `{webhook-id}.{webhook-timestamp}.{body}`, sent as
//! `v1,<base64>`. Signing the id and the timestamp with the body is what lets
//! a receiver refuse replays: an old delivery cannot be re-sent with a fresh
//! timestamp, nor under another id, without breaking the signature.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac, digest::Key};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a secret's text form, as the Standard Webhooks libraries
/// expect it; it also makes a leaked secret recognisable to secret scanners.
const SECRET_PREFIX: &str = "whsec_";

/// The secret lengths the Standard Webhooks specification allows, in bytes.
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// What we generate: 256 bits, the HMAC-SHA256 output size, so the key is
/// never the weaker link.
const GENERATED_SECRET_LEN: usize = 32;

/// The only signature scheme of the specification so far (symmetric,
/// HMAC-SHA256). `v1a` (asymmetric, ed25519) is not supported.
const SCHEME: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a webhook signing secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a webhook signing secret is `whsec_` followed by base64, and this one is not base64")]
    InvalidBase64,
    #[error(
        "a webhook signing secret must decode to {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes, not {0}"
    )]
    SecretLength(usize),
    #[error(
        "the webhook timestamp {timestamp} is more than {tolerance_secs} seconds in the past \
         (now is {now}); the delivery may be a replay"
    )]
    TimestampTooOld {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error(
        "the webhook timestamp {timestamp} is more than {tolerance_secs} seconds in the future \
         (now is {now}); check the clocks"
    )]
    TimestampTooNew {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error("the webhook-signature header holds no `v1,` signature")]
    NoSignature,
    #[error("no signature in the webhook-signature header matches the message")]
    Mismatch,
}

/// An endpoint's signing secret: the raw key bytes, 24 to 64 of them.
///
/// The bytes stay private and `Debug` does not print them, so the secret
/// cannot leak through a log line or an error report by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// A fresh secret of 32 random bytes from the operating system.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0u8; GENERATED_SECRET_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The text form shown to the integrator once and stored by them:
    /// `whsec_` followed by the bytes in standard base64.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// Reads the text form back. The prefix is required: a bare base64
    /// string is more likely something pasted by mistake than a secret.
    pub fn from_whsec(s: &str) -> Result<Self, SignatureError> {
        let encoded = s
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SignatureError::MissingPrefix)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SignatureError::InvalidBase64)?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(SignatureError::SecretLength(bytes.len()));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A secret from its raw bytes (as unsealed from storage); `None` for a
    /// length outside 24 to 64 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (MIN_SECRET_LEN..=MAX_SECRET_LEN)
            .contains(&bytes.len())
            .then_some(Self(bytes))
    }

    /// HMAC-SHA256 keyed with this secret.
    ///
    /// `Mac::new_from_slice` returns a `Result` that cannot be an error for
    /// HMAC, yet would need an `unwrap`. HMAC's first step (RFC 2104 §2)
    /// zero-pads a key no longer than the hash's block (64 bytes for SHA-256)
    /// to the block length, so passing the padded block to the infallible
    /// `new` computes the same function. A `SigningSecret` never holds more
    /// than 64 bytes (`generate` and `from_whsec` are its only makers); the
    /// tests check the equivalence for every allowed length.
    fn mac(&self) -> HmacSha256 {
        let mut key = Key::<HmacSha256>::default();
        for (slot, byte) in key.iter_mut().zip(&self.0) {
            *slot = *byte;
        }
        <HmacSha256 as hmac::digest::KeyInit>::new(&key)
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret(<{} bytes redacted>)", self.0.len())
    }
}

/// The raw HMAC of `{msg_id}.{timestamp}.{body}`.
fn mac_of(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for one delivery: `v1,<base64>`.
///
/// `timestamp` is the Unix time in seconds sent as `webhook-timestamp`.
pub fn sign(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac_of(secret, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("{SCHEME},{}", STANDARD.encode(tag))
}

/// What a receiver does with a delivery, written down for integrators' docs
/// and for our tests.
///
/// The timestamp is checked first and against `now` (Unix seconds), within
/// `tolerance_secs` either way (the Standard Webhooks libraries use 5
/// minutes): without that check a captured delivery could be replayed
/// forever. The header may carry several space-separated signatures (a
/// sender rotating its secret signs with both); any `v1` one that matches
/// is enough, others (unknown schemes, bad base64) are ignored. Every
/// candidate is compared in constant time and none ends the loop early, so
/// response timing says nothing about how much of a forged signature was
/// right.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let tolerance = tolerance_secs.max(0);
    if timestamp.abs_diff(now) > tolerance.unsigned_abs() {
        return Err(if timestamp < now {
            SignatureError::TimestampTooOld {
                timestamp,
                now,
                tolerance_secs: tolerance,
            }
        } else {
            SignatureError::TimestampTooNew {
                timestamp,
                now,
                tolerance_secs: tolerance,
            }
        });
    }

    let expected = mac_of(secret, msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    let mut candidates = 0usize;
    let mut matched = Choice::from(0);
    for entry in header.split_ascii_whitespace() {
        let Some((SCHEME, encoded)) = entry.split_once(',') else {
            continue;
        };
        candidates += 1;
        if let Ok(candidate) = STANDARD.decode(encoded) {
            matched |= candidate.as_slice().ct_eq(&expected[..]);
        }
    }
    if candidates == 0 {
        return Err(SignatureError::NoSignature);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification
    // and used by its reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const TOLERANCE: i64 = 300;

    fn secret() -> SigningSecret {
        SigningSecret::from_whsec(SECRET).unwrap()
    }

    fn check(header: &str) -> Result<(), SignatureError> {
        verify(
            &secret(),
            MSG_ID,
            TIMESTAMP,
            BODY,
            header,
            TIMESTAMP,
            TOLERANCE,
        )
    }

    #[test]
    fn the_standard_webhooks_test_vector_signs_and_verifies() {
        assert_eq!(sign(&secret(), MSG_ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(check(SIGNATURE), Ok(()));
    }

    #[test]
    fn the_padded_key_is_the_same_hmac_as_the_slice_key() {
        for len in MIN_SECRET_LEN..=MAX_SECRET_LEN {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let secret =
                SigningSecret::from_whsec(&format!("whsec_{}", STANDARD.encode(&bytes))).unwrap();
            let mut reference = HmacSha256::new_from_slice(&bytes).unwrap();
            reference.update(b"id.1.body");
            let mut ours = secret.mac();
            ours.update(b"id.1.body");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "key length {len}"
            );
        }
    }

    #[test]
    fn tampering_with_body_id_or_timestamp_fails() {
        let secret = secret();
        let at = |id: &str, ts: i64, body: &[u8]| {
            verify(&secret, id, ts, body, SIGNATURE, TIMESTAMP, TOLERANCE)
        };
        assert_eq!(
            at(MSG_ID, TIMESTAMP, br#"{"test": 2432232315}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            at("msg_p5jXN8AQM9LWM0D4loKWxJeK", TIMESTAMP, BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            at(MSG_ID, TIMESTAMP + 1, BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_does_not_verify() {
        let other = SigningSecret::generate().unwrap();
        assert_eq!(
            verify(
                &other, MSG_ID, TIMESTAMP, BODY, SIGNATURE, TIMESTAMP, TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let stale = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
        assert_eq!(check(&format!("{stale} {SIGNATURE}")), Ok(()));
        assert_eq!(check(&format!("{SIGNATURE} {stale}")), Ok(()));
        // Unknown schemes and undecodable entries are skipped, not fatal.
        assert_eq!(
            check(&format!("v1a,c29tZXRoaW5n v1,!!notbase64!! {SIGNATURE}")),
            Ok(())
        );
        assert_eq!(check(stale), Err(SignatureError::Mismatch));
    }

    #[test]
    fn only_v1_signatures_count() {
        let (_, b64) = SIGNATURE.split_once(',').unwrap();
        assert_eq!(
            check(&format!("v2,{b64}")),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(check(b64), Err(SignatureError::NoSignature));
        assert_eq!(check(""), Err(SignatureError::NoSignature));
        // A truncated signature is a mismatch, not a partial match.
        assert_eq!(
            check(&SIGNATURE[..SIGNATURE.len() - 4]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let secret = secret();
        let now = |now: i64| verify(&secret, MSG_ID, TIMESTAMP, BODY, SIGNATURE, now, TOLERANCE);
        assert_eq!(now(TIMESTAMP + TOLERANCE), Ok(()));
        assert_eq!(now(TIMESTAMP - TOLERANCE), Ok(()));
        assert!(matches!(
            now(TIMESTAMP + TOLERANCE + 1),
            Err(SignatureError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            now(TIMESTAMP - TOLERANCE - 1),
            Err(SignatureError::TimestampTooNew { .. })
        ));
        // Extreme values neither overflow nor pass.
        assert!(now(i64::MAX).is_err());
        assert!(now(i64::MIN).is_err());
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_round_trip() {
        let a = SigningSecret::generate().unwrap();
        let b = SigningSecret::generate().unwrap();
        assert_eq!(a.as_bytes().len(), 32);
        assert_ne!(a, b);
        let text = a.to_whsec();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::from_whsec(&text).unwrap(), a);
        assert_eq!(secret().to_whsec(), SECRET);
    }

    #[test]
    fn malformed_secrets_are_refused_with_a_reason() {
        assert_eq!(
            SigningSecret::from_whsec("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignatureError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::from_whsec("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SignatureError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::from_whsec("whsec_not base64!"),
            Err(SignatureError::InvalidBase64)
        );
        assert_eq!(
            SigningSecret::from_whsec(&format!("whsec_{}", STANDARD.encode([7u8; 23]))),
            Err(SignatureError::SecretLength(23))
        );
        assert_eq!(
            SigningSecret::from_whsec(&format!("whsec_{}", STANDARD.encode([7u8; 65]))),
            Err(SignatureError::SecretLength(65))
        );
        assert_eq!(
            SigningSecret::from_whsec("whsec_").unwrap_err(),
            SignatureError::SecretLength(0)
        );
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let shown = format!("{:?}", secret());
        assert_eq!(shown, "SigningSecret(<24 bytes redacted>)");
        assert!(!shown.contains("MfKQ"));
    }
}
