//! The IO shell of `switchboard_core::attendance`: one task that hears which agent adapters and
//! consumer widgets are connected, sleeps until the next party has been away for its grace,
//! and then acts on the core's rules.
//!
//! - An agent whose adapters have all gone for `presence_grace_seconds` goes offline unless a
//!   registered SIP phone still reaches them (asked of the voice task's registrar at that
//!   moment; the agent is looked at again a grace later, in case the phone lapses). Going
//!   offline sends the chats they held back to their queues, keeping their places
//!   (`ContactService::agent_gone`).
//! - A chat whose consumer has had no connection for `chat_abandon_seconds` is ended as
//!   abandoned if it is still waiting in a queue; a chat with an agent is looked at again a
//!   grace later (it may be sent back to a queue meanwhile).
//!
//! Reports are fire-and-forget on an unbounded queue (a report is a few words, and one per
//! connection opened or closed); the task owns both attendance states, so nothing is locked.
//! The task awaits the contact service and the voice task only after a deadline, never while
//! a report waits to be counted for long.

use crate::app::AppState;
use chrono::Utc;
use std::time::Duration as StdDuration;
use switchboard_core::attendance::{agent_goes_offline, chat_is_abandoned, Attendance};
use switchboard_core::{Channel, ContactId, UserId};
use switchboard_store::Store;
use tokio::sync::mpsc;

/// Why a chat ended when its consumer left it waiting.
pub const CONSUMER_LEFT: &str = "consumer_left";

/// What the connections report.
#[derive(Debug)]
enum Report {
    /// An agent's adapter connection opened.
    AgentConnected { agent: UserId, connection: u64 },
    /// A consumer's connection joined a chat.
    ChatJoined { chat: ContactId, connection: u64 },
    /// A connection closed (either side; connection ids are unique across both).
    Closed { connection: u64 },
}

/// The handle connections report through. Reports made before the task starts wait for it.
pub struct AttendanceWatch {
    reports: mpsc::UnboundedSender<Report>,
    /// Taken by `spawn` when the server launches.
    pending: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Report>>>,
}

impl Default for AttendanceWatch {
    fn default() -> Self {
        let (reports, pending) = mpsc::unbounded_channel();
        Self {
            reports,
            pending: std::sync::Mutex::new(Some(pending)),
        }
    }
}

impl AttendanceWatch {
    pub fn agent_connected(&self, agent: UserId, connection: u64) {
        let _ = self
            .reports
            .send(Report::AgentConnected { agent, connection });
    }

    pub fn chat_joined(&self, chat: ContactId, connection: u64) {
        let _ = self.reports.send(Report::ChatJoined { chat, connection });
    }

    pub fn closed(&self, connection: u64) {
        let _ = self.reports.send(Report::Closed { connection });
    }

    /// Starts the task (once). Chats the last run left open are watched from now: a consumer
    /// who does not come back within the grace has left.
    pub async fn spawn(app: &AppState) -> Option<tokio::task::JoinHandle<()>> {
        let reports = app.chat.attendance.pending.lock().ok()?.take()?;
        let now = Utc::now();
        let mut chats = Attendance::new(chrono::Duration::seconds(
            app.config.chat_abandon_seconds as i64,
        ));
        match app.services.store.open_contacts().await {
            Ok(open) => {
                for contact in open
                    .iter()
                    .filter(|c| matches!(c.channel, Channel::Web | Channel::Mobile))
                {
                    chats.expect(contact.id, now);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "open chats not read; they are watched once a widget joins")
            }
        }
        let task = Task {
            app: app.clone(),
            agents: Attendance::new(chrono::Duration::seconds(
                app.config.presence_grace_seconds as i64,
            )),
            chats,
        };
        Some(tokio::spawn(task.run(reports)))
    }
}

struct Task {
    app: AppState,
    agents: Attendance<UserId>,
    chats: Attendance<ContactId>,
}

impl Task {
    async fn run(mut self, mut reports: mpsc::UnboundedReceiver<Report>) {
        loop {
            let deadline = [self.agents.next_deadline(), self.chats.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            let wait = deadline.map(|at| {
                (at - Utc::now())
                    .to_std()
                    .unwrap_or(StdDuration::ZERO)
                    // Wake a little after the deadline, not a little before it.
                    + StdDuration::from_millis(5)
            });
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => self.count(report),
                    None => return,
                },
                () = sleep(wait) => {}
            }
            let now = Utc::now();
            while let Some(agent) = self.agents.poll_due(now) {
                self.agent_away(agent, now).await;
            }
            while let Some(chat) = self.chats.poll_due(now) {
                self.chat_unattended(chat, now).await;
            }
        }
    }

    fn count(&mut self, report: Report) {
        let now = Utc::now();
        match report {
            Report::AgentConnected { agent, connection } => {
                self.agents.connected(agent, connection)
            }
            Report::ChatJoined { chat, connection } => self.chats.connected(chat, connection),
            Report::Closed { connection } => {
                self.agents.disconnected(connection, now);
                self.chats.disconnected(connection, now);
            }
        }
    }

    async fn agent_away(&mut self, agent: UserId, now: chrono::DateTime<Utc>) {
        let store: &dyn Store = self.app.services.store.as_ref();
        let presence = match store.get_user(agent).await {
            Ok(user) => user.presence.current().clone(),
            Err(error) => {
                tracing::debug!(%error, %agent, "an agent who left is no longer there");
                return;
            }
        };
        let has_phone = self
            .app
            .voice
            .registrations()
            .await
            .map(|phones| phones.iter().any(|(user, _, _)| *user == agent))
            .unwrap_or(false);
        if agent_goes_offline(&presence, has_phone) {
            match self.app.services.contacts.agent_gone(agent).await {
                Ok(returned) => tracing::info!(
                    %agent,
                    chats = returned.len(),
                    "agent's adapter gone for the grace: offline, chats back to their queues"
                ),
                Err(error) => {
                    tracing::warn!(%error, %agent, "could not set a gone agent offline; trying again");
                    self.agents.keep(agent, now);
                }
            }
        } else if has_phone {
            self.agents.keep(agent, now);
        }
    }

    async fn chat_unattended(&mut self, chat: ContactId, now: chrono::DateTime<Utc>) {
        let Some(contact) = self.app.services.contacts.open_contact(chat).await else {
            return; // Ended meanwhile.
        };
        if !chat_is_abandoned(contact.status) {
            self.chats.keep(chat, now);
            return;
        }
        if let Err(error) = self
            .app
            .services
            .contacts
            .end(chat, CONSUMER_LEFT.into())
            .await
        {
            tracing::warn!(%error, %chat, "could not end a chat its consumer left; trying again");
            self.chats.keep(chat, now);
        }
    }
}

async fn sleep(wait: Option<StdDuration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}
