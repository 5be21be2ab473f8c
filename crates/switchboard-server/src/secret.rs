//! Secrets: random tokens, hashes of tokens, Apps API keys, password hashing (argon2), TOTP
//! (RFC 6238), and the key that seals secrets at rest (`SWITCHBOARD_SECRET_KEY` or the data
//! directory's `secret.key`) with its rotation.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use switchboard_store::ApiKey;
use totp_rs::{Algorithm, Secret, TOTP};

/// Hex text of `bytes` random bytes from the operating system.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    hex(&buffer)
}

/// A password made of unambiguous letters and digits (for generated demo and admin passwords).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buffer = [0u8; 16];
    OsRng.fill_bytes(&mut buffer);
    buffer
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a high-entropy token, as hex. Tokens and API secrets are stored only this way.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Compares two strings in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Hashes a password with argon2id. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Hashes a password on the blocking pool (argon2 is slow on purpose).
pub async fn hash_password_off_thread(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| e.to_string())?
}

/// The scopes an Apps API key may be given: `recordings` downloads call recordings.
pub const API_KEY_SCOPES: [&str; 1] = ["recordings"];

/// A new Apps API key named `name` and its secret. The secret is shown once and kept only as
/// its hash.
pub fn new_api_key(name: String, now: DateTime<Utc>) -> (ApiKey, String) {
    let secret = random_token(32);
    let key = ApiKey {
        key_id: format!("sbk_{}", random_token(10)),
        name,
        secret_hash: sha256_hex(&secret),
        created_at: now,
        scopes: Vec::new(),
    };
    (key, secret)
}

/// Checks a password against a stored argon2 hash. Slow on purpose: call it off the async threads.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Checks a password against a stored argon2 hash like `verify_password`, computing in
/// `memory` (grown to the hash's memory cost when smaller) instead of a fresh allocation. The
/// sign-in path keeps one such buffer per hashing slot: allocating 19 MiB a check leaves the
/// allocator holding freed blocks in every thread's arena, so a flood of failed sign-ins would
/// raise the server's memory by hundreds of MiB that it never gives back.
pub fn verify_password_in(password: &str, stored: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&hash),
        argon2::Algorithm::try_from(hash.algorithm),
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), argon2::Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_ok()
        && computed.len() == expected.as_bytes().len()
        && computed
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A hash to verify against when a username does not exist, so that the answer takes as long
/// as for a real user and does not reveal which names exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing").unwrap_or_default())
}

/// Seconds in one TOTP step.
pub const TOTP_STEP: u64 = 30;

/// A new random TOTP secret (160 bits, as RFC 4226 recommends), base32 encoded.
pub fn new_totp_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// The `otpauth://` URI an authenticator app scans to enrol.
pub fn totp_uri(secret: &str, username: &str, issuer: &str) -> String {
    let issuer: String = issuer
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("otpauth://totp/{issuer}:{username}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period={TOTP_STEP}")
}

/// Checks a 6-digit code against the secret at `unix_seconds`, allowing one step of clock skew
/// either way. Returns the matching time step, so the caller can refuse its reuse.
pub fn check_totp(secret: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    let totp = TOTP::new(Algorithm::SHA1, 6, 0, TOTP_STEP, bytes).ok()?;
    let step = unix_seconds / TOTP_STEP;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| constant_time_eq(&totp.generate(s * TOTP_STEP), code))
}

/// The file in the data directory holding the sealing keys: one key a line, 64 hex digits,
/// the current one first and older ones (during a rotation) after it.
pub const KEY_FILE: &str = "secret.key";

/// A problem with the sealing keys, said plainly at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is not a key: a key is 64 hex digits (32 bytes), such as `openssl rand -hex 32` prints")]
    Malformed(String),
    #[error("cannot read or write {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn parse_key(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    let mut key = [0u8; 32];
    if text.len() != 64 {
        return Err(KeyError::Malformed(what.to_owned()));
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = text
            .get(2 * i..2 * i + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .ok_or_else(|| KeyError::Malformed(what.to_owned()))?;
    }
    Ok(key)
}

/// A new random key, as the key file holds it.
pub fn new_key_text() -> String {
    random_token(32)
}

/// Writes the key file (owner-only permissions), replacing it atomically.
pub fn write_key_file(data_dir: &std::path::Path, keys: &[String]) -> Result<(), KeyError> {
    let path = data_dir.join(KEY_FILE);
    let temporary = data_dir.join(format!("{KEY_FILE}.{}.tmp", random_token(4)));
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
pub fn read_or_create_key_file(data_dir: &std::path::Path) -> Result<Vec<String>, KeyError> {
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
            tracing::info!(path = %path.display(), "made a new key for secrets at rest; back it up with the database");
            Ok(keys)
        }
        Err(source) => Err(KeyError::File { path, source }),
    }
}

/// The sealing keys the configuration names: `SWITCHBOARD_SECRET_KEY` (and
/// `SWITCHBOARD_SECRET_KEY_OLD`) when set, else the data directory's key file.
pub fn secret_keys(config: &crate::Config) -> Result<switchboard_store::SecretKeys, KeyError> {
    let (current, mut older) = match &config.secret_key {
        Some(key) => (key.clone(), Vec::new()),
        None => {
            let mut keys = read_or_create_key_file(&config.data_dir)?.into_iter();
            let current = keys
                .next()
                .ok_or_else(|| KeyError::Malformed(format!("the empty {KEY_FILE}")))?;
            (current, keys.collect())
        }
    };
    older.extend(config.secret_key_old.iter().cloned());
    let current = parse_key(&current, "the current secret key")?;
    let older = older
        .iter()
        .map(|k| parse_key(k, "an old secret key"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(switchboard_store::SecretKeys::new(&current, &older))
}

/// Rotates the key file's key: a new key becomes current, every stored secret is sealed
/// under it (the old key still opening them meanwhile), then the old key is dropped. Returns
/// how many secrets were sealed again. Run it with the servers stopped, or restart them after:
/// a server still holding only the old key cannot open what the new one sealed.
pub async fn rotate_key_file(config: &crate::Config) -> Result<u64, String> {
    if config.secret_key.is_some() {
        return Err(
            "the key comes from SWITCHBOARD_SECRET_KEY: to rotate it, set \
             SWITCHBOARD_SECRET_KEY to a new key and SWITCHBOARD_SECRET_KEY_OLD to the old one \
             and start the server once (it seals every secret again on start), then remove \
             SWITCHBOARD_SECRET_KEY_OLD"
                .into(),
        );
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
    let old = read_or_create_key_file(&config.data_dir).map_err(|e| e.to_string())?;
    let new = new_key_text();
    let mut during = vec![new.clone()];
    during.extend(old);
    write_key_file(&config.data_dir, &during).map_err(|e| e.to_string())?;
    let keys = secret_keys(config).map_err(|e| e.to_string())?;
    let store = switchboard_store::open_sealed(&config.database_url, keys)
        .await
        .map_err(|e| e.to_string())?;
    let count = store.reseal_secrets().await.map_err(|e| e.to_string())?;
    write_key_file(&config.data_dir, &[new]).map_err(|e| e.to_string())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_and_allows_one_step_of_skew() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890"; we use 6 digits of the 8.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(check_totp(&secret, "287082", 59), Some(1));
        assert_eq!(
            check_totp(&secret, "081804", 1111111109),
            Some(1111111109 / 30)
        );
        assert_eq!(
            check_totp(&secret, "081804", 1111111109 + 30),
            Some(1111111109 / 30),
            "one step late is accepted"
        );
        assert_eq!(check_totp(&secret, "081804", 1111111109 + 90), None);
        assert_eq!(check_totp(&secret, "08180", 1111111109), None);
        assert_eq!(check_totp(&secret, "abcdef", 1111111109), None);
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(parse_key(&"ab".repeat(32), "k").is_ok());
        assert!(parse_key(&"ab".repeat(31), "k").is_err());
        assert!(parse_key(&"zz".repeat(32), "k").is_err());
        assert!(
            parse_key(&"é".repeat(32), "k").is_err(),
            "not a panic on multi-byte text"
        );
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse").unwrap(), hash, "salted");
        // The same answers with memory reused from one check to the next.
        let mut memory = Vec::new();
        assert!(verify_password_in("correct horse", &hash, &mut memory));
        assert!(!verify_password_in("correct horsf", &hash, &mut memory));
        assert!(!verify_password_in(
            "correct horse",
            "not a hash",
            &mut memory
        ));
        assert!(verify_password_in("correct horse", &hash, &mut memory));
        assert_eq!(memory.len(), argon2::Params::DEFAULT_M_COST as usize);
    }
}
