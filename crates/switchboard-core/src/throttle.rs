//! Throttling failed authentication, by source address and by account, for sign-in and for
//! SIP digest. A password cannot be guessed at network speed, and a stranger cannot lock out
//! the account's owner:
//!
//! - **By source.** After `free_failures` failures a source's answers are delayed, doubling
//!   per failure up to `max_delay`; after `source_refuse_after` it is refused until the window
//!   passes. A success from the source forgives it.
//! - **By account.** After `account_slow_after` failures (from anywhere) answers for the
//!   account are delayed, and after `account_refuse_after` refused, but only for sources
//!   that have not signed in as that account before: the owner's own address stays served.
//!
//! Memory is bounded: past `max_tracked` records the oldest go first.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub free_failures: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub source_refuse_after: u32,
    pub account_slow_after: u32,
    pub account_refuse_after: u32,
    /// How long failures count, and how long a refusal lasts at most.
    pub window: Duration,
    /// How long a source that signed in stays trusted for its account.
    pub trust: Duration,
    pub max_tracked: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            free_failures: 3,
            first_delay: Duration::milliseconds(500),
            max_delay: Duration::seconds(8),
            source_refuse_after: 20,
            account_slow_after: 10,
            account_refuse_after: 50,
            window: Duration::minutes(15),
            trust: Duration::days(30),
            max_tracked: 10_000,
        }
    }
}

/// What to do with an attempt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Go,
    /// Check it, but answer only after this long.
    Delay(Duration),
    /// Refuse it without checking; it may be tried again after this long.
    Refuse(Duration),
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: DateTime<Utc>,
}

impl Failures {
    fn current(&self, now: DateTime<Utc>, window: Duration) -> u32 {
        if now - self.since < window {
            self.count
        } else {
            0
        }
    }
}

/// A throttle's record of one key, for admins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// `source:<address>` or `account:<name>`.
    pub key: String,
    pub failures: u32,
    pub since: DateTime<Utc>,
    pub verdict_until: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct Throttle {
    policy: Policy,
    sources: HashMap<IpAddr, Failures>,
    accounts: HashMap<String, Failures>,
    /// Sources that signed in as an account, and when they last did.
    trusted: HashMap<(String, IpAddr), DateTime<Utc>>,
}

impl Throttle {
    pub fn new(policy: Policy) -> Self {
        Throttle {
            policy,
            ..Throttle::default()
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.policy.free_failures);
        if over == 0 {
            return Duration::zero();
        }
        let factor = 1i32 << (over - 1).min(16);
        (self.policy.first_delay * factor).min(self.policy.max_delay)
    }

    fn trusted(&self, source: IpAddr, account: &str, now: DateTime<Utc>) -> bool {
        self.trusted
            .get(&(account.to_owned(), source))
            .is_some_and(|at| now - *at < self.policy.trust)
    }

    /// What to do with an attempt from `source` for `account` at `now`.
    pub fn check(&self, source: IpAddr, account: &str, now: DateTime<Utc>) -> Verdict {
        // The owner from an address they signed in from: never held back by what others at
        // that address (a shared office or carrier address) or elsewhere got wrong.
        if self.trusted(source, account, now) {
            return Verdict::Go;
        }
        let window = self.policy.window;
        let by_source = self.sources.get(&source);
        let source_failures = by_source.map_or(0, |f| f.current(now, window));
        if source_failures >= self.policy.source_refuse_after {
            let since = by_source.map_or(now, |f| f.since);
            return Verdict::Refuse(since + window - now);
        }
        let mut delay = self.delay_for(source_failures);
        let by_account = self.accounts.get(account);
        let account_failures = by_account.map_or(0, |f| f.current(now, window));
        if account_failures >= self.policy.account_refuse_after {
            let since = by_account.map_or(now, |f| f.since);
            return Verdict::Refuse(since + window - now);
        }
        if account_failures >= self.policy.account_slow_after {
            delay = delay.max(self.policy.max_delay);
        }
        if delay > Duration::zero() {
            Verdict::Delay(delay)
        } else {
            Verdict::Go
        }
    }

    pub fn failure(&mut self, source: IpAddr, account: &str, now: DateTime<Utc>) {
        let window = self.policy.window;
        self.make_room(now);
        let bump = |f: &mut Failures| {
            if now - f.since >= window {
                *f = Failures {
                    count: 0,
                    since: now,
                };
            }
            f.count = f.count.saturating_add(1);
        };
        let fresh = Failures {
            count: 0,
            since: now,
        };
        bump(self.sources.entry(source).or_insert(fresh));
        bump(self.accounts.entry(account.to_owned()).or_insert(fresh));
    }

    /// A correct answer: the source is trusted for this account. Its failures for other
    /// accounts still count (one good sign-in must not wipe out a spray of bad ones).
    pub fn success(&mut self, source: IpAddr, account: &str, now: DateTime<Utc>) {
        self.make_room(now);
        self.trusted.insert((account.to_owned(), source), now);
    }

    /// Drops expired records, then the oldest ones while over the limit.
    fn make_room(&mut self, now: DateTime<Utc>) {
        let (window, trust, max) = (
            self.policy.window,
            self.policy.trust,
            self.policy.max_tracked,
        );
        if self.sources.len() + self.accounts.len() + self.trusted.len() < max {
            return;
        }
        self.sources.retain(|_, f| now - f.since < window);
        self.accounts.retain(|_, f| now - f.since < window);
        self.trusted.retain(|_, at| now - *at < trust);
        while self.sources.len() > max / 3 {
            let Some(oldest) = self
                .sources
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.sources.remove(&oldest);
        }
        while self.accounts.len() > max / 3 {
            let Some(oldest) = self
                .accounts
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.accounts.remove(&oldest);
        }
        while self.trusted.len() > max / 3 {
            let Some(oldest) = self
                .trusted
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.trusted.remove(&oldest);
        }
    }

    /// Every source and account with failures that still count, most failures first.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<Throttled> {
        let window = self.policy.window;
        let refuse_until = |f: &Failures, limit: u32| (f.count >= limit).then(|| f.since + window);
        let mut list: Vec<Throttled> = self
            .sources
            .iter()
            .filter(|(_, f)| f.current(now, window) > 0)
            .map(|(ip, f)| Throttled {
                key: format!("source:{ip}"),
                failures: f.count,
                since: f.since,
                verdict_until: refuse_until(f, self.policy.source_refuse_after),
            })
            .chain(
                self.accounts
                    .iter()
                    .filter(|(_, f)| f.current(now, window) > 0)
                    .map(|(name, f)| Throttled {
                        key: format!("account:{name}"),
                        failures: f.count,
                        since: f.since,
                        verdict_until: refuse_until(f, self.policy.account_refuse_after),
                    }),
            )
            .collect();
        list.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.key.cmp(&b.key)));
        list
    }

    /// Forgets a source's or an account's failures (`source:<address>` or `account:<name>`).
    /// Returns whether there was anything to forget.
    pub fn clear(&mut self, key: &str) -> bool {
        if let Some(ip) = key.strip_prefix("source:").and_then(|t| t.parse().ok()) {
            return self.sources.remove(&ip).is_some();
        }
        if let Some(name) = key.strip_prefix("account:") {
            return self.accounts.remove(name).is_some();
        }
        false
    }
}
