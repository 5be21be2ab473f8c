//! The retry policy for background jobs (CRM deliveries and the like): exponential backoff with
//! a cap, then giving up.

use chrono::{DateTime, Duration, Utc};

/// The first retry waits this long; each later one twice as long as the one before.
pub const FIRST_DELAY_SECONDS: i64 = 5;
/// No wait is longer than this.
pub const MAX_DELAY_SECONDS: i64 = 3600;
/// After this many failed attempts the job is given up (about a day of trying).
pub const MAX_ATTEMPTS: u32 = 30;

/// When to try again after `failed_attempts` failures, or `None` to give up.
pub fn next_attempt(failed_attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if failed_attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exponent = failed_attempts.saturating_sub(1).min(20);
    let delay = (FIRST_DELAY_SECONDS << exponent).min(MAX_DELAY_SECONDS);
    Some(now + Duration::seconds(delay))
}
