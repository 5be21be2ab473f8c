//! Sign-in throttling: after repeated failures for one username, further attempts are refused
//! for a while, so a password cannot be guessed at network speed.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;

/// Failures allowed within the window before sign-in is refused.
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered, and how long a locked name stays locked.
pub const WINDOW_MINUTES: i64 = 15;
/// Names tracked at most; the oldest records are dropped past this, so memory stays bounded.
pub const MAX_TRACKED: usize = 10_000;

struct Failures {
    count: u32,
    first_at: DateTime<Utc>,
}

/// Failed sign-ins per username.
#[derive(Default)]
pub struct LoginThrottle {
    failures: HashMap<String, Failures>,
}

impl LoginThrottle {
    /// `Err(retry_after)` when the name is locked at `now`.
    pub fn check(&self, username: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        match self.failures.get(username) {
            Some(f)
                if f.count >= MAX_FAILURES
                    && now - f.first_at < Duration::minutes(WINDOW_MINUTES) =>
            {
                Err(f.first_at + Duration::minutes(WINDOW_MINUTES) - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, username: &str, now: DateTime<Utc>) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(username) {
            self.failures
                .retain(|_, f| now - f.first_at < Duration::minutes(WINDOW_MINUTES));
            if self.failures.len() >= MAX_TRACKED {
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.first_at)
                    .map(|(k, _)| k.clone())
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let entry = self
            .failures
            .entry(username.to_owned())
            .or_insert(Failures {
                count: 0,
                first_at: now,
            });
        if now - entry.first_at >= Duration::minutes(WINDOW_MINUTES) {
            *entry = Failures {
                count: 0,
                first_at: now,
            };
        }
        entry.count += 1;
    }

    pub fn record_success(&mut self, username: &str) {
        self.failures.remove(username);
    }
}
