//! Secrets: random tokens, hashes of tokens, Apps API keys, password hashing (argon2) and TOTP
//! (RFC 6238). The master keys that seal secrets and files at rest are `vault.rs`.

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
