//! Signing secrets at rest. A secret must be usable to sign, so it cannot
//! be hashed like client secrets: it is sealed with AES-256-GCM (a fresh
//! nonce per secret, the webhook id as associated data, so a sealed secret
//! copied onto another subscription does not open). The key comes from
//! `ERRAND_WEBHOOK_SECRET_KEY`; without it one is generated once and kept in
//! the database, which keeps secrets out of plain sight in backups of the
//! webhooks table but not from someone holding the whole database.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, sea_query::OnConflict};
use uuid::Uuid;

use super::{entity::sealing_key, signature::SigningSecret};

const KEY_ID: &str = "webhook-secrets";
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "ERRAND_WEBHOOK_SECRET_KEY must be 32 bytes of base64 (e.g. from `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("the sealed webhook secret cannot be opened (wrong key, or damaged)")]
    Unopenable,
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("could not load the sealing key")]
    Database(#[from] DbErr),
}

/// The key webhook secrets are sealed with.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// The configured key (base64), or the one kept in the database.
    pub async fn load(
        db: &DatabaseConnection,
        configured: Option<&str>,
    ) -> Result<Self, SealError> {
        let bytes = match configured {
            Some(raw) => decode(raw).ok_or(SealError::BadKey)?,
            None => stored_key(db).await?,
        };
        Ok(Self(Aes256Gcm::new(&bytes.into())))
    }

    /// `nonce ‖ ciphertext`, base64.
    pub fn seal(&self, webhook_id: Uuid, secret: &SigningSecret) -> Result<String, SealError> {
        self.seal_bytes(webhook_id.as_bytes(), secret.as_bytes())
    }

    pub fn open(&self, webhook_id: Uuid, sealed: &str) -> Result<SigningSecret, SealError> {
        let plain = self.open_bytes(webhook_id.as_bytes(), sealed)?;
        SigningSecret::from_bytes(plain).ok_or(SealError::Unopenable)
    }

    /// Seals any bytes, bound to `context` (associated data): what it
    /// belongs to, so that a sealed value copied elsewhere does not open.
    /// Also used for kept responses that may hold a secret (idempotency).
    pub fn seal_bytes(&self, context: &[u8], plain: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Unopenable)?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(STANDARD.encode(out))
    }

    pub fn open_bytes(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Unopenable)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::Unopenable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Unopenable)?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Unopenable)
    }
}

fn decode(raw: &str) -> Option<[u8; 32]> {
    STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// The key in the database, made by the first process that needed one.
async fn stored_key(db: &DatabaseConnection) -> Result<[u8; 32], SealError> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| SealError::Random(e.to_string()))?;
    sealing_key::Entity::insert(sealing_key::ActiveModel {
        id: Set(KEY_ID.to_owned()),
        key: Set(STANDARD.encode(fresh)),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(sealing_key::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let stored = sealing_key::Entity::find_by_id(KEY_ID.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the webhook sealing key vanished".to_owned()))?;
    decode(&stored.key).ok_or(SealError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook() {
        let key = SealingKey(Aes256Gcm::new(&[7u8; 32].into()));
        let secret = SigningSecret::generate().unwrap();
        let id = Uuid::now_v7();
        let sealed = key.seal(id, &secret).unwrap();
        assert!(!sealed.contains(&secret.to_whsec()["whsec_".len()..]));
        assert_eq!(key.open(id, &sealed).unwrap().as_bytes(), secret.as_bytes());
        assert!(
            key.open(Uuid::now_v7(), &sealed).is_err(),
            "bound to its webhook"
        );
        let other = SealingKey(Aes256Gcm::new(&[8u8; 32].into()));
        assert!(other.open(id, &sealed).is_err(), "bound to its key");
    }
}
