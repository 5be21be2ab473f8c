//! Dashboards (PLT-10): what a queue or a team did over a range of time, computed from plain
//! rows (the contacts that arrived in the range, and agents' presence changes), with the range
//! and the threshold as inputs.
//!
//! The figures, for the contacts that arrived in the range:
//! - offered: every contact that arrived; answered: those that reached an agent; abandoned:
//!   those that ended without one; the rest are still waiting.
//! - service level: answered within the threshold (default 20 s) out of answered plus
//!   abandoned (contacts still waiting are not yet decided); abandon rate: abandoned out of
//!   offered. Both are absent when there is nothing to divide by.
//! - wait (average and 90th percentile, nearest rank): arrival to an agent, of answered
//!   contacts; handle time: an agent taking the contact to its end, of ended contacts.
//! - the same counts per hour of the range, and agents by status at the start of each hour
//!   (from each agent's presence before the range and their changes in it).
//!
//! A team's dashboard covers the queues its members take contacts from. Cost: one pass over
//! the rows and a sort of the waits; the store hands over only the range's rows.

use crate::contact::ContactStatus;
use crate::ids::{QueueId, TeamId, UserId};
use crate::permission::{Actor, Permission, RoleScope};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// The service-level threshold when none is given.
pub const DEFAULT_THRESHOLD_SECONDS: u32 = 20;
/// The longest threshold accepted (an hour).
pub const MAX_THRESHOLD_SECONDS: u32 = 3600;
/// The longest range a dashboard covers, in days (hourly figures stay a few hundred points).
pub const MAX_RANGE_DAYS: i64 = 31;

/// Why a dashboard cannot be made as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DashboardError {
    #[error("the range must end after it starts")]
    EmptyRange,
    #[error("a range covers at most {MAX_RANGE_DAYS} days")]
    RangeTooLong,
    #[error("the threshold is 1 to {MAX_THRESHOLD_SECONDS} seconds")]
    BadThreshold,
}

/// Whose figures: one queue's, or the queues a team's members take contacts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Queue(QueueId),
    Team(TeamId),
}

/// Who may see a dashboard: those who watch contacts (a supervisor, a manager, an admin). A
/// queue's contacts are watched center-wide, so any of them sees a queue; a team-scoped role
/// sees only the teams it manages.
pub fn may_view(actor: &Actor, scope: Scope) -> bool {
    let watches = [Permission::MonitorCallsListen, Permission::MonitorChatsView]
        .into_iter()
        .any(|p| actor.holds(p));
    match scope {
        Scope::Queue(_) => watches,
        Scope::Team(team) => {
            watches
                && (actor.role.scope == RoleScope::Center || actor.managed_teams.contains(&team))
        }
    }
}

/// A half-open range of time `[from, to)`, at most 31 days long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Range {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Range, DashboardError> {
        if to <= from {
            return Err(DashboardError::EmptyRange);
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(DashboardError::RangeTooLong);
        }
        Ok(Range { from, to })
    }

    /// Today in the center's time zone: from its local midnight to the next one.
    pub fn today(now: DateTime<Utc>, zone: Tz) -> Range {
        let date = now.with_timezone(&zone).date_naive();
        let midnight = |day: chrono::NaiveDate| {
            let naive = day.and_hms_opt(0, 0, 0).unwrap_or_default();
            // A midnight skipped by a clock change starts the day an hour later.
            zone.from_local_datetime(&naive)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(naive + Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| naive.and_utc())
        };
        let from = midnight(date);
        let to = midnight(date.succ_opt().unwrap_or(date));
        Range {
            from,
            to: to.max(from + Duration::hours(1)),
        }
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// How many hours the range spans (a last partial hour counts).
    pub fn hours(&self) -> usize {
        let millis = (self.to - self.from).num_milliseconds();
        usize::try_from((millis + 3_599_999) / 3_600_000).unwrap_or(0)
    }

    fn hour_of(&self, at: DateTime<Utc>) -> Option<usize> {
        if at < self.from || at >= self.to {
            return None;
        }
        usize::try_from((at - self.from).num_milliseconds() / 3_600_000).ok()
    }
}

/// The service-level threshold, 1 to 3,600 seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold(u32);

impl Threshold {
    pub fn seconds(seconds: u32) -> Result<Threshold, DashboardError> {
        if seconds == 0 || seconds > MAX_THRESHOLD_SECONDS {
            return Err(DashboardError::BadThreshold);
        }
        Ok(Threshold(seconds))
    }

    pub fn as_seconds(self) -> u32 {
        self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold(DEFAULT_THRESHOLD_SECONDS)
    }
}

/// A contact as the dashboard reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactRow {
    pub created_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: ContactStatus,
}

/// An agent's presence from `at` on (its stored name: `available`, `offline`, a custom
/// status's name…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceRow {
    pub agent: UserId,
    pub presence: String,
    pub at: DateTime<Utc>,
}

/// Counts and times for a set of contacts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub answered_within_threshold: u64,
    /// Answered within the threshold out of answered plus abandoned, 0 to 1.
    pub service_level: Option<f64>,
    /// Abandoned out of offered, 0 to 1.
    pub abandon_rate: Option<f64>,
    pub average_wait_ms: Option<u64>,
    pub p90_wait_ms: Option<u64>,
    pub average_handle_ms: Option<u64>,
}

/// One hour of the range.
#[derive(Clone, Debug, PartialEq)]
pub struct Hour {
    pub start: DateTime<Utc>,
    pub figures: Figures,
    /// Agents in each presence at the start of the hour (only presences someone is in).
    pub agents: BTreeMap<String, u32>,
}

/// A dashboard: the range's figures and the same per hour.
#[derive(Clone, Debug, PartialEq)]
pub struct Dashboard {
    pub range: Range,
    pub threshold: Threshold,
    pub totals: Figures,
    pub hours: Vec<Hour>,
}

/// Gathers contacts into figures.
#[derive(Default)]
struct Tally {
    offered: u64,
    answered: u64,
    abandoned: u64,
    within: u64,
    waits: Vec<u64>,
    handle_sum: u64,
    handled: u64,
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

impl Tally {
    fn add(&mut self, row: &ContactRow, threshold: Threshold) {
        self.offered += 1;
        if let Some(assigned) = row.assigned_at {
            self.answered += 1;
            let wait = millis_between(row.created_at, assigned);
            if wait <= u64::from(threshold.0) * 1000 {
                self.within += 1;
            }
            self.waits.push(wait);
            if let (ContactStatus::Ended, Some(ended)) = (row.status, row.ended_at) {
                self.handle_sum += millis_between(assigned, ended);
                self.handled += 1;
            }
        } else if row.status == ContactStatus::Abandoned {
            self.abandoned += 1;
        }
    }

    fn figures(mut self) -> Figures {
        let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        self.waits.sort_unstable();
        let count = self.waits.len() as u64;
        // Nearest rank: the smallest wait that 90% of answered contacts did not exceed.
        let p90 = (count > 0).then(|| {
            let rank = (count * 9).div_ceil(10).max(1);
            self.waits[usize::try_from(rank - 1).unwrap_or(0)]
        });
        Figures {
            offered: self.offered,
            answered: self.answered,
            abandoned: self.abandoned,
            answered_within_threshold: self.within,
            service_level: ratio(self.within, self.answered + self.abandoned),
            abandon_rate: ratio(self.abandoned, self.offered),
            average_wait_ms: (count > 0).then(|| self.waits.iter().sum::<u64>() / count),
            p90_wait_ms: p90,
            average_handle_ms: (self.handled > 0).then(|| self.handle_sum / self.handled),
        }
    }
}

/// Computes a dashboard. `contacts` are the scope's contacts (those arriving outside the range
/// are ignored); `presence` is each of the scope's agents' last change before the range and
/// their changes in it, in any order.
pub fn compute(
    range: Range,
    threshold: Threshold,
    contacts: &[ContactRow],
    presence: &[PresenceRow],
) -> Dashboard {
    let hours = range.hours();
    let mut total = Tally::default();
    let mut per_hour: Vec<Tally> = (0..hours).map(|_| Tally::default()).collect();
    for row in contacts {
        let Some(hour) = range.hour_of(row.created_at) else {
            continue;
        };
        total.add(row, threshold);
        if let Some(tally) = per_hour.get_mut(hour) {
            tally.add(row, threshold);
        }
    }
    let mut changes: Vec<&PresenceRow> = presence.iter().filter(|p| p.at < range.to).collect();
    changes.sort_by_key(|p| (p.at, p.agent));
    let mut current: BTreeMap<UserId, &str> = BTreeMap::new();
    let mut next = changes.iter().peekable();
    let hours = per_hour
        .into_iter()
        .enumerate()
        .map(|(index, tally)| {
            let start = range.from + Duration::hours(index as i64);
            while let Some(change) = next.next_if(|c| c.at <= start) {
                current.insert(change.agent, change.presence.as_str());
            }
            let mut agents = BTreeMap::new();
            for presence in current.values() {
                *agents.entry((*presence).to_owned()).or_insert(0) += 1;
            }
            Hour {
                start,
                figures: tally.figures(),
                agents,
            }
        })
        .collect();
    Dashboard {
        range,
        threshold,
        totals: total.figures(),
        hours,
    }
}
