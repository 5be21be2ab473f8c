//! Browser legs: an agent's open adapter announces itself, rings for their calls next to
//! their SIP phone, answers once its WebRTC media is up, declines or hangs up; a session that
//! goes away takes its legs with it. A supervisor's portal phone is a browser session too, but
//! one that only ever carries their monitor legs.

use crate::engine::Engine;
use crate::interface::BrowserEvent;
use std::time::Instant;

impl Engine {
    pub(crate) fn on_browser(&mut self, now: Instant, event: BrowserEvent) {
        match event {
            BrowserEvent::Online { session, agent } => {
                self.browsers.entry(agent).or_default().insert(session);
            }
            BrowserEvent::MonitorOnline { session, user } => {
                self.monitor_browsers
                    .entry(user)
                    .or_default()
                    .insert(session);
            }
            BrowserEvent::Offline { session } => {
                for map in [&mut self.browsers, &mut self.monitor_browsers] {
                    for sessions in map.values_mut() {
                        sessions.remove(&session);
                    }
                    map.retain(|_, sessions| !sessions.is_empty());
                }
                for leg in self.legs.of_session(session) {
                    self.browser_gone(now, leg);
                }
            }
            BrowserEvent::Answered { leg } => {
                let Some(state) = self.legs.get_mut(leg) else {
                    return;
                };
                if state.answered || state.browser().is_none() {
                    return;
                }
                state.answered = true;
                self.leg_answered(now, leg);
            }
            BrowserEvent::Declined { leg } => {
                if self.legs.get(leg).is_some_and(|l| l.browser().is_some()) {
                    self.leg_failed(now, leg, 486);
                }
            }
            BrowserEvent::HungUp { leg } => {
                if self.legs.get(leg).is_some_and(|l| l.browser().is_some()) {
                    self.browser_gone(now, leg);
                }
            }
        }
    }

    /// A browser leg ended from the browser's side: unanswered, as a refusal; answered, as
    /// the agent hanging up.
    fn browser_gone(&mut self, now: Instant, leg: crate::ids::LegId) {
        let Some(state) = self.legs.get(leg) else {
            return;
        };
        if !state.answered {
            self.leg_failed(now, leg, 480);
            return;
        }
        self.remote_hung_up(now, leg);
    }
}
