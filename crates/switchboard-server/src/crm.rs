//! CRM connectors (PLT-9), run as jobs. Every session opens a ticket; when the chat ends its
//! transcript and attachments are added. The built-in CRM keeps tickets in Switchboard's own
//! database; the webhook CRM also receives each event as signed JSON (the wire is in
//! `http::webhook`), retried with exponential backoff. Work is stored as job rows first
//! (`enqueue`), so nothing is lost to a restart or an outage; `CrmConnector` is the job
//! handler the worker runs them with. The Zendesk connector's work is in `crate::zendesk`.

use crate::chat::AgentNames;
use crate::http::webhook::{self, CrmEvent, Transcript, TranscriptMessage};
use crate::zendesk::{DeliveryError, ZendeskCrm};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_core::chat::Sender;
use switchboard_core::crm::{call_ticket_text, CallTicketFacts};
use switchboard_core::hours::parse_time_zone;
use switchboard_core::{CallId, IdentityId, JobId, TicketId, VisitorId};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{Job, Store, Ticket};
use uuid::Uuid;

pub use crate::http::webhook::signature;

/// Something the CRM should hear about.
#[derive(Debug, Clone)]
pub enum Event {
    TicketCreated {
        ticket: TicketId,
    },
    TicketClosed {
        ticket: TicketId,
    },
    IdentityMerged {
        visitor: VisitorId,
        identity: IdentityId,
    },
    /// An answered call ended: it gets its ticket (made here, once) and the CRM hears of it.
    CallEnded {
        call: CallId,
    },
    /// A call's agent recorded its wrap-up: the ticket gets the disposition and note and is
    /// solved.
    CallWrapped {
        call: CallId,
    },
}

/// The job row's payload: the event with its ids as text (a stored form, not a wire one).
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Payload {
    TicketCreated { ticket: String },
    TicketClosed { ticket: String },
    IdentityMerged { visitor: String, identity: String },
    CallEnded { call: String },
    CallWrapped { call: String },
}

impl Event {
    fn payload(&self) -> Payload {
        match self {
            Event::TicketCreated { ticket } => Payload::TicketCreated {
                ticket: ticket.to_string(),
            },
            Event::TicketClosed { ticket } => Payload::TicketClosed {
                ticket: ticket.to_string(),
            },
            Event::IdentityMerged { visitor, identity } => Payload::IdentityMerged {
                visitor: visitor.to_string(),
                identity: identity.to_string(),
            },
            Event::CallEnded { call } => Payload::CallEnded {
                call: call.to_string(),
            },
            Event::CallWrapped { call } => Payload::CallWrapped {
                call: call.to_string(),
            },
        }
    }

    fn from_payload(text: &str) -> Result<Self, String> {
        let bad = |e: &dyn std::fmt::Display| format!("unreadable job: {e}");
        Ok(
            match serde_json::from_str::<Payload>(text).map_err(|e| bad(&e))? {
                Payload::TicketCreated { ticket } => Event::TicketCreated {
                    ticket: TicketId::parse(&ticket).map_err(|e| bad(&e))?,
                },
                Payload::TicketClosed { ticket } => Event::TicketClosed {
                    ticket: TicketId::parse(&ticket).map_err(|e| bad(&e))?,
                },
                Payload::IdentityMerged { visitor, identity } => Event::IdentityMerged {
                    visitor: VisitorId::parse(&visitor).map_err(|e| bad(&e))?,
                    identity: IdentityId::parse(&identity).map_err(|e| bad(&e))?,
                },
                Payload::CallEnded { call } => Event::CallEnded {
                    call: CallId::parse(&call).map_err(|e| bad(&e))?,
                },
                Payload::CallWrapped { call } => Event::CallWrapped {
                    call: CallId::parse(&call).map_err(|e| bad(&e))?,
                },
            },
        )
    }
}

/// Stores the event as a job and wakes the worker.
pub async fn enqueue(jobs: &Jobs, event: Event) {
    let payload = serde_json::to_string(&event.payload()).unwrap_or_default();
    let now = Utc::now();
    // A call's end is announced as often as its record changes after it, and a ticket may be
    // made again by a job that runs twice: one job each, named after the call or ticket.
    let once = match &event {
        Event::CallEnded { call } => Some(call.uuid()),
        Event::TicketCreated { ticket } => Some(ticket.uuid()),
        _ => None,
    };
    let stored = match once {
        Some(source) => {
            let id = uuid::Builder::from_custom_bytes(*source.as_bytes()).into_uuid();
            jobs.enqueue_once(
                JobId::from_uuid(id),
                JobKind::CrmDelivery,
                payload,
                now,
                now,
            )
            .await
            .map(|_| ())
        }
        None => {
            let id = JobId::from_uuid(Uuid::now_v7());
            jobs.enqueue(id, JobKind::CrmDelivery, payload, now).await
        }
    };
    if let Err(error) = stored {
        tracing::error!(%error, ?event, "CRM job not stored");
    }
}

/// Runs CRM jobs: keeps the built-in CRM's tickets up to date and, with the webhook connector,
/// delivers each event.
pub struct CrmConnector {
    store: Arc<dyn Store>,
    /// For outgoing calls to the webhook.
    http: reqwest::Client,
    /// Agents' names, for transcripts.
    names: Arc<AgentNames>,
    /// The Zendesk connector, for when it is the one chosen.
    zendesk: ZendeskCrm,
}

/// Why a delivery did not go through.
enum Failure {
    /// Ours or the webhook's: tried again by the policy.
    Retry(String),
    /// Zendesk's connector, which says whether trying again can help.
    Zendesk(DeliveryError),
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure::Retry(error)
    }
}

impl From<&str> for Failure {
    fn from(error: &str) -> Self {
        Failure::Retry(error.to_owned())
    }
}

impl CrmConnector {
    pub fn new(
        store: Arc<dyn Store>,
        http: reqwest::Client,
        names: Arc<AgentNames>,
        zendesk: ZendeskCrm,
    ) -> Self {
        Self {
            store,
            http,
            names,
            zendesk,
        }
    }

    async fn deliver(&self, job: &Job) -> Result<(), Failure> {
        let event = Event::from_payload(&job.payload)?;
        let store = &self.store;
        let body = match &event {
            Event::TicketCreated { ticket } => {
                let ticket = store.get_ticket(*ticket).await.map_err(|e| e.to_string())?;
                webhook::body(&CrmEvent::TicketCreated { ticket: &ticket })
            }
            Event::TicketClosed { ticket } => {
                let mut ticket = store.get_ticket(*ticket).await.map_err(|e| e.to_string())?;
                let transcript = self.transcript(&ticket).await?;
                if ticket.status != "solved"
                    || ticket.transcript.as_deref() != Some(transcript.text.as_str())
                {
                    ticket.status = "solved".into();
                    ticket.transcript = Some(transcript.text.clone());
                    ticket.updated_at = Utc::now();
                    store
                        .update_ticket(&ticket)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                webhook::body(&CrmEvent::TicketClosed {
                    ticket: &ticket,
                    transcript: &transcript,
                })
            }
            Event::CallEnded { call } => {
                let ticket = self.call_ticket(*call, false).await?;
                webhook::body(&CrmEvent::TicketCreated { ticket: &ticket })
            }
            Event::CallWrapped { call } => {
                let ticket = self.call_ticket(*call, true).await?;
                let transcript = Transcript {
                    text: ticket.transcript.clone().unwrap_or_default(),
                    messages: Vec::new(),
                    attachments: Vec::new(),
                };
                webhook::body(&CrmEvent::TicketClosed {
                    ticket: &ticket,
                    transcript: &transcript,
                })
            }
            Event::IdentityMerged { visitor, identity } => {
                let identity = store.identity(*identity).await.map_err(|e| e.to_string())?;
                // The visitor's tickets and the calls from the identity's number, all now
                // the identity's.
                let tickets = store
                    .tickets_of_identity(identity.id)
                    .await
                    .map_err(|e| e.to_string())?;
                webhook::body(&CrmEvent::IdentityMerged {
                    identity: &identity,
                    visitor: *visitor,
                    tickets: &tickets,
                })
            }
        };
        let settings = store
            .integration_settings(&crate::secret::random_token(32))
            .await
            .map_err(|e| e.to_string())?;
        if settings.crm_connector == "zendesk" {
            let transcript = match &event {
                Event::TicketClosed { ticket } => {
                    let ticket = store.get_ticket(*ticket).await.map_err(|e| e.to_string())?;
                    Some(self.transcript(&ticket).await?)
                }
                // A call's summary, with the wrap-up, goes as its note.
                Event::CallWrapped { .. } => Some(Transcript {
                    text: body["transcript"].as_str().unwrap_or_default().to_owned(),
                    messages: Vec::new(),
                    attachments: Vec::new(),
                }),
                _ => None,
            };
            return self
                .zendesk
                .deliver(&settings, &event, transcript.as_ref())
                .await
                .map_err(Failure::Zendesk);
        }
        if settings.crm_connector != "webhook" {
            return Ok(());
        }
        let url = settings
            .crm_webhook_url
            .ok_or("the webhook CRM has no URL")?;
        let secret = settings.crm_webhook_secret.unwrap_or_default();
        let external =
            webhook::deliver(&self.http, &url, &secret, &job.id.to_string(), &body).await?;
        let created = match &event {
            Event::TicketCreated { ticket } => Some(*ticket),
            Event::CallEnded { call } => store
                .ticket_of_call(*call)
                .await
                .map_err(|e| e.to_string())?
                .map(|t| t.id),
            _ => None,
        };
        if let (Some(ticket), Some(external)) = (created, external) {
            let mut stored = store.get_ticket(ticket).await.map_err(|e| e.to_string())?;
            stored.external_id = Some(external.chars().take(200).collect());
            store
                .update_ticket(&stored)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The ticket of an answered call: made the first time (an anonymous caller is
    /// "Phone User - MM/DD HH:MM" with the number beside it), and with `wrapped` given the
    /// wrap-up and solved. Its text is the call's summary (`switchboard_core::crm`).
    async fn call_ticket(&self, call: CallId, wrapped: bool) -> Result<Ticket, String> {
        let store = &self.store;
        let record = store.get_call(call).await.map_err(|e| e.to_string())?;
        if record.ended_at.is_none() {
            return Err("the call's record is not stored as ended yet".into());
        }
        let zone = parse_time_zone(
            &store
                .center_settings()
                .await
                .map_err(|e| e.to_string())?
                .time_zone,
        )
        .unwrap_or(chrono_tz::UTC);
        let contact = match record.contact {
            Some(contact) => Some(
                store
                    .get_contact(contact)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let wrap_up = match (wrapped, record.contact) {
            (true, Some(contact)) => store.wrap_up(contact).await.map_err(|e| e.to_string())?,
            _ => None,
        };
        if wrapped && wrap_up.is_none() {
            return Err("the call has no wrap-up stored".into());
        }
        let agent_name = match record.agent {
            Some(agent) => Some(self.names.get(agent).await),
            None => None,
        };
        // Those still here and those already sent to the CRM (and deleted here).
        let mut recordings: Vec<_> = store
            .recordings_of_call(call)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.id)
            .collect();
        recordings.extend(
            store
                .uploads_of_call(call)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .map(|u| u.recording),
        );
        recordings.sort();
        recordings.dedup();
        let recordings = recordings.len();
        let facts = CallTicketFacts {
            call: &record,
            queue_path: contact.as_ref().map(|c| c.issue.as_str()),
            agent_name: agent_name.as_deref(),
            disposition: wrap_up.as_ref().and_then(|w| w.disposition.as_deref()),
            note: wrap_up.as_ref().map(|w| w.note.as_str()),
            recordings,
        };
        let text = call_ticket_text(&facts, zone);
        let now = Utc::now();
        let mut ticket = match store
            .ticket_of_call(call)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(ticket) => ticket,
            None => {
                let number = record.caller.clone();
                // A caller whose number an identity token gave is that consumer (UAC-3).
                let digits = switchboard_core::text::phone_digits(&number);
                let identity = match &digits {
                    Some(digits) => store
                        .identity_by_phone(digits)
                        .await
                        .map_err(|e| e.to_string())?,
                    None => None,
                };
                let name = match &identity {
                    Some(identity) => switchboard_core::chat::identified_ticket_name(
                        &identity.external_id,
                        identity.email.as_deref(),
                        identity.name.as_deref(),
                    ),
                    None => format!(
                        "{} ({number})",
                        switchboard_core::chat::anonymous_ticket_name(
                            "Phone",
                            record.started_at,
                            zone
                        )
                    ),
                };
                let ticket = Ticket {
                    id: TicketId::from_uuid(Uuid::now_v7()),
                    contact: record.contact,
                    visitor: None,
                    identity: identity.map(|i| i.id),
                    name,
                    status: "open".into(),
                    transcript: Some(text.clone()),
                    external_id: None,
                    created_at: now,
                    updated_at: now,
                    call: Some(call),
                    // As its digits when it is a number, so an identity's number finds it.
                    phone: Some(digits.unwrap_or(number)),
                };
                match store.insert_ticket(&ticket).await {
                    Ok(()) => ticket,
                    // Made by the other event of the same call in the meantime.
                    Err(switchboard_store::StoreError::Conflict(_)) => store
                        .ticket_of_call(call)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("the call's ticket vanished")?,
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        let status = if wrapped {
            "solved"
        } else {
            ticket.status.as_str()
        }
        .to_owned();
        if ticket.transcript.as_deref() != Some(text.as_str()) || ticket.status != status {
            ticket.transcript = Some(text);
            ticket.status = status;
            ticket.updated_at = now;
            store
                .update_ticket(&ticket)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(ticket)
    }

    /// The chat's transcript as text (in the center's time zone), its messages and attachments.
    async fn transcript(&self, ticket: &Ticket) -> Result<Transcript, String> {
        let store = &self.store;
        let contact = ticket.contact.ok_or("the ticket has no chat")?;
        let zone = parse_time_zone(
            &store
                .center_settings()
                .await
                .map_err(|e| e.to_string())?
                .time_zone,
        )
        .unwrap_or(chrono_tz::UTC);
        let attachments = store
            .attachments_of(contact)
            .await
            .map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let batch = store
                .messages(contact, after, 500)
                .await
                .map_err(|e| e.to_string())?;
            for message in &batch {
                after = message.seq;
                let who = match message.sender {
                    Sender::Consumer => ticket.name.clone(),
                    Sender::Agent(agent) => self.names.get(agent).await,
                    Sender::System => "Switchboard".into(),
                };
                let at = message
                    .sent_at
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M");
                let file = message
                    .attachment
                    .and_then(|id| attachments.iter().find(|a| a.id == id))
                    .map(|a| {
                        format!(
                            " [file: {} ({}, {} bytes) /apps/api/v1/attachments/{}]",
                            a.name,
                            a.kind.mime(),
                            a.size,
                            a.id
                        )
                    })
                    .unwrap_or_default();
                lines.push(format!("[{at}] {who}: {}{file}", message.text));
                messages.push(TranscriptMessage {
                    seq: message.seq,
                    from: who,
                    text: message.text.clone(),
                    sent_at: message.sent_at,
                    attachment: message.attachment,
                });
            }
            if batch.len() < 500 {
                break;
            }
        }
        Ok(Transcript {
            text: lines.join("\n"),
            messages,
            attachments,
        })
    }
}

#[async_trait]
impl JobHandler for CrmConnector {
    /// Every failure is retried by the policy, as a CRM that is down or a ticket being written
    /// may be fine on the next attempt; but a refusal from Zendesk is given up.
    async fn run(&self, job: &Job, _now: DateTime<Utc>) -> JobOutcome {
        match self.deliver(job).await {
            Ok(()) => JobOutcome::Done,
            Err(Failure::Retry(error)) => JobOutcome::Retry { error },
            Err(Failure::Zendesk(error)) => error.into_outcome(),
        }
    }
}
