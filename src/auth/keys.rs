//! Token signing keys: Ed25519, identified by their RFC 7638 JWK thumbprint.
//!
//! A key comes from `ERRAND_SIGNING_KEY_FILE` or, without it, from the database,
//! where the first process to start generates one. Every process reading the
//! same database therefore signs and verifies with the same key. Stored keys
//! are sealed (`sealing`, bound to their kid), like every other secret Errand
//! must use again; a key stored in the clear by an earlier version is sealed
//! the first time it is loaded.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{DecodingKey, EncodingKey};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::sealing::{SealError, Sealer, SealingKey};

pub const ALGORITHM_NAME: &str = "EdDSA";

/// How long a retired key keeps verifying: the longest lifetime any token
/// can have, so every token it signed expires first.
pub const RETIRED_KEY_GRACE: Duration = Duration::from_secs(366 * 24 * 60 * 60);

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub algorithm: String,
        /// The PKCS#8 PEM, sealed (the column's name is older than that).
        pub private_key_pem: String,
        pub created_at: DateTimeUtc,
        pub retired_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not read the signing key file {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the signing key is not an Ed25519 private key in PKCS#8 PEM form \
         (`openssl genpkey -algorithm ed25519` writes one)"
    )]
    Parse(#[source] ed25519_dalek::pkcs8::Error),
    #[error("could not encode the signing key")]
    Encode(#[source] ed25519_dalek::pkcs8::Error),
    #[error("the operating system's random number generator failed")]
    Random(#[source] getrandom::Error),
    #[error("could not load or store signing keys")]
    Database(#[source] DbErr),
    #[error("could not seal or open a stored signing key")]
    Sealing(#[from] SealError),
}

/// One Ed25519 key pair, ready for jsonwebtoken.
pub struct SigningKey {
    kid: String,
    pem: String,
    public_x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KeyError::Random)?;
        Self::from_dalek(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(KeyError::Parse)?;
        Self::from_dalek(key)
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let der = key.to_pkcs8_der().map_err(KeyError::Encode)?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(KeyError::Encode)?
            .to_string();
        let public = key.verifying_key().to_bytes();
        let public_x = URL_SAFE_NO_PAD.encode(public);
        Ok(Self {
            kid: thumbprint(&public_x),
            pem,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            public_x,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public half as a JWK, for a JWKS document.
    pub fn public_jwk(&self) -> serde_json::Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.public_x,
            "kid": self.kid,
            "alg": ALGORITHM_NAME,
            "use": "sig",
        })
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over the required JWK
/// members in lexicographic order.
fn thumbprint(public_x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The key that signs new tokens and every key whose tokens are still accepted.
#[derive(Debug, Clone)]
pub struct KeyRing {
    active: Arc<SigningKey>,
    verifying: Arc<HashMap<String, Arc<SigningKey>>>,
}

impl KeyRing {
    pub fn single(key: SigningKey) -> Self {
        let key = Arc::new(key);
        let verifying = HashMap::from([(key.kid.clone(), key.clone())]);
        Self {
            active: key,
            verifying: Arc::new(verifying),
        }
    }

    /// The key ring this deployment uses: the configured file, or the keys kept
    /// in the database (generating the first one if there is none).
    pub async fn load(
        db: &DatabaseConnection,
        key_file: Option<&Path>,
        sealer: &Sealer,
    ) -> Result<Self, KeyError> {
        if let Some(path) = key_file {
            let pem = std::fs::read_to_string(path).map_err(|source| KeyError::ReadFile {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(Self::single(SigningKey::from_pem(&pem)?));
        }
        let sealing = sealer.key().await?;
        let mut stored = usable_keys(db).await.map_err(KeyError::Database)?;
        if !stored.iter().any(|row| row.retired_at.is_none()) {
            let key = SigningKey::generate()?;
            insert_if_absent(db, sealing, &key).await?;
            stored = usable_keys(db).await.map_err(KeyError::Database)?;
        }
        // The newest key still in service signs; when two processes generate
        // a first key at the same moment, both pick the same one here, and
        // both keys verify.
        let Some(active_row) = stored.iter().rfind(|row| row.retired_at.is_none()) else {
            return Err(KeyError::Database(DbErr::RecordNotFound(
                "no signing key after generating one".to_owned(),
            )));
        };
        let mut verifying = HashMap::new();
        for row in &stored {
            let key = Arc::new(open(db, sealing, row).await?);
            verifying.insert(key.kid.clone(), key);
        }
        // The stored kid is the key's thumbprint, so it finds the parsed key.
        let Some(active) = verifying.get(&active_row.kid).cloned() else {
            return Err(KeyError::Database(DbErr::RecordNotFound(format!(
                "signing key {} does not match its kid",
                active_row.kid
            ))));
        };
        Ok(Self {
            active,
            verifying: Arc::new(verifying),
        })
    }

    /// Generates a new signing key and retires the others, which keep
    /// verifying until every token they signed has expired. Returns the new
    /// `kid`. Running servers pick the new key up when they next see a token
    /// it signed, or within a minute.
    pub async fn rotate(db: &DatabaseConnection, sealer: &Sealer) -> Result<String, KeyError> {
        let key = SigningKey::generate()?;
        insert_if_absent(db, sealer.key().await?, &key).await?;
        entity::Entity::update_many()
            .col_expr(
                entity::Column::RetiredAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(entity::Column::RetiredAt.is_null())
            .filter(entity::Column::Kid.ne(key.kid.clone()))
            .exec(db)
            .await
            .map_err(KeyError::Database)?;
        Ok(key.kid)
    }

    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&SigningKey> {
        self.verifying.get(kid).map(Arc::as_ref)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<&Arc<SigningKey>> = self.verifying.values().collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        json!({ "keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>() })
    }
}

/// Keys in service or retired recently enough to verify, oldest first.
async fn usable_keys(db: &DatabaseConnection) -> Result<Vec<entity::Model>, DbErr> {
    entity::Entity::find()
        .filter(entity::Column::Algorithm.eq(ALGORITHM_NAME))
        .filter(
            sea_orm::Condition::any()
                .add(entity::Column::RetiredAt.is_null())
                .add(
                    entity::Column::RetiredAt
                        .gt(Utc::now() - crate::timestamp::span(RETIRED_KEY_GRACE)),
                ),
        )
        .order_by_asc(entity::Column::CreatedAt)
        .order_by_asc(entity::Column::Kid)
        .all(db)
        .await
}

/// What a stored key is bound to: its kid, so that a sealed key copied to
/// another row does not open.
fn seal_context(kid: &str) -> Vec<u8> {
    format!("signing-key:{kid}").into_bytes()
}

/// A stored key, opened. One stored in the clear (by a version before keys
/// were sealed) is parsed as it is and sealed in place.
async fn open(
    db: &DatabaseConnection,
    sealing: &SealingKey,
    row: &entity::Model,
) -> Result<SigningKey, KeyError> {
    if row.private_key_pem.starts_with("-----BEGIN") {
        let key = SigningKey::from_pem(&row.private_key_pem)?;
        entity::Entity::update_many()
            .col_expr(
                entity::Column::PrivateKeyPem,
                sea_orm::sea_query::Expr::value(
                    sealing.seal_bytes(&seal_context(&row.kid), key.pem.as_bytes())?,
                ),
            )
            .filter(entity::Column::Kid.eq(row.kid.clone()))
            .filter(entity::Column::PrivateKeyPem.eq(row.private_key_pem.clone()))
            .exec(db)
            .await
            .map_err(KeyError::Database)?;
        return Ok(key);
    }
    let pem = sealing.open_bytes(&seal_context(&row.kid), &row.private_key_pem)?;
    // A key is ASCII PEM; anything else opened from the row is damage.
    SigningKey::from_pem(&String::from_utf8_lossy(&pem))
}

async fn insert_if_absent(
    db: &DatabaseConnection,
    sealing: &SealingKey,
    key: &SigningKey,
) -> Result<(), KeyError> {
    let row = entity::ActiveModel {
        kid: Set(key.kid.clone()),
        algorithm: Set(ALGORITHM_NAME.to_owned()),
        private_key_pem: Set(sealing.seal_bytes(&seal_context(&key.kid), key.pem.as_bytes())?),
        created_at: Set(Utc::now()),
        retired_at: Set(None),
    };
    entity::Entity::insert(row)
        .on_conflict(
            OnConflict::column(entity::Column::Kid)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
        .map_err(KeyError::Database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_a_pem_round_trip_with_the_same_kid() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.pem).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.public_jwk(), again.public_jwk());
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn garbage_pem_is_rejected() {
        assert!(matches!(
            SigningKey::from_pem("not a key"),
            Err(KeyError::Parse(_))
        ));
    }
}
