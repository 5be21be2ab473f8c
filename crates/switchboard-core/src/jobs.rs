//! The retry policy for background jobs (CRM deliveries, recording uploads and the like):
//! exponential backoff with a cap and jitter, a server's own Retry-After honoured, then giving
//! up after a number of attempts or once the work is too old to be worth doing (REC-3).
//!
//! Pure: the time and the jitter are inputs, so a test can say exactly when the next try is.

use chrono::{DateTime, Duration, Utc};

/// The first retry waits this long; each later one twice as long as the one before.
pub const FIRST_DELAY_SECONDS: i64 = 5;
/// No wait is longer than this.
pub const MAX_DELAY_SECONDS: i64 = 3600;
/// After this many failed attempts the job is given up (about a day of trying).
pub const MAX_ATTEMPTS: u32 = 30;

/// How a kind of job is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; each later wait doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Give up after this many failed attempts.
    pub max_attempts: u32,
    /// Give up once the job is older than this, whatever its attempts (a recording must be in
    /// the CRM before the retention cap deletes it).
    pub max_age: Option<Duration>,
    /// Spread waits between half and all of the backoff, so that many jobs failing together
    /// (a CRM outage) do not all come back in the same second.
    pub jitter: bool,
}

impl RetryPolicy {
    /// CRM deliveries and mail: plain backoff, about a day of trying.
    pub const STANDARD: RetryPolicy = RetryPolicy {
        first_delay: Duration::seconds(FIRST_DELAY_SECONDS),
        max_delay: Duration::seconds(MAX_DELAY_SECONDS),
        max_attempts: MAX_ATTEMPTS,
        max_age: None,
        jitter: false,
    };

    /// The backoff before jitter after `failed_attempts` failures (at least one).
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(30);
        let first = self.first_delay.num_milliseconds().max(1);
        let delay = first.saturating_mul(1_i64 << exponent);
        Duration::milliseconds(delay.min(self.max_delay.num_milliseconds()))
    }

    /// When to try again after `failed_attempts` failures of a job created at `created_at`, or
    /// `None` to give up. `jitter` is a number in [0, 1) the caller draws; `retry_after` is a
    /// wait the other side asked for (HTTP 429 or 503 Retry-After), which is never shortened.
    pub fn next_attempt(
        &self,
        failed_attempts: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        if failed_attempts >= self.max_attempts {
            return None;
        }
        let backoff = self.backoff(failed_attempts);
        let mut wait = if self.jitter {
            let jitter = if jitter.is_finite() {
                jitter.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let half = backoff.num_milliseconds() / 2;
            Duration::milliseconds(half + (half as f64 * jitter) as i64)
        } else {
            backoff
        };
        if let Some(asked) = retry_after {
            wait = wait.max(asked);
        }
        let at = now.checked_add_signed(wait)?;
        match self.max_age {
            Some(age) if at > created_at.checked_add_signed(age)? => None,
            _ => Some(at),
        }
    }
}

/// When to try again after `failed_attempts` failures, or `None` to give up (the standard
/// policy).
pub fn next_attempt(failed_attempts: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    RetryPolicy::STANDARD.next_attempt(failed_attempts, now, now, None, 0.0)
}
