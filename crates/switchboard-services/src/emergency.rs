//! What happens beside an emergency call an agent places (EMG-6, EMG-7, Kari's Law): the call
//! is written to the restricted emergency log, the notification mail to the agent's emergency
//! contacts is stored as a job (`JobKind::EmergencyMail`; the server's mailer sends it), and
//! on-duty supervisors get a live alert on the event stream, then its end.
//!
//! Failure policy: nothing here fails or delays the call. The dialling path spawns `placed` and
//! `ended` beside the call; every error is logged and the rest carried on with (the alert goes
//! out even when the log cannot be written, the log is written even when the agent cannot be
//! read). The mail is a stored job, so a mail server that is down delays it and never loses it.
//!
//! `placed` and `ended` of one call may run in either order (both are spawned): an end that
//! arrives before its call was placed is remembered, and applied when it is.

use crate::events::{DomainEvent, EmergencyAlert, EventBus, Subject};
use crate::jobs::{JobKind, Jobs};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_core::emergency::notice::MailStatus;
use switchboard_core::{Actor, CallId, JobId, UserId};
use switchboard_store::{EmergencyCall, Store};

/// An emergency call the agent placed, as the dialling path tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyPlaced {
    pub call: CallId,
    pub agent: UserId,
    pub at: DateTime<Utc>,
    /// As the agent typed it (`9-911`).
    pub dialled: String,
    /// The emergency number called (`911`).
    pub number: String,
    /// A carriers' test number (933).
    pub test: bool,
    /// The leased callback number; `None` when the pool was exhausted.
    pub callback: Option<String>,
    /// The civic address sent, on one line; `None` when none was sent.
    pub location: Option<String>,
}

/// An emergency call this process knows about, until it ends.
enum Live {
    /// Placed and in progress: its alert, and whom it concerns.
    InProgress(EmergencyAlert, Subject),
    /// Its end arrived before it was placed.
    EndedEarly(DateTime<Utc>),
}

/// The emergency notices' handle. Cloning gives another handle to the same calls.
#[derive(Clone)]
pub struct EmergencyNotices {
    store: Arc<dyn Store>,
    jobs: Jobs,
    events: EventBus,
    /// Calls in progress (for their end's alert and for a page opened meanwhile), held from
    /// `placed` until `ended`. Calls do not survive a restart, so neither does this.
    live: Arc<Mutex<HashMap<CallId, Live>>>,
}

impl EmergencyNotices {
    pub fn new(store: Arc<dyn Store>, jobs: Jobs, events: EventBus) -> Self {
        Self {
            store,
            jobs,
            events,
            live: Arc::default(),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Live>> {
        // The map holds plain values changed in single statements: a panic elsewhere while it
        // was held cannot have left it half-changed.
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the call in the emergency log, queues the notification mail as a job (when the
    /// agent has emergency contacts), and alerts on-duty supervisors. Never fails the call:
    /// errors are logged.
    pub async fn placed(&self, placed: EmergencyPlaced) {
        let user = match self.store.get_user(placed.agent).await {
            Ok(user) => Some(user),
            Err(error) => {
                tracing::error!(%error, call = %placed.call, agent = %placed.agent, "emergency call: the agent could not be read; logging it without their name and contacts");
                None
            }
        };
        let agent_name = user
            .as_ref()
            .map(|u| u.display_name.as_str().to_owned())
            .unwrap_or_else(|| placed.agent.to_string());
        let subject = Subject::Agent {
            id: placed.agent,
            teams: user.as_ref().map(|u| u.teams.clone()).unwrap_or_default(),
        };
        let alert = EmergencyAlert {
            call: placed.call,
            agent: placed.agent,
            agent_name: agent_name.clone(),
            number: placed.number.clone(),
            test: placed.test,
            at: placed.at,
        };
        let ended_early = {
            let mut live = self.live();
            match live.remove(&placed.call) {
                Some(Live::EndedEarly(at)) => Some(at),
                _ => {
                    live.insert(
                        placed.call,
                        Live::InProgress(alert.clone(), subject.clone()),
                    );
                    None
                }
            }
        };
        self.events
            .publish(subject.clone(), DomainEvent::EmergencyStarted(alert));
        if let Some(at) = ended_early {
            self.publish_end(subject, placed.call, placed.agent, at);
        }

        let has_contacts = user
            .as_ref()
            .is_some_and(|u| !u.emergency_contacts.emails().is_empty());
        let entry = EmergencyCall {
            call: placed.call,
            agent: placed.agent,
            agent_name,
            started_at: placed.at,
            ended_at: ended_early,
            dialled: placed.dialled,
            number: placed.number,
            test: placed.test,
            callback_number: placed.callback,
            location: placed.location,
            mail_status: if has_contacts {
                MailStatus::Queued
            } else {
                MailStatus::NoContacts
            },
            mail_error: None,
            mail_sent_at: None,
        };
        if let Err(error) = self.store.insert_emergency_call(&entry).await {
            tracing::error!(%error, call = %placed.call, "emergency call not written to the emergency log");
        }
        if !has_contacts {
            if user.is_some() {
                tracing::warn!(call = %placed.call, agent = %placed.agent, "emergency call: the agent has no emergency contacts, nobody is mailed");
            }
            return;
        }
        let job = JobId::from_uuid(uuid::Uuid::new_v4());
        if let Err(error) = self
            .jobs
            .enqueue(
                job,
                JobKind::EmergencyMail,
                placed.call.to_string(),
                placed.at,
            )
            .await
        {
            tracing::error!(%error, call = %placed.call, "emergency notification mail not queued");
            let reason = format!("the mail could not be queued: {error}");
            if let Err(error) = self
                .store
                .set_emergency_mail(placed.call, MailStatus::Failed, Some(&reason), placed.at)
                .await
            {
                tracing::error!(%error, call = %placed.call, "emergency log not updated");
            }
        }
    }

    /// Notes the end of the call in the log and tells the supervisors who were alerted.
    pub async fn ended(&self, call: CallId, at: DateTime<Utc>) {
        let placed = {
            let mut live = self.live();
            match live.remove(&call) {
                Some(Live::InProgress(alert, subject)) => Some((alert, subject)),
                Some(Live::EndedEarly(first)) => {
                    live.insert(call, Live::EndedEarly(first));
                    None
                }
                None => {
                    live.insert(call, Live::EndedEarly(at));
                    None
                }
            }
        };
        let Some((alert, subject)) = placed else {
            // `placed` has not run yet; it applies this end when it does.
            return;
        };
        self.publish_end(subject, call, alert.agent, at);
        if let Err(error) = self.store.end_emergency_call(call, at).await {
            tracing::error!(%error, %call, "the emergency call's end not written to the emergency log");
        }
    }

    fn publish_end(&self, subject: Subject, call: CallId, agent: UserId, at: DateTime<Utc>) {
        self.events
            .publish(subject, DomainEvent::EmergencyEnded { call, agent, at });
    }

    /// The emergency calls in progress that `actor` may be alerted to (for a page opened while
    /// one is), oldest first.
    pub fn in_progress(&self, actor: &Actor) -> Vec<EmergencyAlert> {
        let mut alerts: Vec<EmergencyAlert> = self
            .live()
            .values()
            .filter_map(|live| match live {
                Live::InProgress(alert, subject) => {
                    subject.visible_to(actor).then(|| alert.clone())
                }
                Live::EndedEarly(_) => None,
            })
            .collect();
        alerts.sort_by_key(|a| (a.at, a.call));
        alerts
    }
}
