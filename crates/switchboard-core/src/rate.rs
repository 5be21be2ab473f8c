//! Rate limits by key (visitors created per source address, attachments per visitor): at most
//! `limit` events per `window`, counted in fixed windows that start at a key's first event.
//! Pure: `now` is an argument. Memory is bounded: past `max_tracked` keys, expired ones go
//! first, then the oldest.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::hash::Hash;

pub struct RateLimit<K> {
    limit: u32,
    window: Duration,
    max_tracked: usize,
    /// Per key: events in the current window and when that window started.
    counts: HashMap<K, (u32, DateTime<Utc>)>,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    pub fn new(limit: u32, window: Duration, max_tracked: usize) -> Self {
        RateLimit {
            limit,
            window,
            max_tracked: max_tracked.max(1),
            counts: HashMap::new(),
        }
    }

    /// Counts an event for `key` at `now` if the limit allows it; otherwise says how long
    /// until the key's window ends (and counts nothing).
    pub fn allow(&mut self, key: K, now: DateTime<Utc>) -> Result<(), Duration> {
        if !self.counts.contains_key(&key) && self.counts.len() >= self.max_tracked {
            let window = self.window;
            self.counts.retain(|_, (_, since)| now - *since < window);
            while self.counts.len() >= self.max_tracked {
                let Some(oldest) = self
                    .counts
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                self.counts.remove(&oldest);
            }
        }
        let entry = self.counts.entry(key).or_insert((0, now));
        if now - entry.1 >= self.window {
            *entry = (0, now);
        }
        if entry.0 >= self.limit {
            return Err(entry.1 + self.window - now);
        }
        entry.0 += 1;
        Ok(())
    }
}
