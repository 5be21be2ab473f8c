//! Monitoring a live call (MON-1, MON-2): a supervisor's leg on their browser session or SIP
//! phone that hears the caller and the agent mixed. Listen sends nothing anyone hears; coach
//! is heard by the agent alone; barge by both. A monitor is a configuration of the call's
//! media room and nothing else: the parties get no SIP message, no re-INVITE and no change in
//! their RTP, and the call's record does not change. Several users may monitor one call, each
//! with one leg, switching mode on it without a new leg.

use crate::call::CallState;
use crate::devices::Device;
use crate::engine::Engine;
use crate::ids::{LegId, SessionId};
use crate::interface::CallError;
use crate::legs::{LegRole, Opening, Party};
use std::time::Instant;
use switchboard_core::{CallId, MonitorMode, UserId};

/// One user monitoring a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Monitor {
    pub user: UserId,
    pub leg: LegId,
    pub mode: MonitorMode,
}

impl Engine {
    /// Starts `user` monitoring `call` in `mode` on their browser `session` (or, without one,
    /// their registered SIP phone).
    pub(crate) fn monitor(
        &mut self,
        now: Instant,
        call: CallId,
        user: UserId,
        mode: MonitorMode,
        session: Option<SessionId>,
    ) -> Result<(), CallError> {
        let state = self.calls.get_mut(&call).ok_or(CallError::NotFound)?;
        if state.record.emergency.is_some() {
            return Err(CallError::Confidential);
        }
        if !matches!(
            state.state,
            CallState::Talking | CallState::Held | CallState::Consulting
        ) {
            return Err(CallError::State(
                "only a call in conversation with an agent can be monitored",
            ));
        }
        // The record names whoever answered last (a transfer's new agent too).
        if state.record.agent == Some(user) {
            return Err(CallError::State("an agent cannot monitor their own call"));
        }
        if state.monitors.iter().any(|m| m.user == user) {
            return Err(CallError::State(
                "you are already monitoring this call: switch its mode instead",
            ));
        }
        let device = match session {
            Some(session) => {
                let open = [&self.browsers, &self.monitor_browsers]
                    .iter()
                    .any(|map| map.get(&user).is_some_and(|s| s.contains(&session)));
                if !open {
                    return Err(CallError::State(
                        "that browser session is not connected for this user",
                    ));
                }
                Device::Browser { session }
            }
            None => {
                let target = self.registrar.target(now, user).ok_or(CallError::State(
                    "no registered SIP phone to monitor on: register a SIP phone for your user first",
                ))?;
                let caller = self
                    .calls
                    .get(&call)
                    .map(|c| c.record.caller.clone())
                    .unwrap_or_default();
                Device::Sip {
                    peer: target.peer,
                    opening: Opening::Invite {
                        uri: target.uri,
                        to: format!("<sip:{}@{}>", target.username, self.config.media_ip),
                        from_user: caller.clone(),
                        display: format!("Monitor {caller}"),
                        emergency: None,
                    },
                    trunk: None,
                }
            }
        };
        let leg = self.place_leg(call, LegRole::Monitor, Party::Agent(user), device);
        if let Some(state) = self.calls.get_mut(&call) {
            state.monitors.push(Monitor { user, leg, mode });
        }
        Ok(())
    }

    /// Switches `user`'s monitoring of `call` to `mode`, on the same leg.
    pub(crate) fn switch_monitor(
        &mut self,
        call: CallId,
        user: UserId,
        mode: MonitorMode,
    ) -> Result<(), CallError> {
        let monitor = self
            .calls
            .get_mut(&call)
            .ok_or(CallError::NotFound)?
            .monitors
            .iter_mut()
            .find(|m| m.user == user)
            .ok_or(CallError::State("you are not monitoring this call"))?;
        monitor.mode = mode;
        self.sync_media(call);
        Ok(())
    }

    /// Ends `user`'s monitoring of `call`.
    pub(crate) fn stop_monitor(
        &mut self,
        now: Instant,
        call: CallId,
        user: UserId,
    ) -> Result<(), CallError> {
        let leg = self
            .calls
            .get(&call)
            .ok_or(CallError::NotFound)?
            .monitors
            .iter()
            .find(|m| m.user == user)
            .map(|m| m.leg)
            .ok_or(CallError::State("you are not monitoring this call"))?;
        self.hang_up_leg(now, leg);
        self.sync_media(call);
        Ok(())
    }
}

/// Adds the call's answered monitors to the mix matrix `rows` (leg, whom it hears): each
/// monitor hears the caller and the agent; coach adds the monitor to what the agent hears,
/// barge to what both hear while they talk.
pub(crate) fn monitor_rows(
    rows: &mut Vec<(LegId, Vec<LegId>)>,
    monitors: &[(LegId, MonitorMode)],
    customer: LegId,
    agent: Option<LegId>,
    bridged: bool,
) {
    for (leg, mode) in monitors {
        let mut hears = vec![customer];
        hears.extend(agent);
        rows.push((*leg, hears));
        for (listener, sources) in rows.iter_mut() {
            let hears_monitor = match mode {
                MonitorMode::Listen => false,
                MonitorMode::Coach => Some(*listener) == agent,
                MonitorMode::Barge => {
                    Some(*listener) == agent || (*listener == customer && bridged)
                }
            };
            if hears_monitor && !sources.contains(leg) {
                sources.push(*leg);
            }
        }
    }
}
