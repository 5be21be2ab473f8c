//! Messages consumers leave instead of chatting (AHD-4, a closed queue that offers email) or
//! instead of waiting longer (a chat past the center's wait offer). The request is stored as an
//! `offer_email` job whose payload is the whole message, so it survives a restart and an
//! outage of the mail server; the job mails it to the help-center address (Reply-To the
//! consumer, its Message-ID the request's, so a resend after a lost answer is one message), or,
//! when the center has no address, makes it a CRM ticket (made once, by the request's id) that
//! the CRM connector delivers.

use crate::crm;
use crate::mail::Mailer;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use switchboard_core::emergency::notice::format_time;
use switchboard_core::hours::parse_time_zone;
use switchboard_core::offer::{Delivery, EmailRequest, Reason};
use switchboard_core::{JobId, QueueId, TicketId, VisitorId};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{Job, Store, StoreError, StoreResult, Ticket};

/// The job's payload: the request as it was accepted (a stored form, not a wire one).
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Payload {
    queue_id: String,
    queue_path: String,
    reason: String,
    from: String,
    name: Option<String>,
    text: String,
    received_at: DateTime<Utc>,
    visitor_id: Option<String>,
    /// `mail` with `to`, or `ticket`: decided when the request was accepted.
    delivery: String,
    to: Option<String>,
}

/// A message a consumer left, ready to be stored.
pub struct LeftMessage<'a> {
    pub request: &'a EmailRequest,
    pub queue: QueueId,
    pub queue_path: &'a str,
    pub reason: Reason,
    pub visitor: VisitorId,
    /// The widget's id for this request: the same id sent twice is one message.
    pub client_id: &'a str,
    pub delivery: &'a Delivery,
}

/// A uuid named by what it is for and its parts: the same parts always give the same id.
fn derived(what: &str, parts: &[&str]) -> uuid::Uuid {
    let mut digest = Sha256::new().chain_update(what.as_bytes());
    for part in parts {
        digest = digest.chain_update(b"\0").chain_update(part.as_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.finalize()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The job's id for a visitor's request: a resend of the same client id finds the job stored.
fn job_id(visitor: VisitorId, client_id: &str) -> JobId {
    JobId::from_uuid(derived("offer-email", &[&visitor.to_string(), client_id]))
}

/// Stores the message as a job (once per client id) and wakes the worker; the message is
/// accepted once this returns.
pub async fn store(jobs: &Jobs, left: LeftMessage<'_>, now: DateTime<Utc>) -> StoreResult<()> {
    let (delivery, to) = match left.delivery {
        Delivery::Mail(to) => ("mail", Some(to.as_str().to_owned())),
        Delivery::Ticket => ("ticket", None),
    };
    let payload = Payload {
        queue_id: left.queue.to_string(),
        queue_path: left.queue_path.to_owned(),
        reason: left.reason.as_str().to_owned(),
        from: left.request.from.as_str().to_owned(),
        name: left.request.name.clone(),
        text: left.request.text().to_owned(),
        received_at: now,
        visitor_id: Some(left.visitor.to_string()),
        delivery: delivery.to_owned(),
        to,
    };
    let text = serde_json::to_string(&payload).map_err(|e| StoreError::Config(e.to_string()))?;
    jobs.enqueue_once(
        job_id(left.visitor, left.client_id),
        JobKind::OfferEmail,
        text,
        now,
        now,
    )
    .await
    .map(|_| ())
}

/// Runs `offer_email` jobs.
pub struct OfferMailer {
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
    jobs: Jobs,
}

impl OfferMailer {
    pub fn new(store: Arc<dyn Store>, mailer: Arc<Mailer>, jobs: Jobs) -> Self {
        Self {
            store,
            mailer,
            jobs,
        }
    }

    async fn mail(
        &self,
        job: &Job,
        request: &EmailRequest,
        subject: String,
        body: String,
        to: &str,
        now: DateTime<Utc>,
    ) -> JobOutcome {
        let Ok(to) = to.parse::<Mailbox>() else {
            return JobOutcome::GiveUp {
                error: format!("the help-center address `{to}` is not a mail address"),
            };
        };
        let reply_to = Mailbox::new(
            request.name.clone(),
            match request.from.as_str().parse() {
                Ok(address) => address,
                Err(error) => {
                    return JobOutcome::GiveUp {
                        error: format!("the consumer's address: {error}"),
                    }
                }
            },
        );
        let domain = self.mailer.from().email.domain().to_owned();
        let message = Message::builder()
            .from(self.mailer.from().clone())
            .reply_to(reply_to)
            .to(to)
            .subject(subject)
            .date(now.into())
            .message_id(Some(format!("<offer-{}@{domain}>", job.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                return JobOutcome::GiveUp {
                    error: format!("the message could not be built: {error}"),
                }
            }
        };
        match self
            .mailer
            .send(&format!("offer-{}", job.id), message)
            .await
        {
            Ok(()) => JobOutcome::Done,
            Err(error) if error.permanent => JobOutcome::GiveUp {
                error: error.message,
            },
            Err(error) => JobOutcome::Retry {
                error: error.message,
            },
        }
    }

    /// The request as a CRM ticket: made once (its id is the job's), then announced to the
    /// connector (once per ticket).
    async fn ticket(
        &self,
        job: &Job,
        payload: &Payload,
        subject: String,
        body: String,
    ) -> JobOutcome {
        let id = TicketId::from_uuid(derived("offer-ticket", &[&job.id.to_string()]));
        let made = match self.store.get_ticket(id).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(_)) => {
                let visitor = payload
                    .visitor_id
                    .as_deref()
                    .and_then(|v| VisitorId::parse(v).ok());
                let identity = match visitor {
                    Some(visitor) => self
                        .store
                        .get_visitor(visitor)
                        .await
                        .ok()
                        .and_then(|v| v.identity),
                    None => None,
                };
                self.store
                    .insert_ticket(&Ticket {
                        id,
                        contact: None,
                        visitor,
                        identity,
                        name: subject,
                        status: "open".into(),
                        transcript: Some(body),
                        external_id: None,
                        created_at: payload.received_at,
                        updated_at: payload.received_at,
                        call: None,
                        phone: None,
                    })
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = made {
            return JobOutcome::Retry {
                error: format!("the database: {error}"),
            };
        }
        crm::enqueue(&self.jobs, crm::Event::TicketCreated { ticket: id }).await;
        JobOutcome::Done
    }
}

#[async_trait]
impl JobHandler for OfferMailer {
    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        let unreadable = |error: &dyn std::fmt::Display| JobOutcome::GiveUp {
            error: format!("unreadable job: {error}"),
        };
        let payload: Payload = match serde_json::from_str(&job.payload) {
            Ok(payload) => payload,
            Err(error) => return unreadable(&error),
        };
        let request = match EmailRequest::new(&payload.from, payload.name.as_deref(), &payload.text)
        {
            Ok(request) => request,
            Err(error) => return unreadable(&error),
        };
        let Some(reason) = Reason::parse(&payload.reason) else {
            return unreadable(&format!("`{}` is not a reason", payload.reason));
        };
        let zone = match self.store.center_settings().await {
            Ok(settings) => parse_time_zone(&settings.time_zone).unwrap_or(chrono_tz::UTC),
            Err(error) => {
                return JobOutcome::Retry {
                    error: format!("the database: {error}"),
                }
            }
        };
        let (subject, body) = request.render(
            &payload.queue_path,
            reason,
            &format_time(payload.received_at, zone),
        );
        match (payload.delivery.as_str(), payload.to.as_deref()) {
            ("mail", Some(to)) => self.mail(job, &request, subject, body, to, now).await,
            ("ticket", _) => self.ticket(job, &payload, subject, body).await,
            (other, _) => unreadable(&format!("`{other}` is not a delivery")),
        }
    }
}
