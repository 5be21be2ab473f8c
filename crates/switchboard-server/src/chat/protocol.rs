//! The chat WebSocket protocols (documented in docs/chat-protocol.md): one JSON object per text
//! frame, with a `type`. Commands come in, events go out. Parsing is in two steps so that a
//! frame that is not JSON, has an unknown type, or has bad fields each gets its own error code.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest frame either side accepts; a larger one gets an `error` frame.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Past this the transport itself gives up on the connection (it will not buffer more).
pub const TRANSPORT_LIMIT_BYTES: usize = 1024 * 1024;

/// What a consumer's widget sends.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConsumerCommand {
    /// First frame: who this is. Without a visitor id a new visitor is made.
    Hello {
        visitor_id: Option<String>,
        visitor_token: Option<String>,
        identity_token: Option<String>,
    },
    /// Start a chat in a leaf queue of the web menu.
    Start {
        client_id: String,
        queue_id: String,
        language: Option<String>,
        properties: Option<Map<String, Value>>,
    },
    Message {
        chat_id: String,
        client_id: String,
        #[serde(default)]
        text: String,
        attachment_id: Option<String>,
    },
    Typing {
        chat_id: String,
        active: bool,
    },
    /// Send every message after `after_seq` (after a reload or reconnect).
    Resume {
        chat_id: String,
        after_seq: i64,
    },
    Identify {
        identity_token: String,
    },
    Properties {
        chat_id: String,
        properties: Map<String, Value>,
    },
    End {
        chat_id: String,
    },
    /// Leave a message for the help center instead of chatting (a closed queue that offers
    /// email) or instead of waiting longer (`chat_id`: the consumer's waiting chat, which ends).
    LeaveMessage {
        client_id: String,
        queue_id: String,
        chat_id: Option<String>,
        email: String,
        name: Option<String>,
        #[serde(default)]
        text: String,
    },
    Ping,
}

/// What an agent's adapter sends.
#[derive(Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentCommand {
    Accept {
        chat_id: String,
    },
    Message {
        chat_id: String,
        client_id: String,
        #[serde(default)]
        text: String,
        attachment_id: Option<String>,
    },
    Typing {
        chat_id: String,
        active: bool,
    },
    History {
        chat_id: String,
        after_seq: i64,
    },
    /// To a leaf queue of the same channel, or to an agent who is available and has room.
    Transfer {
        chat_id: String,
        queue_id: Option<String>,
        agent_id: Option<String>,
    },
    End {
        chat_id: String,
    },
    Ping,
    /// The browser phone (docs/browser-phone.md): this connection takes calls from now on.
    PhoneReady,
    /// Answer a ringing call with the browser's SDP offer; answered with `call_sdp`.
    CallAnswer {
        leg_id: String,
        sdp: String,
    },
    CallDecline {
        leg_id: String,
    },
    CallHangup {
        leg_id: String,
    },
}

/// A frame that could not be understood; `client_id` is the frame's own, when it had one, for
/// the error's `ref`.
#[derive(Debug)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub client_id: Option<String>,
}

const CONSUMER_TYPES: &[&str] = &[
    "hello",
    "start",
    "message",
    "typing",
    "resume",
    "identify",
    "properties",
    "end",
    "leave_message",
    "ping",
];
const AGENT_TYPES: &[&str] = &[
    "accept",
    "message",
    "typing",
    "history",
    "transfer",
    "end",
    "ping",
    "phone_ready",
    "call_answer",
    "call_decline",
    "call_hangup",
];

fn parse<T: DeserializeOwned>(text: &str, known: &[&str]) -> Result<T, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError {
        code: "invalid_json",
        message: e.to_string(),
        client_id: None,
    })?;
    let client_id = value
        .get("client_id")
        .and_then(Value::as_str)
        .map(|id| id.chars().take(64).collect::<String>());
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| FrameError {
            code: "invalid_message",
            message: "every frame is a JSON object with a string `type`".into(),
            client_id: client_id.clone(),
        })?;
    if !known.contains(&kind) {
        return Err(FrameError {
            code: "unknown_type",
            message: format!(
                "unknown type `{}`",
                kind.chars().take(40).collect::<String>()
            ),
            client_id,
        });
    }
    serde_json::from_value(value).map_err(|e| FrameError {
        code: "invalid_message",
        message: e.to_string(),
        client_id,
    })
}

pub fn parse_consumer(text: &str) -> Result<ConsumerCommand, FrameError> {
    parse(text, CONSUMER_TYPES)
}

pub fn parse_agent(text: &str) -> Result<AgentCommand, FrameError> {
    parse(text, AGENT_TYPES)
}

/// A file attached to a message.
#[derive(Serialize, Clone, Debug)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: i64,
}

/// A stored message as both sides see it.
#[derive(Serialize, Clone, Debug)]
pub struct MessageView {
    pub id: String,
    pub seq: i64,
    /// `consumer`, `agent` or `system`.
    pub from: String,
    pub agent_name: Option<String>,
    pub client_id: Option<String>,
    pub text: String,
    pub attachment: Option<AttachmentView>,
    pub sent_at: DateTime<Utc>,
}

/// A chat as the consumer sees it.
#[derive(Serialize, Clone, Debug)]
pub struct ChatInfo {
    pub chat_id: String,
    /// `queued`, `assigned`, `ended` or `abandoned`.
    pub status: String,
    pub issue: String,
    pub agent_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Reserved data properties as profile flags (RDP-3).
#[derive(Serialize, Clone, Debug, Default, utoipa::ToSchema)]
pub struct Flags {
    pub reserved_verified_customer: Option<bool>,
    pub reserved_bad_actor: Option<bool>,
    pub reserved_repeat_customer: Option<bool>,
}

/// Who the consumer is, as the agent sees them.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct Customer {
    /// The ticket name for an anonymous consumer ("Web User - 11/21 13:05"), else their name.
    pub name: String,
    pub visitor_id: String,
    /// The embedding site's id, once identified.
    pub external_id: Option<String>,
    pub email: Option<String>,
}

/// A chat as the agent sees it.
#[derive(Serialize, Clone, Debug)]
pub struct AgentChat {
    pub chat_id: String,
    pub issue: String,
    pub status: String,
    pub customer: Customer,
    pub properties: Flags,
    pub accepted: bool,
    pub ticket_id: String,
    pub created_at: DateTime<Utc>,
}

/// A chat as a supervisor watching it sees it (MON-3, MON-5): who is in it, what it is about,
/// and where its CRM record is.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct WatchedChat {
    pub chat_id: String,
    /// `web` or `mobile`.
    pub channel: String,
    /// `queued`, `assigned`, `ended` or `abandoned`.
    pub status: String,
    /// The queue path ("Billing > Refunds").
    pub issue: String,
    pub queue_id: Option<String>,
    /// The agent the chat is with; `None` while it waits.
    pub agent: Option<WatchedAgent>,
    /// Whether that agent has accepted it (until then the consumer still waits).
    pub accepted: bool,
    pub customer: Customer,
    pub properties: Flags,
    pub crm: CrmRecord,
    pub created_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct WatchedAgent {
    pub user_id: String,
    pub name: String,
}

/// The chat's ticket, and where the CRM keeps it.
#[derive(Serialize, Clone, Debug, utoipa::ToSchema)]
pub struct CrmRecord {
    pub ticket_id: String,
    pub ticket_name: String,
    /// The CRM's own id for the ticket, once the CRM has answered with one.
    pub external_id: Option<String>,
    /// A link to the record in the CRM: the integration's record address with the external
    /// id in it; `None` without either.
    pub url: Option<String>,
}

/// An agent's notification tones, as URLs to play.
#[derive(Serialize, Clone, Debug)]
pub struct Tones {
    pub new_chat: String,
    pub new_message: String,
    /// Repeat the new-chat tone every this many seconds until the chat is accepted or gone.
    pub repeat_seconds: Option<u32>,
    /// The tone of a ringing call, repeated every `call_repeat_seconds` until it is taken or
    /// gone (`null`: once).
    pub new_call: String,
    pub call_repeat_seconds: Option<u32>,
}

/// Something a consumer is offered instead of a chat (a closed queue, AHD-3, AHD-4) or instead
/// of waiting longer; each is an object named by its `kind`, so widgets ignore kinds they do
/// not know.
#[derive(Serialize, Debug)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Offer {
    /// A call back at one of `slots` (start times, UTC), shown in `time_zone` (the
    /// center's); booked with `POST /api/v1/widget/callbacks`.
    ScheduledCall {
        queue_id: String,
        time_zone: String,
        slot_minutes: i64,
        slots: Vec<chrono::DateTime<chrono::Utc>>,
    },
    /// Leave a message (`leave_message`): mailed to the help center or made a ticket.
    Email,
}

/// Everything the server sends on either protocol.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome {
        visitor_id: Option<String>,
        /// Only when the visitor was just made: the widget keeps it with the id.
        visitor_token: Option<String>,
        user_id: Option<String>,
        chats: Vec<ChatInfo>,
        agent_chats: Vec<AgentChat>,
        tones: Option<Tones>,
        /// The agent's presence (agent protocol only).
        #[serde(skip_serializing_if = "Option::is_none")]
        presence: Option<String>,
    },
    Identified {
        external_id: String,
        merged_tickets: u64,
        merged_chats: u64,
    },
    ChatStarted {
        client_id: String,
        chat: ChatInfo,
    },
    /// The queue is outside its hours and deflects chats (AHD-4): no chat was started. The
    /// widget shows `message` and what the queue `offers` instead.
    QueueClosed {
        client_id: String,
        queue_id: String,
        /// The after-hours message in the visitor's language (or the queue's default).
        message: String,
        /// What the consumer may do instead: objects named by their `kind` (`email`,
        /// `scheduled_call`) with that kind's fields.
        offers: Vec<Offer>,
    },
    /// The consumer's chat has waited past the center's wait offer: it may leave a message
    /// (or take another offer) instead of waiting on. Sent once per chat.
    WaitOffers {
        chat_id: String,
        /// The queue it waits in, for the offers' requests.
        queue_id: String,
        offers: Vec<Offer>,
    },
    /// The message with this client id is stored and will reach the help center: by `mail`,
    /// or as a `ticket` in the CRM.
    MessageLeft {
        client_id: String,
        delivery: &'static str,
    },
    /// The message with this client id is stored; `seq` is its place in the chat.
    Ack {
        chat_id: String,
        client_id: String,
        message_id: String,
        seq: i64,
    },
    Message {
        chat_id: String,
        message: MessageView,
    },
    Typing {
        chat_id: String,
        from: String,
        active: bool,
    },
    AgentJoined {
        chat_id: String,
        agent_name: String,
    },
    /// The chat waits in a queue again (after a transfer, or its agent went offline).
    ChatQueued {
        chat_id: String,
        issue: String,
    },
    /// Where a waiting chat stands: 1 for the next served, and the estimated wait in seconds
    /// (`None` without a recent pace); sent when either changes.
    QueuePosition {
        chat_id: String,
        position: usize,
        estimated_wait_seconds: Option<u64>,
    },
    /// The agent's presence, as the server holds it (on every change, whoever made it).
    Presence {
        presence: String,
        since: DateTime<Utc>,
    },
    /// A voicemail routed to the agent (AHD-7; agent protocol only): play it from
    /// `audio_url`, call the caller back, and `POST /api/v1/voicemails/{voicemail_id}/done`.
    VoicemailOffered {
        contact_id: String,
        voicemail_id: String,
        caller: String,
        queue_path: String,
        duration_ms: u64,
        left_at: DateTime<Utc>,
        audio_url: String,
    },
    /// The voicemail is no longer the agent's (done, ended, or sent back to its queue).
    VoicemailGone {
        contact_id: String,
    },
    Resumed {
        chat_id: String,
        last_seq: i64,
        status: String,
    },
    History {
        chat_id: String,
        messages: Vec<MessageView>,
        last_seq: i64,
    },
    ChatAssigned {
        chat: AgentChat,
    },
    /// The chat left this agent (transferred).
    ChatRemoved {
        chat_id: String,
        reason: String,
    },
    Accepted {
        chat_id: String,
    },
    Properties {
        chat_id: String,
        properties: Flags,
    },
    ChatEnded {
        chat_id: String,
        reason: String,
    },
    /// Watch protocol: the chat as the watcher sees it, the first frame on the socket.
    Watching {
        chat: WatchedChat,
    },
    /// Watch protocol: the chat moved (reached, left or was accepted by an agent).
    ChatUpdated {
        chat: WatchedChat,
    },
    Error {
        code: String,
        message: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Pong,
    /// The browser phone is ready on this connection; `session_id` names it to the calls API
    /// (`POST /api/v1/calls` dials from it).
    PhoneReady {
        session_id: String,
    },
    /// A call rings on this adapter (and on the agent's other devices).
    CallRing {
        leg_id: String,
        call_id: String,
        /// The caller's number or SIP user.
        caller: String,
        queue_id: Option<String>,
        /// The queue's path, "Support > Billing".
        queue: Option<String>,
        started_at: DateTime<Utc>,
        /// When the caller started waiting in the queue.
        queued_at: Option<DateTime<Utc>>,
        /// `inbound`, or `outbound` for the agent's own call (ringing their device first).
        direction: &'static str,
        /// The number dialled: the center's number for an inbound call, the number the agent
        /// calls for an outbound one.
        number: String,
        /// The caller's profile flags.
        flags: Flags,
        /// How many times the call was transferred before it reached this agent.
        transfers: usize,
        /// The call's contact: its wrap-up goes to `PUT /api/v1/contacts/{contact_id}/wrap-up`.
        contact_id: Option<String>,
        /// `outgoing` for the agent's emergency call, `callback` for the emergency service
        /// calling back on their leased number (EMG-4, EMG-5); absent otherwise.
        #[serde(skip_serializing_if = "Option::is_none")]
        emergency: Option<&'static str>,
    },
    /// Our SDP answer to the browser's offer for this leg.
    CallSdp {
        leg_id: String,
        sdp: String,
    },
    /// The leg is over: answered on another device, the caller left, or the call ended.
    CallStop {
        leg_id: String,
    },
}

impl ServerEvent {
    pub fn error(code: &str, message: impl Into<String>, reference: Option<String>) -> Self {
        ServerEvent::Error {
            code: code.to_owned(),
            message: message.into(),
            reference,
        }
    }

    pub fn to_json(&self) -> std::sync::Arc<str> {
        serde_json::to_string(self)
            .unwrap_or_else(|_| "{\"type\":\"error\",\"code\":\"internal\"}".into())
            .into()
    }
}
