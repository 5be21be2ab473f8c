//! CRM connectors (PLT-9) and the job worker that runs them. Every session opens a ticket; when
//! the chat ends its transcript and attachments are added. The built-in CRM keeps tickets in
//! Switchboard's own database; the webhook CRM also receives each event as signed JSON
//! (`X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the body>`), retried with exponential
//! backoff. Work is stored as job rows first, so nothing is lost to a restart or an outage.

use crate::app::AppState;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_core::chat::Sender;
use switchboard_core::hours::parse_time_zone;
use switchboard_core::jobs::next_attempt;
use switchboard_core::{IdentityId, JobId, TicketId, VisitorId};
use switchboard_store::{Job, JobState, Ticket};
use uuid::Uuid;

/// How long a claimed job is ours before another worker may take it over.
const LEASE_SECONDS: i64 = 120;

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
}

/// The job row's payload: the event with its ids as text.
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Payload {
    TicketCreated { ticket: String },
    TicketClosed { ticket: String },
    IdentityMerged { visitor: String, identity: String },
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
            },
        )
    }
}

/// Stores the event as a job and wakes the worker.
pub async fn enqueue(app: &AppState, event: Event) {
    let now = Utc::now();
    let job = Job {
        id: JobId::from_uuid(Uuid::now_v7()),
        kind: "crm".into(),
        payload: serde_json::to_string(&event.payload()).unwrap_or_default(),
        state: JobState::Pending,
        run_at: now,
        attempts: 0,
        last_error: None,
        created_at: now,
    };
    match app.store.enqueue_job(&job).await {
        Ok(()) => app.jobs_wake.notify_one(),
        Err(error) => tracing::error!(%error, ?event, "CRM job not stored"),
    }
}

/// Runs due jobs until none is due; returns how many ran.
pub async fn run_due_jobs(app: &AppState) -> usize {
    let mut ran = 0;
    loop {
        let now = Utc::now();
        let job = match app
            .store
            .claim_job(now, now + Duration::seconds(LEASE_SECONDS))
            .await
        {
            Ok(Some(job)) => job,
            Ok(None) => return ran,
            Err(error) => {
                tracing::warn!(%error, "claiming a job failed");
                return ran;
            }
        };
        ran += 1;
        let outcome = run(app, &job).await;
        let stored = match outcome {
            Ok(()) => app.store.complete_job(job.id).await,
            Err(error) => {
                let retry = next_attempt(job.attempts, Utc::now());
                tracing::warn!(job = %job.id, attempts = job.attempts, %error, retry = ?retry, "job failed");
                app.store.fail_job(job.id, &error, retry).await
            }
        };
        if let Err(error) = stored {
            tracing::error!(%error, "job outcome not stored; the lease will expire and it runs again");
        }
    }
}

/// The worker: runs jobs as they come and as retries fall due.
pub fn spawn_worker(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            run_due_jobs(&app).await;
            tokio::select! {
                _ = app.jobs_wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    })
}

async fn run(app: &AppState, job: &Job) -> Result<(), String> {
    let event = Event::from_payload(&job.payload)?;
    let body = match &event {
        Event::TicketCreated { ticket } => {
            let ticket = app
                .store
                .get_ticket(*ticket)
                .await
                .map_err(|e| e.to_string())?;
            json!({ "event": "ticket.created", "ticket": ticket_json(&ticket) })
        }
        Event::TicketClosed { ticket } => {
            let mut ticket = app
                .store
                .get_ticket(*ticket)
                .await
                .map_err(|e| e.to_string())?;
            let (transcript, messages, attachments) = transcript(app, &ticket).await?;
            if ticket.status != "solved"
                || ticket.transcript.as_deref() != Some(transcript.as_str())
            {
                ticket.status = "solved".into();
                ticket.transcript = Some(transcript.clone());
                ticket.updated_at = Utc::now();
                app.store
                    .update_ticket(&ticket)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            json!({ "event": "ticket.closed", "ticket": ticket_json(&ticket), "transcript": transcript, "messages": messages, "attachments": attachments })
        }
        Event::IdentityMerged { visitor, identity } => {
            let identity = app
                .store
                .identity(*identity)
                .await
                .map_err(|e| e.to_string())?;
            let tickets: Vec<Value> = app
                .store
                .tickets_of_visitor(*visitor)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .map(ticket_json)
                .collect();
            json!({ "event": "identity.merged", "identity": { "external_id": identity.external_id, "email": identity.email, "name": identity.name }, "visitor_id": visitor.to_string(), "tickets": tickets })
        }
    };
    let settings = app
        .store
        .integration_settings(&crate::secret::random_token(32))
        .await
        .map_err(|e| e.to_string())?;
    if settings.crm_connector != "webhook" {
        return Ok(());
    }
    let url = settings
        .crm_webhook_url
        .ok_or("the webhook CRM has no URL")?;
    let secret = settings.crm_webhook_secret.unwrap_or_default();
    let answer = deliver(&app.http, &url, &secret, &job.id.to_string(), &body).await?;
    if let (Event::TicketCreated { ticket }, Some(external)) =
        (&event, answer.get("external_id").and_then(Value::as_str))
    {
        let mut stored = app
            .store
            .get_ticket(*ticket)
            .await
            .map_err(|e| e.to_string())?;
        stored.external_id = Some(external.chars().take(200).collect());
        app.store
            .update_ticket(&stored)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The signature a webhook receiver checks: hex HMAC-SHA256 of the exact body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// POSTs the event; any answer but 2xx is a failure to retry. Returns the JSON answer, if any.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    delivery: &str,
    body: &Value,
) -> Result<Value, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-switchboard-event",
            body["event"].as_str().unwrap_or_default(),
        )
        .header("x-switchboard-delivery", delivery)
        .header(
            "x-switchboard-signature",
            format!("sha256={}", signature(secret, &bytes)),
        )
        .body(bytes)
        .send()
        .await
        .map_err(|e| format!("webhook unreachable: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("webhook answered {status}"));
    }
    Ok(response.json::<Value>().await.unwrap_or(Value::Null))
}

fn ticket_json(ticket: &Ticket) -> Value {
    json!({
        "id": ticket.id.to_string(),
        "name": ticket.name,
        "status": ticket.status,
        "contact_id": ticket.contact.map(|c| c.to_string()),
        "visitor_id": ticket.visitor.map(|v| v.to_string()),
        "identity_id": ticket.identity.map(|i| i.to_string()),
        "external_id": ticket.external_id,
        "created_at": ticket.created_at,
    })
}

/// The chat's transcript as text (in the center's time zone), its messages and attachments.
async fn transcript(
    app: &AppState,
    ticket: &Ticket,
) -> Result<(String, Vec<Value>, Vec<Value>), String> {
    let contact = ticket.contact.ok_or("the ticket has no chat")?;
    let zone = parse_time_zone(
        &app.store
            .center_settings()
            .await
            .map_err(|e| e.to_string())?
            .time_zone,
    )
    .unwrap_or(chrono_tz::UTC);
    let attachments = app
        .store
        .attachments_of(contact)
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let batch = app
            .store
            .messages(contact, after, 500)
            .await
            .map_err(|e| e.to_string())?;
        for message in &batch {
            after = message.seq;
            let who = match message.sender {
                Sender::Consumer => ticket.name.clone(),
                Sender::Agent(agent) => app.chat.agent_name(app, agent).await,
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
            messages.push(json!({ "seq": message.seq, "from": who, "text": message.text, "sent_at": message.sent_at, "attachment_id": message.attachment.map(|a| a.to_string()) }));
        }
        if batch.len() < 500 {
            break;
        }
    }
    let files = attachments
        .iter()
        .map(|a| json!({ "id": a.id.to_string(), "name": a.name, "mime": a.kind.mime(), "size": a.size, "url": format!("/apps/api/v1/attachments/{}", a.id) }))
        .collect();
    Ok((lines.join("\n"), messages, files))
}
