//! Estimated waits: how long a contact waiting in a queue may still wait, from the queue's
//! recent pace.
//!
//! The estimate is the queue's pace times the contact's position: the pace is the average
//! time between the last hand-offs of the queue's contacts to agents (at most `RECENT` of
//! them, none older than `WINDOW`), or the time since the last hand-off when that is longer
//! (a queue that has stalled is not promised its old pace); the position counts the contact
//! itself (1 for the next one served). With fewer than two recent hand-offs there is no pace
//! and no estimate: the consumer sees their position only.
//!
//! It is a plain, explainable estimate, not a forecast: it assumes the next hand-offs come at
//! the pace of the last ones, which holds while the staffing and the mix of work stay as they
//! are. Nothing here reads a clock.

use crate::ids::QueueId;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};

/// Hand-offs remembered per queue.
pub const RECENT: usize = 20;

/// Hand-offs older than this are forgotten.
pub fn window() -> Duration {
    Duration::hours(1)
}

/// The recent hand-offs of every queue.
#[derive(Debug, Default, Clone)]
pub struct QueuePace {
    /// When the queue's last contacts reached an agent, oldest first, at most `RECENT`.
    handoffs: HashMap<QueueId, VecDeque<DateTime<Utc>>>,
}

impl QueuePace {
    /// A contact of `queue` reached an agent at `at`.
    pub fn record(&mut self, queue: QueueId, at: DateTime<Utc>) {
        let times = self.handoffs.entry(queue).or_default();
        // Decisions are recorded in the order they are made; a clock that stepped back is
        // recorded at the last time seen so the intervals stay non-negative.
        let at = times.back().map_or(at, |last| at.max(*last));
        times.push_back(at);
        while times.len() > RECENT {
            times.pop_front();
        }
    }

    /// The estimated wait of the contact at `position` (1 for the next one served) at `now`,
    /// or `None` without a recent pace.
    pub fn estimate(
        &self,
        queue: QueueId,
        position: usize,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let times = self.handoffs.get(&queue)?;
        let recent: Vec<_> = times
            .iter()
            .filter(|t| now - **t <= window())
            .copied()
            .collect();
        let (first, last) = (*recent.first()?, *recent.last()?);
        if recent.len() < 2 {
            return None;
        }
        let average = (last - first) / (recent.len() as i32 - 1);
        let pace = average.max(now - last).max(Duration::zero());
        Some(pace * i32::try_from(position.max(1)).unwrap_or(i32::MAX))
    }
}
