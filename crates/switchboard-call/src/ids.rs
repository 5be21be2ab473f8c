//! Typed ids the engine hands out, and the randomness it uses: a seeded generator, so a test
//! that fixes the seed sees the same tags, branches and ids every run.

use chrono::{DateTime, Utc};
use std::fmt;

/// A call leg, unique for the engine's life (legs of every call share one sequence).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// An agent's browser session (an open adapter that can take calls), named by the shell.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// The shell's token for an API command, returned with its answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReplyToken(pub u64);

/// SplitMix64: small, fast and good enough for SIP tags, branches and id bits. Not for secrets
/// (the digest nonce is signed with a secret the shell passes in).
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 32 hex digits, for tags, branches and Call-IDs.
    pub fn token(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }

    /// A time-ordered UUID (version 7) for `now`.
    pub fn uuid_v7(&mut self, now: DateTime<Utc>) -> uuid::Uuid {
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_be_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }
}
