//! Web chat: the consumer and agent WebSocket protocols, the live connections, and what chats
//! do when routing moves them. Every message is stored before it is acknowledged or shown to
//! anyone; live delivery is best effort on top, and clients catch up by sequence number.
//!
//! `ChatService` holds the handles it works with (the store, the contact service, the job
//! queue for CRM deliveries, agents' names); the HTTP layer hands it sockets and the signed-in
//! agent as a domain value (`Actor`). The frames on the sockets are chat's own wire, in
//! `protocol`.

pub mod agent;
pub mod connection;
pub mod consumer;
pub mod hub;
pub mod offers;
pub mod protocol;
mod sms;
pub mod watch;

use crate::crm;
use chrono::Utc;
use hub::{Conn, Hub, WatchFrame};
use protocol::{
    AgentChat, AttachmentView, ChatInfo, CrmRecord, Customer, Flags, MessageView, ServerEvent,
    WatchedAgent, WatchedChat,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_core::after_hours::Decision;
use switchboard_core::chat::{
    anonymous_ticket_name, check_text, ChatMessage, ClientMessageId, PropertyValue,
    ReservedProperties, Sender,
};
use switchboard_core::hours::parse_time_zone;
use switchboard_core::{
    AttachmentId, Channel, Contact, ContactId, Language, MessageId, QueueId, TicketId, UserId,
};
use switchboard_services::bus::{ContactChange, RequeueReason};
use switchboard_services::contacts::{ContactError, ContactService, NewContact, Standing};
use switchboard_services::jobs::Jobs;
use switchboard_store::{ChatSession, NewMessage, Store, StoreError, Ticket, Visitor};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Why a chat command was refused; becomes an `error` frame and closes nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    Invalid(String),
    #[error("chat not found")]
    NotFound,
    #[error("that chat is not yours")]
    Forbidden,
    #[error("the chat has ended")]
    Ended,
    #[error("{}", crate::http::after_hours::CLOSED_QUEUE)]
    QueueClosed,
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error("the server could not complete the request")]
    Store(#[from] StoreError),
}

impl From<switchboard_core::TextError> for ChatError {
    fn from(error: switchboard_core::TextError) -> Self {
        ChatError::Invalid(error.to_string())
    }
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::Invalid(_) => "invalid_field",
            ChatError::NotFound => "not_found",
            ChatError::Forbidden => "forbidden",
            ChatError::Ended => "chat_ended",
            ChatError::QueueClosed => "queue_closed",
            ChatError::Contact(ContactError::UnknownQueue | ContactError::UnknownContact) => {
                "not_found"
            }
            ChatError::Contact(ContactError::NotALeaf | ContactError::WrongChannel) => {
                "invalid_field"
            }
            ChatError::Contact(ContactError::AgentUnavailable) => "agent_unavailable",
            ChatError::Contact(_) => "conflict",
            ChatError::Store(StoreError::NotFound(_)) => "not_found",
            ChatError::Store(_) => "internal",
        }
    }

    pub fn frame(&self, reference: Option<String>) -> Arc<str> {
        if let ChatError::Store(error) = self {
            if !matches!(error, StoreError::NotFound(_)) {
                tracing::error!(%error, "chat command failed");
            }
        }
        ServerEvent::error(self.code(), self.to_string(), reference).to_json()
    }
}

/// A message as a client sent it, before it is checked and stored.
pub struct Draft<'a> {
    pub client_id: &'a str,
    pub text: &'a str,
    pub attachment: Option<&'a str>,
}

/// Messages stored together in one transaction at most (group commit).
const MAX_BATCH: usize = 256;

/// A message waiting for the writer, and where to send the outcome.
struct PendingWrite {
    message: NewMessage,
    reply: oneshot::Sender<Result<(ChatMessage, bool), StoreError>>,
}

/// Agents' display names, cached: names change rarely and messages are many. Shared by chat
/// and the CRM connector's transcripts.
pub struct AgentNames {
    store: Arc<dyn Store>,
    names: Mutex<HashMap<UserId, String>>,
}

impl AgentNames {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            names: Mutex::default(),
        }
    }

    /// An agent's display name ("Agent" when the user cannot be read).
    pub async fn get(&self, agent: UserId) -> String {
        if let Some(name) = self
            .names
            .lock()
            .ok()
            .and_then(|names| names.get(&agent).cloned())
        {
            return name;
        }
        let name = self
            .store
            .get_user(agent)
            .await
            .map(|u| u.display_name.to_string())
            .unwrap_or_else(|_| "Agent".into());
        if let Ok(mut names) = self.names.lock() {
            names.insert(agent, name.clone());
        }
        name
    }
}

/// The chat service: live connections, the message writers, and what it needs of the other
/// services. Lives as long as the server.
impl ChatService {
    /// A closed queue's offers as the widget is sent them: a scheduled call with its voice
    /// queue's next open slots (left out when it has none), email as it is.
    pub async fn offers_frame(
        &self,
        offers: &[switchboard_core::after_hours::ChatOffer],
    ) -> Vec<protocol::Offer> {
        use switchboard_core::after_hours::ChatOffer;
        let mut out = Vec::new();
        for offer in offers {
            match offer {
                ChatOffer::Email => out.push(protocol::Offer::Email),
                ChatOffer::ScheduledCall { queue } => {
                    let store = self.store.as_ref();
                    let Ok(slots) =
                        crate::callbacks::slots(store, *queue, self.wall_clock.now()).await
                    else {
                        continue;
                    };
                    if slots.is_empty() {
                        continue;
                    }
                    let time_zone = store
                        .center_settings()
                        .await
                        .map(|s| s.time_zone)
                        .unwrap_or_else(|_| "UTC".into());
                    out.push(protocol::Offer::ScheduledCall {
                        queue_id: queue.to_string(),
                        time_zone,
                        slot_minutes: switchboard_core::callback::SLOT_MINUTES,
                        slots,
                    });
                }
            }
        }
        out
    }

    /// Refuses a transfer to a queue outside its hours that the agent may not see (AHD-6).
    pub async fn check_transfer(&self, chat: ContactId, queue: QueueId) -> Result<(), ChatError> {
        let Some(channel) = self.contacts.open_contact(chat).await.map(|c| c.channel) else {
            return Ok(());
        };
        let now = self.wall_clock.now();
        if crate::http::after_hours::may_transfer_to(self.store.as_ref(), channel, queue, now)
            .await?
        {
            Ok(())
        } else {
            Err(ChatError::QueueClosed)
        }
    }

    /// A chat transferred to a queue outside its hours that deflects chats gets that queue's
    /// treatment, as a call does (AHD-1, AHD-4): the consumer is shown its after-hours message
    /// and the chat ends (`after_hours`) instead of waiting there. Says whether it did.
    pub async fn deflect_transfer(
        &self,
        chat: ContactId,
        queue: QueueId,
    ) -> Result<bool, ChatError> {
        let Some(contact) = self.contacts.open_contact(chat).await else {
            return Ok(false);
        };
        let hours = crate::http::after_hours::load(self.store.as_ref()).await?;
        let message = match hours.decide(
            queue,
            contact.channel,
            contact.language.as_ref(),
            self.wall_clock.now(),
        ) {
            Decision::Deflect(rule) => rule.message_for(contact.language.as_ref()).to_owned(),
            _ => return Ok(false),
        };
        self.system_message(&contact, message).await;
        self.contacts.end(chat, AFTER_HOURS.into()).await?;
        Ok(true)
    }
}

/// Why a chat ended that was transferred to a queue outside its hours that deflects chats.
pub const AFTER_HOURS: &str = "after_hours";

/// What asking for a chat gave.
pub enum Started {
    Chat(ChatInfo),
    /// The queue is closed and deflects chats: this is its after-hours message.
    Closed {
        queue: QueueId,
        message: String,
        /// What the rule offers instead (a scheduled call, email).
        offers: Vec<switchboard_core::after_hours::ChatOffer>,
    },
}

pub struct ChatService {
    pub hub: Hub,
    /// The clock business hours are read against (the system's; tests move it).
    wall_clock: crate::config::WallClock,
    store: Arc<dyn Store>,
    /// Routing: chats are contacts.
    contacts: ContactService,
    /// Where CRM deliveries are stored.
    jobs: Jobs,
    names: Arc<AgentNames>,
    /// One queue per writer; a chat always goes to the same one, so its messages keep their order.
    writers: Vec<mpsc::Sender<PendingWrite>>,
    /// Which adapters and widgets are connected, for presence and abandoned chats.
    pub attendance: crate::attendance::AttendanceWatch,
    /// The queue standing each waiting chat's consumer was last shown (position, estimated
    /// seconds), so only changes are sent; a chat leaves it when it stops waiting.
    shown_standings: Mutex<HashMap<ContactId, (usize, Option<u64>)>>,
    /// Wakes the standings refresher early: routing moved a chat, so positions may have moved.
    standings_moved: tokio::sync::Notify,
    /// The waiting chats already offered to leave a message instead (sent once each).
    wait_offered: Mutex<std::collections::HashSet<ContactId>>,
}

/// How often waiting consumers' standings are looked at besides when routing moves a chat
/// (estimates drift with time even when nothing moves).
const STANDINGS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Estimates are shown in steps of this many seconds, so a consumer is not sent a new one
/// every few seconds for a change nobody would notice.
const ESTIMATE_STEP_SECONDS: u64 = 15;

/// The estimate as shown: whole steps, rounded up.
fn shown_estimate(standing: &Standing) -> Option<u64> {
    standing.estimate.map(|wait| {
        let seconds = wait.num_seconds().max(0) as u64;
        seconds.div_ceil(ESTIMATE_STEP_SECONDS) * ESTIMATE_STEP_SECONDS
    })
}

impl ChatService {
    /// Starts the service and its writer tasks (which end when the service is dropped). SQLite
    /// has one writer connection, so one writer; PostgreSQL commits several transactions at
    /// once and flushes them together, so chats are spread over four writers.
    pub fn new(
        store: Arc<dyn Store>,
        contacts: ContactService,
        jobs: Jobs,
        names: Arc<AgentNames>,
        wall_clock: crate::config::WallClock,
    ) -> Self {
        let count = if store.backend() == "postgres" { 4 } else { 1 };
        let writers = (0..count)
            .map(|_| {
                let (writer, queue) = mpsc::channel(4 * MAX_BATCH);
                tokio::spawn(write_messages(store.clone(), queue));
                writer
            })
            .collect();
        Self {
            hub: Hub::default(),
            wall_clock,
            store,
            contacts,
            jobs,
            names,
            writers,
            attendance: Default::default(),
            shown_standings: Mutex::default(),
            standings_moved: tokio::sync::Notify::new(),
            wait_offered: Mutex::default(),
        }
    }

    /// A consumer's connection joins a chat: it gets the chat's events from now on, and the
    /// chat counts as attended while it is open.
    pub fn join(&self, chat: ContactId, conn: &Conn) {
        self.hub.join_chat(chat, conn);
        self.attendance.chat_joined(chat, conn.id);
    }

    /// The `queue_position` frame for a chat waiting in a queue, remembered as shown, and the
    /// wait offer when the chat has waited past it; nothing when the chat does not wait.
    pub async fn standing_frame(&self, chat: ContactId) -> Vec<Arc<str>> {
        let Some((_, standing)) = self.contacts.standings(vec![chat]).await.pop() else {
            return Vec::new();
        };
        let shown = (standing.position, shown_estimate(&standing));
        if let Ok(mut shown_standings) = self.shown_standings.lock() {
            shown_standings.insert(chat, shown);
        }
        let mut frames = vec![standing_event(chat, shown)];
        let offer = match self.store.offer_settings().await {
            Ok(settings) => settings.wait_offer_due(standing.waiting_since, Utc::now()),
            Err(error) => {
                tracing::warn!(%error, "offer settings not read");
                false
            }
        };
        if offer {
            if let Ok(mut offered) = self.wait_offered.lock() {
                offered.insert(chat);
            }
            frames.push(self.wait_offer_frame(chat, standing.queue).await);
        }
        frames
    }

    /// Keeps waiting consumers' standings current: every few seconds, and at once when
    /// routing moves a chat. Runs as long as the server.
    pub async fn refresh_standings(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(STANDINGS_EVERY) => {}
                () = self.standings_moved.notified() => {}
            }
            let watched = self.hub.chats_with_consumers();
            let standings = self.contacts.standings(watched).await;
            let mut changed = Vec::new();
            if let Ok(mut shown) = self.shown_standings.lock() {
                let waiting: std::collections::HashSet<ContactId> =
                    standings.iter().map(|(id, _)| *id).collect();
                shown.retain(|id, _| waiting.contains(id));
                for (id, standing) in &standings {
                    let now_shown = (standing.position, shown_estimate(standing));
                    if shown.insert(*id, now_shown) != Some(now_shown) {
                        changed.push((*id, now_shown));
                    }
                }
            }
            for (id, shown) in changed {
                self.hub.to_chat(id, &standing_event(id, shown), None);
            }
            let settings = match self.store.offer_settings().await {
                Ok(settings) => settings,
                Err(error) => {
                    tracing::warn!(%error, "offer settings not read");
                    continue;
                }
            };
            let due = match self.wait_offered.lock() {
                Ok(mut offered) => {
                    offers::due_wait_offers(&standings, &settings, &mut offered, Utc::now())
                }
                Err(_) => Vec::new(),
            };
            for (id, queue) in due {
                let frame = self.wait_offer_frame(id, queue).await;
                self.hub.to_chat(id, &frame, None);
            }
        }
    }

    /// Stores a message through its chat's writer and waits until it is committed.
    async fn store_message(&self, message: NewMessage) -> Result<(ChatMessage, bool), StoreError> {
        let stopped = || StoreError::Config("the message writer has stopped".into());
        let (reply, outcome) = oneshot::channel();
        let writer =
            &self.writers[(message.contact.uuid().as_u128() % self.writers.len() as u128) as usize];
        writer
            .send(PendingWrite { message, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Group commit: takes every message waiting, stores them in one transaction, then answers
/// each sender. If the batch fails, each message is stored alone so that only the bad one fails.
async fn write_messages(store: Arc<dyn Store>, mut queue: mpsc::Receiver<PendingWrite>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let messages: Vec<NewMessage> = batch.iter().map(|p| p.message.clone()).collect();
        match store.append_messages(&messages).await {
            Ok(results) => {
                for (pending, result) in batch.into_iter().zip(results) {
                    let _ = pending.reply.send(Ok(result));
                }
            }
            Err(_) => {
                for pending in batch {
                    let result = store.append_message(&pending.message).await;
                    let _ = pending.reply.send(result);
                }
            }
        }
    }
}

pub fn parse_chat_id(text: &str) -> Result<ContactId, ChatError> {
    ContactId::parse(text).map_err(|_| ChatError::NotFound)
}

impl ChatService {
    /// An agent's display name.
    pub async fn agent_name(&self, agent: UserId) -> String {
        self.names.get(agent).await
    }

    pub async fn message_view(&self, message: &ChatMessage) -> MessageView {
        let (from, agent_name) = match message.sender {
            Sender::Consumer => ("consumer", None),
            Sender::Agent(id) => ("agent", Some(self.agent_name(id).await)),
            Sender::System => ("system", None),
        };
        let attachment = match message.attachment {
            Some(id) => self
                .store
                .get_attachment(id)
                .await
                .ok()
                .map(|a| AttachmentView {
                    id: a.id.to_string(),
                    name: a.name,
                    mime: a.kind.mime().to_owned(),
                    size: a.size,
                }),
            None => None,
        };
        MessageView {
            id: message.id.to_string(),
            seq: message.seq,
            from: from.to_owned(),
            agent_name,
            client_id: message.client_id.as_ref().map(|c| c.as_str().to_owned()),
            text: message.text.clone(),
            attachment,
            sent_at: message.sent_at,
        }
    }

    /// A chat as its consumer sees it: the agent is named once they have accepted the chat
    /// (until then the consumer is still waiting for them).
    pub async fn chat_info(&self, contact: &Contact) -> ChatInfo {
        let accepted = match self.store.get_chat(contact.id).await {
            Ok(chat) => accepted(&chat, contact),
            Err(_) => false,
        };
        let agent_name = match contact.agent.filter(|_| accepted) {
            Some(agent) => Some(self.agent_name(agent).await),
            None => None,
        };
        ChatInfo {
            chat_id: contact.id.to_string(),
            status: contact.status.as_str().to_owned(),
            issue: contact.issue.clone(),
            agent_name,
            created_at: contact.created_at,
        }
    }

    pub async fn agent_chat(&self, contact: &Contact) -> Result<AgentChat, ChatError> {
        let chat = self.store.get_chat(contact.id).await?;
        Ok(AgentChat {
            chat_id: contact.id.to_string(),
            issue: contact.issue.clone(),
            status: contact.status.as_str().to_owned(),
            customer: self.customer(contact, &chat).await,
            properties: flags(&chat.properties),
            accepted: accepted(&chat, contact),
            ticket_id: chat.ticket.to_string(),
            created_at: contact.created_at,
        })
    }

    /// Who the consumer is: the ticket's name for them, and their identity once they have one.
    async fn customer(&self, contact: &Contact, chat: &ChatSession) -> Customer {
        let identity = identity_of(&self.store, chat.visitor).await;
        Customer {
            name: contact
                .customer
                .clone()
                .unwrap_or_else(|| "Web User".into()),
            visitor_id: chat.visitor.to_string(),
            external_id: identity.as_ref().map(|i| i.0.clone()),
            email: identity.and_then(|i| i.1),
        }
    }

    /// A chat as a supervisor watching it sees it (MON-5): its agent, the consumer, the issue
    /// and its CRM record (with a link when the CRM gave the ticket an id and the integration
    /// says where the CRM shows a record).
    pub async fn watched_chat(&self, contact: &Contact) -> Result<WatchedChat, ChatError> {
        let chat = self.store.get_chat(contact.id).await?;
        let ticket = self.store.get_ticket(chat.ticket).await?;
        let agent = match contact.agent {
            Some(agent) => Some(WatchedAgent {
                user_id: agent.to_string(),
                name: self.agent_name(agent).await,
            }),
            None => None,
        };
        let url = match &ticket.external_id {
            // The settings row exists from the first start, so this only reads it.
            Some(external) => self
                .store
                .integration_settings(&crate::secret::random_token(32))
                .await?
                .crm_record_url
                .map(|template| template.replace("{external_id}", &escape_path(external))),
            None => None,
        };
        Ok(WatchedChat {
            chat_id: contact.id.to_string(),
            channel: contact.channel.as_str().to_owned(),
            status: contact.status.as_str().to_owned(),
            issue: contact.issue.clone(),
            queue_id: contact.queue.map(|q| q.to_string()),
            agent,
            accepted: accepted(&chat, contact),
            customer: self.customer(contact, &chat).await,
            properties: flags(&chat.properties),
            crm: CrmRecord {
                ticket_id: ticket.id.to_string(),
                ticket_name: ticket.name,
                external_id: ticket.external_id,
                url,
            },
            created_at: contact.created_at,
            assigned_at: contact.assigned_at,
        })
    }

    /// Tells a chat's watchers it moved (only when someone watches: the details cost reads).
    async fn update_watchers(&self, chat: ContactId) {
        if !self.hub.is_watched(chat) {
            return;
        }
        let Ok(contact) = self.store.get_contact(chat).await else {
            return;
        };
        match self.watched_chat(&contact).await {
            Ok(chat) => {
                let frame = ServerEvent::ChatUpdated { chat }.to_json();
                self.hub
                    .to_watchers(contact.id, WatchFrame { seq: None, frame });
            }
            Err(error) => tracing::warn!(%error, "a watched chat could not be described"),
        }
    }

    /// Stores a message and tells everyone in the chat but the sending connection, which gets
    /// the acknowledgement. A resend (same sender and client id) is acknowledged again and not
    /// shown twice.
    pub async fn post(
        &self,
        chat: ContactId,
        sender: Sender,
        draft: Draft<'_>,
        origin: &Conn,
    ) -> Result<ServerEvent, ChatError> {
        let Draft {
            client_id,
            text,
            attachment,
        } = draft;
        let client_id = ClientMessageId::parse(client_id)?;
        check_text(text, attachment.is_some())?;
        let contact = self
            .contacts
            .open_contact(chat)
            .await
            .ok_or(ChatError::Ended)?;
        if contact.channel == Channel::Sms && attachment.is_some() {
            return Err(ChatError::Invalid(
                "an SMS conversation carries text only".into(),
            ));
        }
        let attachment = match attachment {
            Some(text) => {
                let id = AttachmentId::parse(text)
                    .map_err(|_| ChatError::Invalid("attachment_id is not an id".into()))?;
                let stored = self
                    .store
                    .get_attachment(id)
                    .await
                    .map_err(|_| ChatError::Invalid("no such attachment".into()))?;
                if stored.contact != chat {
                    return Err(ChatError::Invalid(
                        "that attachment belongs to another chat".into(),
                    ));
                }
                Some(id)
            }
            None => None,
        };
        let message = NewMessage {
            id: MessageId::from_uuid(Uuid::now_v7()),
            contact: chat,
            sender,
            client_id: Some(client_id.clone()),
            text: text.to_owned(),
            attachment,
            sent_at: Utc::now(),
        };
        let (stored, new) = self.store_message(message).await?;
        if new {
            self.broadcast(&contact, &stored, Some(origin.id)).await;
        }
        // An SMS conversation's agent messages go out by SMS (a resend queues nothing twice).
        self.sms_reply(&contact, sender, &stored).await?;
        Ok(ServerEvent::Ack {
            chat_id: chat.to_string(),
            client_id: client_id.as_str().to_owned(),
            message_id: stored.id.to_string(),
            seq: stored.seq,
        })
    }

    async fn broadcast(&self, contact: &Contact, message: &ChatMessage, except: Option<u64>) {
        let frame = ServerEvent::Message {
            chat_id: contact.id.to_string(),
            message: self.message_view(message).await,
        }
        .to_json();
        self.hub.to_chat(contact.id, &frame, except);
        if let Some(agent) = contact.agent {
            self.hub.to_agent(agent, &frame, except);
        }
        self.hub.to_watchers(
            contact.id,
            WatchFrame {
                seq: Some(message.seq),
                frame,
            },
        );
    }

    /// A message from Switchboard itself (joins, transfers), stored and shown to both sides.
    async fn system_message(&self, contact: &Contact, text: String) {
        let message = NewMessage {
            id: MessageId::from_uuid(Uuid::now_v7()),
            contact: contact.id,
            sender: Sender::System,
            client_id: None,
            text,
            attachment: None,
            sent_at: Utc::now(),
        };
        match self.store_message(message).await {
            Ok((stored, _)) => self.broadcast(contact, &stored, None).await,
            Err(error) => tracing::warn!(%error, "system message not stored"),
        }
    }

    /// Starts a chat for a visitor, or answers with the one they already have open (even
    /// if its queue has closed since: an accepted or waiting chat is kept). A queue outside
    /// its hours that deflects chats starts none and answers `Started::Closed` (AHD-4).
    pub async fn start(
        &self,
        visitor: &Visitor,
        conn: &Conn,
        queue: &str,
        language: Option<&str>,
        properties: Option<&Map<String, Value>>,
    ) -> Result<Started, ChatError> {
        if let Some(open) = self.store.open_chats_of_visitor(visitor.id).await?.first() {
            let contact = self.store.get_contact(*open).await?;
            self.join(contact.id, conn);
            return Ok(Started::Chat(self.chat_info(&contact).await));
        }
        let queue =
            QueueId::parse(queue).map_err(|_| ChatError::Contact(ContactError::UnknownQueue))?;
        let node = self
            .contacts
            .queue_node(queue)
            .await
            .ok_or(ChatError::Contact(ContactError::UnknownQueue))?;
        if node.channel != Channel::Web {
            return Err(ChatError::Invalid(
                "web chats start in a queue of the web menu".into(),
            ));
        }
        let language = language.map(Language::parse).transpose()?;
        let hours = crate::http::after_hours::load(self.store.as_ref()).await?;
        if let Decision::Deflect(rule) = hours.decide(
            queue,
            node.channel,
            language.as_ref(),
            self.wall_clock.now(),
        ) {
            return Ok(Started::Closed {
                queue,
                message: rule.message_for(language.as_ref()).to_owned(),
                offers: rule.offers().to_vec(),
            });
        }
        let mut reserved = ReservedProperties::default();
        if let Some(properties) = properties {
            reserved.apply(property_values(properties))?;
        }
        let now = Utc::now();
        let settings = self.store.center_settings().await?;
        let zone = parse_time_zone(&settings.time_zone).unwrap_or(chrono_tz::UTC);
        let identity = identity_of(&self.store, visitor.id).await;
        let name = match &identity {
            Some((external, email, name)) => switchboard_core::chat::identified_ticket_name(
                external,
                email.as_deref(),
                name.as_deref(),
            ),
            None => anonymous_ticket_name("Web", now, zone),
        };
        let contact_id = ContactId::from_uuid(Uuid::now_v7());
        let ticket = Ticket {
            id: TicketId::from_uuid(Uuid::now_v7()),
            contact: Some(contact_id),
            visitor: Some(visitor.id),
            identity: visitor.identity,
            name: name.clone(),
            status: "open".into(),
            transcript: None,
            external_id: None,
            created_at: now,
            updated_at: now,
            call: None,
            phone: None,
        };
        let session = ChatSession {
            contact: contact_id,
            visitor: visitor.id,
            identity: visitor.identity,
            ticket: ticket.id,
            source: "web".into(),
            properties: reserved,
            accepted_at: None,
        };
        // Join first: routing may give the chat to an agent before `enqueue` returns.
        self.join(contact_id, conn);
        let request = NewContact {
            queue,
            priority: None,
            language,
            customer: Some(name),
            chat: Some((session, ticket.clone())),
        };
        let contact = match self.contacts.enqueue(request, contact_id).await {
            Ok(contact) => contact,
            Err(error) => {
                self.hub.close_chat(contact_id);
                return Err(error.into());
            }
        };
        crm::enqueue(&self.jobs, crm::Event::TicketCreated { ticket: ticket.id }).await;
        Ok(Started::Chat(self.chat_info(&contact).await))
    }

    /// Sets reserved properties on a chat and shows them to its agent live (RDP-1, RDP-3).
    pub async fn set_properties(
        &self,
        chat: ContactId,
        properties: Map<String, Value>,
    ) -> Result<Flags, ChatError> {
        let mut session = self.store.get_chat(chat).await?;
        session.properties.apply(property_values(&properties))?;
        self.store
            .set_chat_properties(chat, &session.properties)
            .await?;
        let shown = flags(&session.properties);
        if let Some(agent) = self.contacts.open_contact(chat).await.and_then(|c| c.agent) {
            let frame = ServerEvent::Properties {
                chat_id: chat.to_string(),
                properties: shown.clone(),
            }
            .to_json();
            self.hub.to_agent(agent, &frame, None);
        }
        Ok(shown)
    }

    /// Reacts to routing: tells both sides of a chat when it reaches an agent, moves, or ends.
    /// Only chats' changes come here (the server hands each change to its channel's carrier).
    /// The consumer hears that an agent joined when the agent accepts (`accept`), not here.
    pub async fn on_change(&self, change: ContactChange) {
        match change {
            ContactChange::Assigned(contact) => {
                self.assigned(&contact).await;
                self.update_watchers(contact.id).await;
            }
            ContactChange::Handed { contact, from } => {
                self.forget_acceptance(contact.id).await;
                self.update_watchers(contact.id).await;
                let frame = ServerEvent::ChatRemoved {
                    chat_id: contact.id.to_string(),
                    reason: "transferred".into(),
                }
                .to_json();
                self.hub.to_agent(from, &frame, None);
                self.assigned(&contact).await;
            }
            ContactChange::Requeued {
                contact,
                from,
                reason,
            } => {
                self.forget_acceptance(contact.id).await;
                self.update_watchers(contact.id).await;
                let (removed, note) = match reason {
                    RequeueReason::Transferred => {
                        ("transferred", format!("Transferred to {}", contact.issue))
                    }
                    RequeueReason::NotTaken => (
                        "not_taken",
                        "Waiting for the next available agent".to_owned(),
                    ),
                    RequeueReason::AgentOffline => (
                        "agent_offline",
                        format!(
                            "{} went offline; waiting for the next available agent",
                            self.agent_name(from).await
                        ),
                    ),
                };
                let frame = ServerEvent::ChatRemoved {
                    chat_id: contact.id.to_string(),
                    reason: removed.into(),
                }
                .to_json();
                self.hub.to_agent(from, &frame, None);
                let queued = ServerEvent::ChatQueued {
                    chat_id: contact.id.to_string(),
                    issue: contact.issue.clone(),
                }
                .to_json();
                self.hub.to_chat(contact.id, &queued, None);
                self.system_message(&contact, note).await;
            }
            ContactChange::Ended(contact) => {
                let reason = contact.end_reason.clone().unwrap_or_else(|| "ended".into());
                let frame = ServerEvent::ChatEnded {
                    chat_id: contact.id.to_string(),
                    reason,
                }
                .to_json();
                self.hub.to_chat(contact.id, &frame, None);
                if let Some(agent) = contact.agent {
                    self.hub.to_agent(agent, &frame, None);
                }
                // Watchers get the end last, then their outboxes close with the chat's rooms.
                self.hub
                    .to_watchers(contact.id, WatchFrame { seq: None, frame });
                self.hub.close_chat(contact.id);
                match self.store.get_chat(contact.id).await {
                    Ok(chat) => {
                        crm::enqueue(
                            &self.jobs,
                            crm::Event::TicketClosed {
                                ticket: chat.ticket,
                            },
                        )
                        .await
                    }
                    Err(error) => tracing::warn!(%error, "ended chat without a session"),
                }
            }
        }
        // Whatever moved, the chats still waiting may stand elsewhere now.
        self.standings_moved.notify_one();
    }

    /// Offers a chat routing gave an agent to their adapters; they accept it to join it.
    async fn assigned(&self, contact: &Contact) {
        let Some(agent) = contact.agent else { return };
        match self.agent_chat(contact).await {
            Ok(chat) => {
                self.hub
                    .to_agent(agent, &ServerEvent::ChatAssigned { chat }.to_json(), None)
            }
            Err(error) => tracing::warn!(%error, "assigned chat could not be described"),
        }
    }

    /// A chat that moved on is accepted afresh by whoever has it next.
    async fn forget_acceptance(&self, chat: ContactId) {
        if let Err(error) = self.store.clear_chat_accepted(chat).await {
            tracing::warn!(%error, "a moved chat's acceptance was not cleared");
        }
    }

    /// The agent accepts a chat routed to them: stored, the agent's other adapters stop
    /// ringing, and the consumer is told the agent joined (once: accepting again only answers).
    pub async fn accept(
        &self,
        chat: ContactId,
        agent: UserId,
        origin: &Conn,
    ) -> Result<Arc<str>, ChatError> {
        let contact = self
            .contacts
            .open_contact(chat)
            .await
            .filter(|c| c.agent == Some(agent))
            .ok_or(ChatError::Forbidden)?;
        let session = self.store.get_chat(chat).await?;
        let frame = ServerEvent::Accepted {
            chat_id: chat.to_string(),
        }
        .to_json();
        if accepted(&session, &contact) {
            return Ok(frame);
        }
        self.store.mark_chat_accepted(chat, Utc::now()).await?;
        self.hub.to_agent(agent, &frame, Some(origin.id));
        let name = self.agent_name(agent).await;
        let joined = ServerEvent::AgentJoined {
            chat_id: chat.to_string(),
            agent_name: name.clone(),
        }
        .to_json();
        self.hub.to_chat(chat, &joined, None);
        self.update_watchers(chat).await;
        self.system_message(&contact, format!("{name} joined the chat"))
            .await;
        Ok(frame)
    }
}

/// Whether the chat's current agent has accepted it: an acceptance from before the chat last
/// reached an agent belongs to someone else.
fn accepted(chat: &ChatSession, contact: &Contact) -> bool {
    match (chat.accepted_at, contact.assigned_at) {
        (Some(accepted), Some(assigned)) => accepted >= assigned,
        _ => false,
    }
}

fn standing_event(chat: ContactId, (position, estimate): (usize, Option<u64>)) -> Arc<str> {
    ServerEvent::QueuePosition {
        chat_id: chat.to_string(),
        position,
        estimated_wait_seconds: estimate,
    }
    .to_json()
}

pub fn flags(properties: &ReservedProperties) -> Flags {
    Flags {
        reserved_verified_customer: properties.verified_customer,
        reserved_bad_actor: properties.bad_actor,
        reserved_repeat_customer: properties.repeat_customer,
    }
}

pub fn property_values(
    properties: &Map<String, Value>,
) -> impl Iterator<Item = (&str, PropertyValue)> {
    properties.iter().map(|(key, value)| {
        (
            key.as_str(),
            match value {
                Value::Bool(flag) => PropertyValue::Bool(*flag),
                _ => PropertyValue::NotBool,
            },
        )
    })
}

/// Text as one segment of a URL path: unreserved characters as they are, the rest %-escaped.
fn escape_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The identity a visitor is bound to, as (external id, email, name).
async fn identity_of(
    store: &Arc<dyn Store>,
    visitor: switchboard_core::VisitorId,
) -> Option<(String, Option<String>, Option<String>)> {
    let visitor = store.get_visitor(visitor).await.ok()?;
    let identity = store.identity(visitor.identity?).await.ok()?;
    Some((identity.external_id, identity.email, identity.name))
}
