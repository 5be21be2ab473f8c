//! What the call details show of a live call (MON-5): where it stands, how long the caller has
//! held so far, and who is on it now (the caller, the agent or number, devices still ringing,
//! a consult target, monitors). A read of the engine's state with `now` passed in.
//!
//! Hold time follows from the call's state alone, like its recording: the caller holds while
//! the call is `Held` or `Consulting` (they hear hold music in both). After each input, each
//! call `sync_media` looked at is compared with its running hold (`sync_hold`), so no
//! transition has to remember to start or stop the clock.

use crate::call::CallState;
use crate::engine::Engine;
use crate::ids::LegId;
use crate::legs::{LegRole, Party};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, MonitorMode};

/// How long a call's caller has held: the spans that ended, and the one running.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct HoldTime {
    pub total: Duration,
    pub since: Option<Instant>,
}

/// A live call as its details show it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallDetails {
    pub record: CallRecord,
    pub state: CallState,
    /// Time on hold so far, the running hold included.
    pub held: Duration,
    /// When the running hold began, while the caller holds.
    pub held_since: Option<DateTime<Utc>>,
    /// Every leg of the call now: the caller first, then the agent (or number), devices still
    /// ringing, a consult target and monitors in the order they started.
    pub participants: Vec<Participant>,
}

/// One leg of a live call.
#[derive(Clone, Debug, PartialEq)]
pub struct Participant {
    pub leg: LegId,
    pub role: LegRole,
    pub party: Party,
    /// Its device answered (a leg still ringing has not).
    pub answered: bool,
    /// Carried by a browser session (else a SIP dialog).
    pub browser: bool,
    /// For a monitor: how they monitor.
    pub mode: Option<MonitorMode>,
}

impl Engine {
    /// The call's details now, if it is live.
    pub fn details(&self, now: Instant, call: CallId) -> Option<CallDetails> {
        let state = self.calls.get(&call)?;
        let running = state
            .hold
            .since
            .map(|since| now.saturating_duration_since(since));
        let legs = std::iter::once(state.customer)
            .chain(state.agent)
            .chain(state.ringing.iter().copied())
            .chain(state.consult)
            .chain(state.monitors.iter().map(|m| m.leg));
        let participants = legs
            .filter_map(|id| self.legs.get(id))
            .map(|leg| Participant {
                leg: leg.id,
                role: leg.role,
                party: leg.party.clone(),
                answered: leg.answered,
                browser: leg.browser().is_some(),
                mode: state
                    .monitors
                    .iter()
                    .find(|m| m.leg == leg.id)
                    .map(|m| m.mode),
            })
            .collect();
        Some(CallDetails {
            record: state.record.clone(),
            state: state.state,
            held: state.hold.total + running.unwrap_or_default(),
            held_since: state.hold.since.map(|since| self.wall(since)),
            participants,
        })
    }

    /// Starts or stops the call's hold clock to match its state.
    pub(crate) fn sync_hold(&mut self, now: Instant, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let holding = matches!(state.state, CallState::Held | CallState::Consulting);
        match (holding, state.hold.since) {
            (true, None) => state.hold.since = Some(now),
            (false, Some(since)) => {
                state.hold.total += now.saturating_duration_since(since);
                state.hold.since = None;
            }
            _ => {}
        }
    }
}
