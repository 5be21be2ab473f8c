//! The SMS channel. A conversation is a chat whose channel is SMS: routed by the contact
//! service within agents' capacity, offered and answered on the agent chat protocol like any
//! chat, its transcript sent to the CRM at the end. What is SMS's own is here: the connector
//! that sends (log-only into `outbox/` under the data directory, the default; or Twilio's
//! Messages API), the `sms_send` job handler, and what an inbound message does.
//!
//! Every outbound message is an `sms_send` job first (its payload the message), so a restart
//! loses none; the job's id is the message's, made from what caused it (the agent's chat
//! message, the inbound `MessageSid`, the call and agent), so a resend or a webhook Twilio
//! retries stores no second job. Failure policy: Twilio's 429 waits for its `Retry-After`, a
//! 5xx or a network failure is retried by the core's policy, any other 4xx gives up and marks
//! the message failed. A send Twilio accepted keeps its sid, and a job run again after that
//! (a lost lease) sends nothing twice.
//!
//! Inbound (`receive`, after the webhook's signature is checked): stored once by `MessageSid`;
//! a number with an open conversation adds the message to it; a new number is sent the SMS
//! tree's reply-digit menu when it has more than one leaf (`switchboard_core::sms::SmsMenu`),
//! and its reply picks the queue; a queue outside its hours that deflects answers with the
//! rule's text (AHD-5) and starts nothing; otherwise the conversation starts in the queue.

pub mod twilio;

use crate::chat::ChatService;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use switchboard_core::after_hours::Decision;
use switchboard_core::sms::{DeliveryStatus, SendVerdict, SmsMenu, SmsPurpose};
use switchboard_core::{Channel, ContactId, JobId, QueueTree, VisitorId};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{
    InboundSms, Job, OutboundSms, SmsSender, SmsSettings, Store, StoreError, Visitor,
};
use uuid::Uuid;

/// The webhook Twilio sends inbound messages to (configured on the number), under the public
/// URL.
pub const INBOUND_PATH: &str = "/sms/v1/twilio/inbound";
/// Where Twilio reports a sent message's status (the `StatusCallback` of each send).
pub const STATUS_PATH: &str = "/sms/v1/twilio/status";

/// An `sms_send` job's payload (a storage format).
#[derive(Serialize, Deserialize)]
struct Payload {
    to: String,
    body: String,
    purpose: String,
    #[serde(default)]
    contact: Option<String>,
}

/// A job id made from a text that names the message's cause, so the same cause stores one job.
pub fn message_id(cause: &str) -> JobId {
    let digest = Sha256::digest(cause.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    JobId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// Stores an SMS to send as a job (once per id); the worker sends it.
pub async fn queue_sms(
    jobs: &Jobs,
    id: JobId,
    to: &str,
    body: &str,
    purpose: SmsPurpose,
    contact: Option<ContactId>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&Payload {
        to: to.to_owned(),
        body: body.to_owned(),
        purpose: purpose.as_str().to_owned(),
        contact: contact.map(|c| c.to_string()),
    })
    .map_err(|e| StoreError::Config(e.to_string()))?;
    jobs.enqueue_once(id, JobKind::SmsSend, payload, now, now)
        .await
}

/// Sends an agent's chat message in an SMS conversation to the conversation's number.
pub async fn queue_reply(
    store: &Arc<dyn Store>,
    jobs: &Jobs,
    chat: ContactId,
    message: switchboard_core::MessageId,
    text: &str,
) -> Result<(), StoreError> {
    let session = store.get_chat(chat).await?;
    let ticket = store.get_ticket(session.ticket).await?;
    let Some(phone) = ticket.phone else {
        return Err(StoreError::Corrupt(format!(
            "SMS conversation {chat} has no phone number"
        )));
    };
    queue_sms(
        jobs,
        JobId::from_uuid(message.uuid()),
        &phone,
        text,
        SmsPurpose::Reply,
        Some(chat),
        Utc::now(),
    )
    .await
    .map(|_| ())
}

/// An inbound message as the webhook gave it, its signature already checked.
pub struct Inbound {
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
}

/// What an inbound message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Added to the sender's open conversation, or started one.
    Conversation(ContactId),
    /// The sender was sent the queue menu (or it again, for a reply that picks nothing).
    MenuSent,
    /// The queue is closed and deflects: the sender was sent its after-hours text.
    AfterHours,
    /// The center has no SMS queue: kept, and nothing else.
    NoQueue,
}

/// The SMS channel's service: inbound messages, and the `sms_send` job handler.
pub struct SmsService {
    store: Arc<dyn Store>,
    jobs: Jobs,
    chat: Arc<ChatService>,
    http: reqwest::Client,
    /// Where the log-only connector writes (`outbox/` under the data directory).
    outbox: PathBuf,
    wall_clock: crate::config::WallClock,
    /// The settings as last read, with the configuration generation they were read at: every
    /// webhook needs the auth token, and settings change only through the API, which announces
    /// it (`ConfigArea::Integration`).
    settings: std::sync::Mutex<Option<(u64, SmsSettings)>>,
    config: switchboard_services::config::ConfigEvents,
    /// The inbound writers' queues: inbound rows are stored in batches (group commit). SQLite
    /// has one writer connection, so one writer; PostgreSQL commits several at once, so four,
    /// a sender's rows always to the same one.
    inbound: Vec<tokio::sync::mpsc::Sender<PendingInbound>>,
}

/// An inbound row waiting for the writer, and where to send the outcome.
struct PendingInbound {
    message: InboundSms,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// Rows stored together in one transaction at most.
const MAX_INBOUND_BATCH: usize = 256;

/// Group commit for inbound rows: takes every row waiting, stores them in one transaction,
/// then answers each. If the batch fails, each row is stored alone so only a bad one fails.
async fn write_inbound(
    store: Arc<dyn Store>,
    mut queue: tokio::sync::mpsc::Receiver<PendingInbound>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_INBOUND_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let rows: Vec<InboundSms> = batch.iter().map(|p| p.message.clone()).collect();
        match store.record_inbound_sms_batch(&rows).await {
            Ok(()) => {
                for pending in batch {
                    let _ = pending.reply.send(Ok(()));
                }
            }
            Err(_) => {
                for pending in batch {
                    let result = store.record_inbound_sms(&pending.message).await.map(|_| ());
                    let _ = pending.reply.send(result);
                }
            }
        }
    }
}

impl SmsService {
    /// The SMS settings, read again once the configuration has changed.
    pub async fn settings(&self) -> Result<SmsSettings, StoreError> {
        let generation = self.config.generation();
        if let Some((at, settings)) = self.settings.lock().ok().and_then(|s| s.clone()) {
            if at == generation {
                return Ok(settings);
            }
        }
        let settings = self.store.sms_settings().await?;
        if let Ok(mut slot) = self.settings.lock() {
            *slot = Some((generation, settings.clone()));
        }
        Ok(settings)
    }

    /// Stores an inbound row through the writer and waits until it is committed.
    async fn store_inbound(&self, message: InboundSms) -> Result<(), StoreError> {
        let stopped = || StoreError::Config("the inbound SMS writer has stopped".into());
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let writer = Sha256::digest(message.from.as_bytes())[0] as usize % self.inbound.len();
        self.inbound[writer]
            .send(PendingInbound { message, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    pub fn new(
        store: Arc<dyn Store>,
        jobs: Jobs,
        chat: Arc<ChatService>,
        http: reqwest::Client,
        data_dir: &std::path::Path,
        wall_clock: crate::config::WallClock,
        config: switchboard_services::config::ConfigEvents,
    ) -> Self {
        let count = if store.backend() == "postgres" { 4 } else { 1 };
        let inbound = (0..count)
            .map(|_| {
                let (writer, queue) = tokio::sync::mpsc::channel(4 * MAX_INBOUND_BATCH);
                tokio::spawn(write_inbound(store.clone(), queue));
                writer
            })
            .collect();
        Self {
            settings: std::sync::Mutex::default(),
            config,
            inbound,
            store,
            jobs,
            chat,
            http,
            outbox: data_dir.join("outbox"),
            wall_clock,
        }
    }

    /// Handles an inbound message (see the module's doc). Everything is stored before this
    /// returns; Twilio is answered after it.
    pub async fn receive(&self, inbound: Inbound) -> Result<Received, crate::chat::ChatError> {
        let now = Utc::now();
        let store = &self.store;
        let record = |contact: Option<ContactId>| InboundSms {
            message_sid: inbound.message_sid.clone(),
            from: inbound.from.clone(),
            to: inbound.to.clone(),
            body: inbound.body.clone(),
            contact,
            received_at: now,
        };
        let (mut sender, open) = match store.sms_conversation(&inbound.from).await? {
            Some(found) => found,
            None => {
                let visitor = Visitor {
                    id: VisitorId::from_uuid(Uuid::now_v7()),
                    // Not a hash of any token: no widget can ever present it.
                    token_hash: format!("sms:{}", inbound.from),
                    identity: None,
                    created_at: now,
                };
                store.create_visitor(&visitor).await?;
                let sender = SmsSender {
                    phone: inbound.from.clone(),
                    visitor: visitor.id,
                    menu_sent_at: None,
                };
                store.put_sms_sender(&sender).await?;
                (sender, None)
            }
        };
        // The busy path, a message in an open conversation: two writes (the message as Twilio
        // sent it, naming its conversation, and the chat message).
        if let Some(open) = open.as_ref() {
            // Both group-committed, side by side: the answer waits for the later of the two.
            let (stored, shown) = tokio::join!(
                self.store_inbound(record(Some(*open))),
                self.chat
                    .receive_sms(*open, &inbound.message_sid, &inbound.body)
            );
            stored?;
            shown?;
            return Ok(Received::Conversation(*open));
        }
        self.store_inbound(record(None)).await?;
        let tree = QueueTree::new(store.list_queues().await?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let menu = SmsMenu::new(&tree);
        if menu.is_empty() {
            tracing::warn!(from = %inbound.from, "an SMS arrived and the center has no SMS queue");
            return Ok(Received::NoQueue);
        }
        let chosen = menu
            .only_leaf()
            .or_else(|| sender.menu_sent_at.and_then(|_| menu.choose(&inbound.body)));
        let Some(queue) = chosen else {
            queue_sms(
                &self.jobs,
                message_id(&format!("menu:{}", inbound.message_sid)),
                &inbound.from,
                &menu.text(),
                SmsPurpose::Menu,
                None,
                now,
            )
            .await?;
            sender.menu_sent_at = Some(now);
            store.put_sms_sender(&sender).await?;
            return Ok(Received::MenuSent);
        };
        if sender.menu_sent_at.take().is_some() {
            store.put_sms_sender(&sender).await?;
        }
        let hours = crate::http::after_hours::load(store.as_ref()).await?;
        if let Decision::Deflect(rule) =
            hours.decide(queue, Channel::Sms, None, self.wall_clock.now())
        {
            queue_sms(
                &self.jobs,
                message_id(&format!("after-hours:{}", inbound.message_sid)),
                &inbound.from,
                rule.message_for(None),
                SmsPurpose::AfterHours,
                None,
                now,
            )
            .await?;
            return Ok(Received::AfterHours);
        }
        let chat = self
            .chat
            .start_sms(sender.visitor, &inbound.from, queue)
            .await?;
        self.chat
            .receive_sms(chat, &inbound.message_sid, &inbound.body)
            .await?;
        store
            .set_inbound_contact(&inbound.message_sid, chat)
            .await?;
        Ok(Received::Conversation(chat))
    }

    /// NTF-4: when a call is offered to an agent (routing assigned or handed it to them) and
    /// the center has it enabled, texts the number on the agent's profile. Spawned, so the
    /// call never waits for the store; the job's id names the call, the agent and the moment
    /// it was offered, so the same offer is texted once.
    pub fn call_offered(self: &Arc<Self>, change: &switchboard_services::bus::ContactChange) {
        use switchboard_services::bus::ContactChange;
        let contact = match change {
            ContactChange::Assigned(contact) | ContactChange::Handed { contact, .. } => contact,
            _ => return,
        };
        let (Some(agent), Some(offered)) = (contact.agent, contact.assigned_at) else {
            return;
        };
        let service = self.clone();
        let contact = contact.clone();
        tokio::spawn(async move {
            if let Err(error) = service.notify_agent(&contact, agent, offered).await {
                tracing::warn!(%error, contact = %contact.id, "the agent's call text was not stored");
            }
        });
    }

    async fn notify_agent(
        &self,
        contact: &switchboard_core::Contact,
        agent: switchboard_core::UserId,
        offered: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !self.settings().await?.notify_agents {
            return Ok(());
        }
        let Some(number) = self.store.agent_sms_number(agent).await? else {
            return Ok(());
        };
        let text = switchboard_core::sms::agent_notice(
            contact.customer.as_deref(),
            Some(contact.issue.as_str()).filter(|i| !i.is_empty()),
        );
        queue_sms(
            &self.jobs,
            message_id(&format!(
                "call:{}:{agent}:{}",
                contact.id,
                offered.timestamp_millis()
            )),
            &number,
            &text,
            SmsPurpose::AgentNotice,
            None,
            Utc::now(),
        )
        .await
        .map(|_| ())
    }

    /// Sends through the configured connector.
    async fn send(&self, settings: &SmsSettings, message: &OutboundSms) -> Sent {
        match settings.connector.as_str() {
            "twilio" => self.send_twilio(settings, message).await,
            _ => self.send_to_outbox(settings, message).await,
        }
    }

    /// The log-only connector: the message as a text file `<id>.sms` in the outbox (written
    /// whole, then renamed into place).
    async fn send_to_outbox(&self, settings: &SmsSettings, message: &OutboundSms) -> Sent {
        let dir = self.outbox.clone();
        let name = message.id.to_string();
        let text = format!(
            "From: {}\nTo: {}\nPurpose: {}\n\n{}\n",
            settings.from_number.as_deref().unwrap_or(""),
            message.to,
            message.purpose.as_str(),
            message.body
        );
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let partial = dir.join(format!(".{name}.sms.partial"));
            std::fs::write(&partial, text)?;
            std::fs::rename(&partial, dir.join(format!("{name}.sms")))
        })
        .await;
        match written {
            Ok(Ok(())) => Sent::Accepted {
                sid: format!("log-{}", message.id),
                status: DeliveryStatus::Sent,
            },
            Ok(Err(error)) => Sent::Retry(format!("the outbox: {error}")),
            Err(error) => Sent::Retry(format!("the outbox: {error}")),
        }
    }

    /// Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`.
    async fn send_twilio(&self, settings: &SmsSettings, message: &OutboundSms) -> Sent {
        let (Some(account), Some(token), Some(from)) = (
            settings.account_sid.as_deref(),
            settings.auth_token.as_deref(),
            settings.from_number.as_deref(),
        ) else {
            return Sent::Retry(
                "the Twilio connector needs account_sid, auth_token and from_number".into(),
            );
        };
        let base = settings
            .api_base
            .as_deref()
            .unwrap_or(twilio::DEFAULT_API_BASE)
            .trim_end_matches('/');
        let url = format!("{base}/2010-04-01/Accounts/{account}/Messages.json");
        let mut form = vec![
            ("To", message.to.clone()),
            ("From", from.to_owned()),
            ("Body", message.body.clone()),
        ];
        if let Some(public) = settings.public_url.as_deref() {
            form.push((
                "StatusCallback",
                format!("{}{STATUS_PATH}", public.trim_end_matches('/')),
            ));
        }
        let answer = self
            .http
            .post(&url)
            .basic_auth(account, Some(token))
            .form(&form)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => return Sent::Retry(format!("Twilio could not be reached: {error}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|s| chrono::Duration::seconds(s.clamp(0, 86_400)));
        let body = response.text().await.unwrap_or_default();
        match SendVerdict::of_status(status) {
            SendVerdict::Accepted => match serde_json::from_str::<twilio::MessageResource>(&body) {
                Ok(resource) => Sent::Accepted {
                    status: resource
                        .status
                        .as_deref()
                        .and_then(DeliveryStatus::from_twilio)
                        .unwrap_or(DeliveryStatus::Sent),
                    sid: resource.sid,
                },
                // Accepted without a readable sid: it was sent; callbacks cannot find it.
                Err(_) => Sent::Accepted {
                    sid: format!("unknown-{}", message.id),
                    status: DeliveryStatus::Sent,
                },
            },
            SendVerdict::RetryLater => match retry_after {
                Some(wait) if status == 429 => {
                    Sent::RetryAfter(twilio::refusal_text(status, &body), wait)
                }
                _ => Sent::Retry(twilio::refusal_text(status, &body)),
            },
            SendVerdict::GiveUp => Sent::GiveUp(twilio::refusal_text(status, &body)),
        }
    }
}

/// How one send went.
enum Sent {
    Accepted { sid: String, status: DeliveryStatus },
    Retry(String),
    RetryAfter(String, chrono::Duration),
    GiveUp(String),
}

#[async_trait]
impl JobHandler for SmsService {
    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        let Ok(payload) = serde_json::from_str::<Payload>(&job.payload) else {
            return JobOutcome::GiveUp {
                error: "unreadable sms_send payload".into(),
            };
        };
        let (Ok(purpose), contact) = (
            SmsPurpose::parse(&payload.purpose),
            payload
                .contact
                .as_deref()
                .and_then(|c| ContactId::parse(c).ok()),
        ) else {
            return JobOutcome::GiveUp {
                error: format!("unknown SMS purpose `{}`", payload.purpose),
            };
        };
        let store = &self.store;
        let retry = |error: StoreError| JobOutcome::Retry {
            error: format!("the database: {error}"),
        };
        let row = OutboundSms {
            id: job.id,
            contact,
            to: payload.to,
            body: payload.body,
            purpose,
            status: DeliveryStatus::Queued,
            provider_sid: None,
            error: None,
            created_at: job.created_at,
            updated_at: now,
        };
        if let Err(error) = store.add_outbound_sms(&row).await {
            return retry(error);
        }
        let message = match store.outbound_sms(job.id).await {
            Ok(message) => message,
            Err(error) => return retry(error),
        };
        // Sent already by an earlier run whose outcome was lost: never twice.
        if message.provider_sid.is_some() || message.status == DeliveryStatus::Failed {
            return JobOutcome::Done;
        }
        let settings = match self.settings().await {
            Ok(settings) => settings,
            Err(error) => return retry(error),
        };
        let (sid, status, error, outcome) = match self.send(&settings, &message).await {
            Sent::Accepted { sid, status } => (Some(sid), status, None, JobOutcome::Done),
            Sent::Retry(error) => (
                None,
                DeliveryStatus::Queued,
                Some(error.clone()),
                JobOutcome::Retry { error },
            ),
            Sent::RetryAfter(error, wait) => (
                None,
                DeliveryStatus::Queued,
                Some(error.clone()),
                JobOutcome::RetryAfter { error, wait },
            ),
            Sent::GiveUp(error) => (
                None,
                DeliveryStatus::Failed,
                Some(error.clone()),
                JobOutcome::GiveUp { error },
            ),
        };
        if let Err(failure) = store
            .set_outbound_sms_state(job.id, sid.as_deref(), status, error.as_deref(), now)
            .await
        {
            tracing::error!(error = %failure, job = %job.id, "an SMS's state was not stored");
            if sid.is_some() {
                // Twilio has it; running again would find no sid and send it twice.
                tracing::warn!(job = %job.id, "an accepted SMS may be sent again");
            }
        }
        outcome
    }
}
