//! The master keys for data at rest: where they come from, what they protect, and their
//! rotation.
//!
//! One master key is current; older ones (left by an unfinished rotation, or named by
//! `SWITCHBOARD_SECRET_KEY_OLD`) still open what they sealed. The current key is
//! `SWITCHBOARD_SECRET_KEY` (32 bytes as 64 hex digits or in base64) or, when that is unset,
//! the first line of `<data dir>/secret.key`, which the server makes with mode 0600 on first
//! start; later lines of the file are older keys.
//!
//! A master key protects two things. The secrets in the database are sealed with it by
//! `switchboard-store` (`SecretKeys`). Blobs (recordings, attachments, tones) each have a data
//! key of their own, fresh and random, that encrypts the blob (AES-256-GCM, see
//! `blobs/sealed.rs`) and is kept in the blob's header wrapped (AES key wrap, RFC 3394) under a
//! wrapping key derived from the master key with HKDF-SHA256, so the master key itself never
//! serves two ciphers. The header names the master key by its id (the first 8 bytes of its
//! SHA-256; the store's id is the first 4 of the same), so a rotation re-wraps a 48-byte slot in
//! each header and rewrites no file.

use crate::config::Config;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_256};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The file in the data directory holding the master keys: one key a line, the current one
/// first and older ones (during a rotation) after it.
pub const KEY_FILE: &str = "secret.key";

/// Bytes a sealed piece carries besides its plaintext: the nonce before it, the tag after it.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_BYTES;
const TAG_BYTES: usize = 16;
/// A 32-byte data key wrapped with AES key wrap: the key and an 8-byte integrity block.
const WRAPPED_BYTES: usize = 40;

/// A problem with the master keys, said plainly at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is not a key: a key is 32 bytes written as 64 hex digits or in base64, such as `openssl rand -hex 32` or `openssl rand -base64 32` prints")]
    Malformed(String),
    #[error("cannot read or write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A failure to wrap, unwrap, seal or open under the keys.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed under master key {0}, which this server does not hold: SWITCHBOARD_SECRET_KEY or secret.key holds another key (give it the old one as SWITCHBOARD_SECRET_KEY_OLD)")]
    UnknownKey(KeyId),
    #[error("its data key does not unwrap under master key {0}: the header was altered")]
    Unwrap(KeyId),
    #[error("it does not authenticate under its data key")]
    Unauthentic,
    #[error("the system's random source or cipher failed")]
    Crypto,
}

/// The id of a master key: the first 8 bytes of its SHA-256. Ids are stored in blob headers,
/// so a blob names the key that wrapped its data key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    pub fn from_bytes(bytes: [u8; 8]) -> KeyId {
        KeyId(bytes)
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A blob's data key as its header keeps it: wrapped, with the id of the master key that
/// wrapped it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeySlot {
    pub key: KeyId,
    wrapped: [u8; WRAPPED_BYTES],
}

impl KeySlot {
    /// The slot's size in a header.
    pub const BYTES: usize = 8 + WRAPPED_BYTES;

    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut bytes = [0u8; Self::BYTES];
        bytes[..8].copy_from_slice(&self.key.0);
        bytes[8..].copy_from_slice(&self.wrapped);
        bytes
    }

    pub fn from_bytes(bytes: &[u8; Self::BYTES]) -> KeySlot {
        let mut key = [0u8; 8];
        key.copy_from_slice(&bytes[..8]);
        let mut wrapped = [0u8; WRAPPED_BYTES];
        wrapped.copy_from_slice(&bytes[8..]);
        KeySlot {
            key: KeyId(key),
            wrapped,
        }
    }
}

/// One master key and what is derived from it.
struct MasterKey {
    id: KeyId,
    /// The key itself: the store's sealing key.
    secret: [u8; 32],
    /// The key that wraps blobs' data keys (HKDF-SHA256 of the master key).
    wrapping: [u8; 32],
}

impl MasterKey {
    fn new(secret: [u8; 32]) -> MasterKey {
        use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
        let mut id = [0u8; 8];
        id.copy_from_slice(&Sha256::digest(secret)[..8]);
        let mut wrapping = [0u8; 32];
        Salt::new(HKDF_SHA256, b"switchboard")
            .extract(&secret)
            .expand(&[b"blob data key wrapping v1"], HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut wrapping))
            .expect("HKDF-SHA256 gives 32 bytes");
        MasterKey {
            id: KeyId(id),
            secret,
            wrapping,
        }
    }
}

/// The master keys a server holds: the current one and older ones that still open.
pub struct Vault {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl Vault {
    /// A vault of the given keys (tests and benchmarks; a server calls `load`).
    pub fn new(current: [u8; 32], older: &[[u8; 32]]) -> Vault {
        let current = MasterKey::new(current);
        let older = older
            .iter()
            .map(|k| MasterKey::new(*k))
            .filter(|k| k.id != current.id)
            .collect();
        Vault { current, older }
    }

    /// The keys the configuration names: `SWITCHBOARD_SECRET_KEY` when set, else the data
    /// directory's key file (made with a new key when missing); and `SWITCHBOARD_SECRET_KEY_OLD`.
    pub fn load(config: &Config) -> Result<Vault, KeyError> {
        let mut keys = Vec::new();
        match &config.secret_key {
            Some(text) => keys.push(parse_key(text, "SWITCHBOARD_SECRET_KEY")?),
            None => {
                let path = config.data_dir.join(KEY_FILE);
                let lines = read_or_create_key_file(&config.data_dir)?;
                for (number, line) in lines.iter().enumerate() {
                    let what = format!("line {} of {}", number + 1, path.display());
                    keys.push(parse_key(line, &what)?);
                }
            }
        }
        for text in &config.secret_key_old {
            keys.push(parse_key(text, "a key of SWITCHBOARD_SECRET_KEY_OLD")?);
        }
        let (current, older) = keys.split_first().ok_or_else(|| {
            KeyError::Malformed(format!(
                "the empty {}",
                config.data_dir.join(KEY_FILE).display()
            ))
        })?;
        Ok(Vault::new(*current, older))
    }

    /// The id of the key that wraps new data keys.
    pub fn current_id(&self) -> KeyId {
        self.current.id
    }

    /// The store's sealing keys: the same master keys.
    pub fn secret_keys(&self) -> switchboard_store::SecretKeys {
        let older: Vec<[u8; 32]> = self.older.iter().map(|k| k.secret).collect();
        switchboard_store::SecretKeys::new(&self.current.secret, &older)
    }

    fn key(&self, id: KeyId) -> Result<&MasterKey, VaultError> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == id)
            .ok_or(VaultError::UnknownKey(id))
    }

    /// A fresh random data key for a new blob, and its slot wrapped under the current key.
    pub fn new_data_key(&self) -> Result<(DataKey, KeySlot), VaultError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| VaultError::Crypto)?;
        let slot = wrap(&self.current, &bytes)?;
        let key = DataKey::new(&bytes)?;
        bytes.fill(0);
        Ok((key, slot))
    }

    /// The data key a slot holds, unwrapped with whichever master key wrapped it.
    pub fn open(&self, slot: &KeySlot) -> Result<DataKey, VaultError> {
        let bytes = unwrap(self.key(slot.key)?, slot)?;
        DataKey::new(&bytes)
    }

    /// The slot wrapped again under the current key, or `None` when it already is.
    pub fn rewrap(&self, slot: &KeySlot) -> Result<Option<KeySlot>, VaultError> {
        if slot.key == self.current.id {
            return Ok(None);
        }
        let mut bytes = unwrap(self.key(slot.key)?, slot)?;
        let slot = wrap(&self.current, &bytes);
        bytes.fill(0);
        slot.map(Some)
    }
}

fn wrap(master: &MasterKey, data_key: &[u8; 32]) -> Result<KeySlot, VaultError> {
    let kek = AesKek::new(&AES_256, &master.wrapping).map_err(|_| VaultError::Crypto)?;
    let mut wrapped = [0u8; WRAPPED_BYTES];
    let written = kek
        .wrap(data_key, &mut wrapped)
        .map_err(|_| VaultError::Crypto)?
        .len();
    if written != WRAPPED_BYTES {
        return Err(VaultError::Crypto);
    }
    Ok(KeySlot {
        key: master.id,
        wrapped,
    })
}

fn unwrap(master: &MasterKey, slot: &KeySlot) -> Result<[u8; 32], VaultError> {
    let kek = AesKek::new(&AES_256, &master.wrapping).map_err(|_| VaultError::Crypto)?;
    let mut out = [0u8; WRAPPED_BYTES];
    let bytes = kek
        .unwrap(&slot.wrapped, &mut out)
        .map_err(|_| VaultError::Unwrap(slot.key))?;
    let mut key = [0u8; 32];
    if bytes.len() != key.len() {
        return Err(VaultError::Unwrap(slot.key));
    }
    key.copy_from_slice(bytes);
    out.fill(0);
    Ok(key)
}

/// A blob's data key: AES-256-GCM, each piece sealed with a fresh random nonce.
pub struct DataKey {
    aead: LessSafeKey,
}

impl DataKey {
    fn new(bytes: &[u8; 32]) -> Result<DataKey, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| VaultError::Crypto)?;
        Ok(DataKey {
            aead: LessSafeKey::new(key),
        })
    }

    /// Seals `plain` into `out` (exactly `plain.len() + SEAL_OVERHEAD` bytes) as nonce,
    /// ciphertext and tag. The nonce is random: a data key seals at most a few million pieces
    /// (a 4 GiB blob's segments, each rewritten a few times), far below the 2^32 at which random
    /// 96-bit nonces would risk a repeat.
    pub fn seal(&self, aad: &[u8], plain: &[u8], out: &mut [u8]) -> Result<(), VaultError> {
        if out.len() != plain.len() + SEAL_OVERHEAD {
            return Err(VaultError::Crypto);
        }
        let (nonce, rest) = out.split_at_mut(NONCE_LEN);
        aws_lc_rs::rand::fill(nonce).map_err(|_| VaultError::Crypto)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Crypto)?;
        let (ciphertext, tag) = rest.split_at_mut(plain.len());
        self.aead
            .seal_out_of_place_scatter(nonce, Aad::from(aad), plain, ciphertext, &[], tag)
            .map_err(|_| VaultError::Crypto)
    }

    /// Opens a sealed piece in place; the plaintext is `sealed[NONCE_BYTES..][..len]` where
    /// `len` is what it returns.
    pub fn open(&self, aad: &[u8], sealed: &mut [u8]) -> Result<usize, VaultError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(VaultError::Unauthentic);
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Crypto)?;
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), rest)
            .map_err(|_| VaultError::Unauthentic)?;
        Ok(plain.len())
    }
}

/// Where a sealed piece's plaintext begins.
pub const NONCE_BYTES: usize = NONCE_LEN;

/// A key from its text: 64 hex digits, or base64 (standard or URL-safe, padded or not) of 32
/// bytes. `what` names where it came from, for the error.
pub fn parse_key(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let text = text.trim();
    let malformed = || KeyError::Malformed(what.to_owned());
    let mut key = [0u8; 32];
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = text
                .get(2 * i..2 * i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(malformed)?;
        }
        return Ok(key);
    }
    let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(malformed)?;
    if decoded.len() != key.len() {
        return Err(malformed());
    }
    key.copy_from_slice(&decoded);
    Ok(key)
}

/// A new random key, as the key file holds it (64 hex digits).
pub fn new_key_text() -> String {
    crate::secret::random_token(32)
}

/// Writes the key file (owner-only permissions), replacing it atomically.
pub fn write_key_file(data_dir: &Path, keys: &[String]) -> Result<(), KeyError> {
    let path = data_dir.join(KEY_FILE);
    let temporary = data_dir.join(format!("{KEY_FILE}.{}.tmp", crate::secret::random_token(4)));
    let failed = |source| KeyError::File {
        path: path.clone(),
        source,
    };
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(failed)?;
        file.write_all(format!("{}\n", keys.join("\n")).as_bytes())
            .map_err(failed)?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, &path).map_err(failed)
}

/// The key file's keys, current first; made with a new key when missing.
pub fn read_or_create_key_file(data_dir: &Path) -> Result<Vec<String>, KeyError> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let keys = vec![new_key_text()];
            write_key_file(data_dir, &keys)?;
            tracing::info!(path = %path.display(), "made a new master key for data at rest; back it up apart from the data directory");
            Ok(keys)
        }
        Err(source) => Err(KeyError::File { path, source }),
    }
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// The master key everything is now under.
    pub key: KeyId,
    /// Whether it finished a rotation an earlier run left unfinished instead of making a key.
    pub resumed: bool,
    /// Secrets in the database sealed again.
    pub secrets: u64,
    /// The blobs' headers.
    pub files: crate::blobs::Rewrapped,
    /// Whether the older keys were dropped from the key file (only once nothing needs them).
    pub dropped_old_keys: bool,
}

/// Rotates the master key: a new key becomes current (kept first in the key file, the old ones
/// after it, so everything stays readable meanwhile), every stored secret is sealed under it
/// and every blob's data key re-wrapped under it (its header's key slot rewritten in place;
/// no file is rewritten), then the old keys are dropped from the key file.
///
/// Interrupted, it is run again: a key file that still holds more than one key is an
/// unfinished rotation, which is finished with its first key instead of a new one; blobs
/// already under that key are skipped. With `SWITCHBOARD_SECRET_KEY` set no key is made: the
/// operator has put the new key there and the old one in `SWITCHBOARD_SECRET_KEY_OLD`, and
/// this re-seals and re-wraps under it. A file that cannot be re-wrapped keeps the old keys
/// in the key file. Run it with the servers stopped: a running server holds the keys it
/// started with.
pub async fn rotate(config: &Config) -> Result<Rotation, String> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
    let mut resumed = false;
    if config.secret_key.is_none() {
        let keys = read_or_create_key_file(&config.data_dir).map_err(|e| e.to_string())?;
        if keys.len() > 1 {
            resumed = true;
        } else {
            let mut during = vec![new_key_text()];
            during.extend(keys);
            write_key_file(&config.data_dir, &during).map_err(|e| e.to_string())?;
        }
    }
    let vault = std::sync::Arc::new(Vault::load(config).map_err(|e| e.to_string())?);
    let store = switchboard_store::open_sealed(&config.database_url, vault.secret_keys())
        .await
        .map_err(|e| e.to_string())?;
    let secrets = store.reseal_secrets().await.map_err(|e| e.to_string())?;
    let folders = crate::blobs::folders(&config.data_dir);
    let rewrap_vault = vault.clone();
    let files = tokio::task::spawn_blocking(move || {
        let mut total = crate::blobs::Rewrapped::default();
        for folder in folders {
            total.add(crate::blobs::LocalBlobs::new(folder, rewrap_vault.clone()).rewrap_all());
        }
        total
    })
    .await
    .map_err(|e| e.to_string())?;
    let mut dropped_old_keys = false;
    if config.secret_key.is_none() && files.failed.is_empty() {
        let keys = read_or_create_key_file(&config.data_dir).map_err(|e| e.to_string())?;
        if keys.len() > 1 {
            write_key_file(&config.data_dir, &keys[..1]).map_err(|e| e.to_string())?;
            dropped_old_keys = true;
        }
    }
    Ok(Rotation {
        key: vault.current_id(),
        resumed,
        secrets,
        files,
        dropped_old_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_bytes_in_hex_or_base64() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_key(&hex, "k").unwrap().to_vec(), bytes);
        assert_eq!(parse_key(&hex.to_uppercase(), "k").unwrap().to_vec(), bytes);
        use base64::Engine;
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let text = engine.encode(&bytes);
            assert_eq!(parse_key(&text, "k").unwrap().to_vec(), bytes, "{text}");
        }
        assert!(parse_key(&"ab".repeat(31), "k").is_err());
        assert!(parse_key(&"zz".repeat(32), "k").is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
        assert!(parse_key(&short, "k").is_err(), "31 bytes is not a key");
        assert!(
            parse_key(&"é".repeat(32), "k").is_err(),
            "not a panic on multi-byte text"
        );
        let error = parse_key("secret", "SWITCHBOARD_SECRET_KEY").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("SWITCHBOARD_SECRET_KEY is not a key"),
            "{error}"
        );
    }

    #[test]
    fn a_data_key_opens_under_the_key_that_wrapped_it_and_rewraps_under_the_current_one() {
        let old = Vault::new([1; 32], &[]);
        let (key, slot) = old.new_data_key().unwrap();
        let mut sealed = vec![0u8; 5 + SEAL_OVERHEAD];
        key.seal(b"aad", b"hello", &mut sealed).unwrap();

        let rotated = Vault::new([2; 32], &[[1; 32]]);
        let moved = rotated.rewrap(&slot).unwrap().expect("under an older key");
        assert_eq!(moved.key, rotated.current_id());
        assert_ne!(moved.wrapped, slot.wrapped);
        assert_eq!(rotated.rewrap(&moved).unwrap(), None, "already current");
        for slot in [slot, moved] {
            let mut copy = sealed.clone();
            let len = rotated
                .open(&slot)
                .unwrap()
                .open(b"aad", &mut copy)
                .unwrap();
            assert_eq!(&copy[NONCE_BYTES..NONCE_BYTES + len], b"hello");
        }

        // A vault without the old key says which key it lacks; an altered slot does not unwrap.
        let other = Vault::new([3; 32], &[]);
        assert!(matches!(other.open(&slot), Err(VaultError::UnknownKey(id)) if id == slot.key));
        let mut bytes = slot.to_bytes();
        bytes[20] ^= 1;
        assert!(matches!(
            old.open(&KeySlot::from_bytes(&bytes)),
            Err(VaultError::Unwrap(_))
        ));
        // Altered ciphertext or other associated data does not open.
        let mut altered = sealed.clone();
        altered[NONCE_BYTES] ^= 1;
        assert!(key.open(b"aad", &mut altered).is_err());
        assert!(key.open(b"aae", &mut sealed.clone()).is_err());
    }

    #[test]
    fn the_key_id_begins_with_the_stores_id() {
        let vault = Vault::new([9; 32], &[]);
        let keys = vault.secret_keys();
        assert!(vault
            .current_id()
            .to_string()
            .starts_with(keys.current_id().unwrap()));
    }
}
