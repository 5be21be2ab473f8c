//! Secrets the server must read back (TOTP seeds, outbound trunk passwords, the identity and
//! CRM webhook secrets) are sealed at rest with ChaCha20-Poly1305 under a 32-byte key the
//! server holds outside the database. A sealed value is text:
//! `sealed:v1:<key id>:<nonce and ciphertext, hex>`, where the key id is the first 8 hex digits
//! of the key's SHA-256, so values sealed under an older key are still read while a rotation
//! re-seals them. The column's name is the associated data, so a value cannot be moved to
//! another column and opened there. A value without the prefix is a clear one from before
//! sealing; `Store::reseal_secrets` seals those on start.

use crate::{StoreError, StoreResult};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;

struct SealingKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let id = hex(&Sha256::digest(bytes)[..4]);
        SealingKey {
            id,
            cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }
}

/// The key that seals, and older keys that still open what they sealed. Without a current key
/// (`none`, for tools and tests) values are written and read in clear.
#[derive(Default)]
pub struct SecretKeys {
    current: Option<SealingKey>,
    older: Vec<SealingKey>,
}

impl SecretKeys {
    pub fn none() -> Self {
        SecretKeys::default()
    }

    pub fn new(current: &[u8; 32], older: &[[u8; 32]]) -> Self {
        SecretKeys {
            current: Some(SealingKey::new(current)),
            older: older.iter().map(SealingKey::new).collect(),
        }
    }

    /// The current key's id, if there is one.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    /// Seals `clear` for `column` under the current key (in clear without one).
    pub fn seal(&self, column: &str, clear: &str) -> StoreResult<String> {
        let Some(key) = &self.current else {
            return Ok(clear.to_owned());
        };
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Corrupt(format!("cannot seal {column}")))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}:{}", key.id, hex(&bytes)))
    }

    pub fn seal_opt(&self, column: &str, clear: Option<&str>) -> StoreResult<Option<String>> {
        clear.map(|c| self.seal(column, c)).transpose()
    }

    /// Opens a stored value of `column`: a sealed one with whichever key sealed it, a clear
    /// one as it is.
    pub fn open(&self, column: &str, stored: &str) -> StoreResult<String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let corrupt = |why: &str| StoreError::Corrupt(format!("sealed {column}: {why}"));
        let (id, body) = rest.split_once(':').ok_or_else(|| corrupt("no key id"))?;
        let key = self
            .current
            .iter()
            .chain(&self.older)
            .find(|k| k.id == id)
            .ok_or_else(|| {
                corrupt(&format!(
                    "sealed with key {id}, which this server does not hold \
                     (set SWITCHBOARD_SECRET_KEY_OLD to open it)"
                ))
            })?;
        let bytes = unhex(body).ok_or_else(|| corrupt("not hex"))?;
        if bytes.len() < NONCE_BYTES {
            return Err(corrupt("too short"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let clear = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| corrupt("does not open (wrong key or altered)"))?;
        String::from_utf8(clear).map_err(|_| corrupt("not text"))
    }

    pub fn open_opt(&self, column: &str, stored: Option<String>) -> StoreResult<Option<String>> {
        stored.map(|s| self.open(column, &s)).transpose()
    }

    /// Whether a stored value should be sealed again: it is clear, or sealed under a key that
    /// is not the current one. Always false without a current key.
    pub fn needs_reseal(&self, stored: &str) -> bool {
        match &self.current {
            None => false,
            Some(key) => !stored
                .strip_prefix(PREFIX)
                .is_some_and(|rest| rest.starts_with(&format!("{}:", key.id))),
        }
    }
}

/// Whether a stored value is sealed (for tests and diagnostics).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
