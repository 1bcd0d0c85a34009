//! Secrets at rest that must be usable again, so cannot be hashed like
//! client secrets: token-signing keys, webhook signing secrets, responses
//! kept for `Idempotency-Key` (a webhook's creation returns its secret),
//! queued mail (its links are single-use secrets). Each is sealed with AES-256-GCM, a
//! fresh nonce per value and what the value belongs to as associated data,
//! so that a sealed value copied elsewhere does not open. The key comes from
//! `ERRAND_WEBHOOK_SECRET_KEY` (named for its first use); without it one is
//! generated once and kept in the database, which keeps secrets out of plain
//! sight in backups of the other tables but not from someone holding the
//! whole database.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, sea_query::OnConflict};

const KEY_ID: &str = "webhook-secrets";
const NONCE_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "ERRAND_WEBHOOK_SECRET_KEY must be 32 bytes of base64 (e.g. from `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("a sealed value cannot be opened (wrong key, or damaged)")]
    Unopenable,
    #[error("no randomness available: {0}")]
    Random(String),
    #[error("could not load the sealing key")]
    Database(#[from] DbErr),
}

/// The key secrets at rest are sealed with.
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
        db: &impl ConnectionTrait,
        configured: Option<&str>,
    ) -> Result<Self, SealError> {
        let bytes = match configured {
            Some(raw) => decode(raw).ok_or(SealError::BadKey)?,
            None => stored_key(db).await?,
        };
        Ok(Self(Aes256Gcm::new(&bytes.into())))
    }

    /// Seals `plain`, bound to `context` (associated data): what it belongs
    /// to, so that a sealed value copied elsewhere does not open. Returns
    /// `nonce ‖ ciphertext`, base64.
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

/// The key, loaded on first use (building the API documents needs no
/// database) and then kept. Clones share it.
#[derive(Clone)]
pub struct Sealer {
    db: sea_orm::DatabaseConnection,
    configured: Option<String>,
    key: std::sync::Arc<tokio::sync::OnceCell<SealingKey>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// `configured` is `ERRAND_WEBHOOK_SECRET_KEY`, if set.
    pub fn new(db: sea_orm::DatabaseConnection, configured: Option<String>) -> Self {
        Self {
            db,
            configured,
            key: std::sync::Arc::default(),
        }
    }

    pub async fn key(&self) -> Result<&SealingKey, SealError> {
        self.key
            .get_or_try_init(|| SealingKey::load(&self.db, self.configured.as_deref()))
            .await
    }
}

fn decode(raw: &str) -> Option<[u8; 32]> {
    STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// The key in the database, made by the first process that needed one.
async fn stored_key(db: &impl ConnectionTrait) -> Result<[u8; 32], SealError> {
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
        .ok_or_else(|| DbErr::RecordNotFound("the sealing key vanished".to_owned()))?;
    decode(&stored.key).ok_or(SealError::BadKey)
}

/// The one row the key is kept in (the table's name is from its first use).
pub mod sealing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_sealing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub key: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_context_and_with_its_key() {
        let key = SealingKey(Aes256Gcm::new(&[7u8; 32].into()));
        let sealed = key.seal_bytes(b"webhook:1", b"the secret").unwrap();
        assert!(!sealed.contains("the secret"));
        assert_eq!(
            key.open_bytes(b"webhook:1", &sealed).unwrap(),
            b"the secret"
        );
        assert!(
            key.open_bytes(b"webhook:2", &sealed).is_err(),
            "bound to its context"
        );
        let other = SealingKey(Aes256Gcm::new(&[8u8; 32].into()));
        assert!(
            other.open_bytes(b"webhook:1", &sealed).is_err(),
            "bound to its key"
        );
    }
}
