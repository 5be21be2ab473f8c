//! Stored records that are not domain types of their own: settings, sessions, keys, schedules.

use chrono::{DateTime, Utc};
use switchboard_core::chat::{AttachmentKind, ClientMessageId, ReservedProperties, Sender};
use switchboard_core::hours::{HoursScope, Schedule};
use switchboard_core::{
    AttachmentId, CallId, ContactId, IdentityId, JobId, Language, MessageId, RecordingId, TicketId,
    UserId, VisitorId,
};

/// Center-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CenterSettings {
    pub name: String,
    /// The default time zone (for ticket names and new schedules), an IANA name.
    pub time_zone: String,
    /// Languages the center serves.
    pub languages: Vec<Language>,
    /// The ISO code of the center's country (`US`, `CA`, `PR`, `GB`, `DK`): its numbering
    /// plan and emergency numbers.
    pub country: String,
    /// The callback numbers leased to agents who dial an emergency number, as the admin wrote
    /// them (`15550190-15550199`, checked with `emergency::parse_pool` when saved).
    pub callback_pool: String,
}

/// What a user signs in with.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub password_hash: Option<String>,
    /// Base32 TOTP secret; present while enrolment is pending or enabled.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
}

/// A portal session. Only the SHA-256 of its token is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether the sign-in included a second factor (needed for recordings, REC-5).
    pub mfa: bool,
    /// When the session last passed a TOTP check (its sign-in or a step-up); downloading a
    /// recording needs one within the last 15 minutes.
    pub step_up_at: Option<DateTime<Utc>>,
}

/// An Apps API credential. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub key_id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    /// What the key may do beyond the Apps API itself: `recordings` (download call recordings).
    pub scopes: Vec<String>,
}

/// A business-hours schedule and what it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct HoursRecord {
    pub id: String,
    pub name: String,
    pub scope: HoursScope,
    pub schedule: Schedule,
}

/// Integration secrets and the CRM connector choice.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationSettings {
    /// Signs identity tokens (JWT HS256) from the embedding site.
    pub identity_secret: String,
    /// `builtin` (tickets kept here), `webhook` or `zendesk`.
    pub crm_connector: String,
    pub crm_webhook_url: Option<String>,
    /// Signs webhook deliveries (HMAC-SHA256).
    pub crm_webhook_secret: Option<String>,
    /// Where the CRM shows a ticket, with `{external_id}` where its id goes.
    pub crm_record_url: Option<String>,
    /// The Zendesk account's address (`https://{subdomain}.zendesk.com`).
    pub zendesk_url: Option<String>,
    /// The Zendesk agent whose API token the connector uses.
    pub zendesk_email: Option<String>,
    /// That agent's API token (sealed at rest; never shown by the API).
    pub zendesk_token: Option<String>,
}

/// A consumer's browser or app (UAC-1). Its token is stored only as a SHA-256 hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Visitor {
    pub id: VisitorId,
    pub token_hash: String,
    pub identity: Option<IdentityId>,
    pub created_at: DateTime<Utc>,
}

/// A consumer the embedding site vouched for with a signed identity token.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub id: IdentityId,
    /// The site's own id for the consumer (the token's `sub`).
    pub external_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Their phone number's digits (`switchboard_core::text::phone_digits`), from the token.
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What identifying a visitor did (UAC-3).
#[derive(Clone, Debug, PartialEq)]
pub struct IdentifyOutcome {
    pub identity: Identity,
    /// Tickets and chats moved from the anonymous visitor to the identity.
    pub merged_tickets: u64,
    pub merged_chats: u64,
}

/// A web or mobile chat: the contact plus what only chats have.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatSession {
    pub contact: ContactId,
    pub visitor: VisitorId,
    pub identity: Option<IdentityId>,
    pub ticket: TicketId,
    /// `web` or `mobile`.
    pub source: String,
    pub properties: ReservedProperties,
    /// When the agent accepted the chat (stops the new-chat tone).
    pub accepted_at: Option<DateTime<Utc>>,
}

/// A message to store; the store gives it its sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub contact: ContactId,
    pub sender: Sender,
    pub client_id: Option<ClientMessageId>,
    pub text: String,
    pub attachment: Option<AttachmentId>,
    pub sent_at: DateTime<Utc>,
}

/// A stored file's record; the bytes live in the blob store under the id.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub contact: ContactId,
    pub kind: AttachmentKind,
    pub size: i64,
    /// The file name as uploaded (cleaned), for display and download.
    pub name: String,
    pub uploaded_by: Sender,
    pub created_at: DateTime<Utc>,
}

/// Bytes a consumer uploaded, for quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UploadBytes {
    /// To one chat.
    pub chat: i64,
    /// To every chat of the chat's visitor.
    pub visitor: i64,
}

/// A CRM ticket kept by the built-in CRM (and mirrored to a webhook CRM when configured).
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub contact: Option<ContactId>,
    pub visitor: Option<VisitorId>,
    pub identity: Option<IdentityId>,
    pub name: String,
    /// `open` or `solved`.
    pub status: String,
    pub transcript: Option<String>,
    /// The ticket's id in an external CRM, once delivered.
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The call it is the ticket of (a chat's ticket names its contact and visitor instead).
    pub call: Option<CallId>,
    /// The caller's number, for a call's ticket.
    pub phone: Option<String>,
}

/// Where a recording's way to the CRM is (REC-1..REC-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadState {
    /// Parts are being sent (or wait for their retry).
    Sending,
    /// Every part is acknowledged; the file is deleted from the platform.
    Uploaded,
    /// Kept with the built-in CRM's ticket on the platform until the retention cap.
    Attached,
    /// Given up: the CRM refused it, or it could not be sent in time.
    Failed,
    /// The retention cap deleted the file before its upload finished.
    Lost,
}

impl UploadState {
    pub const ALL: [UploadState; 5] = [
        UploadState::Sending,
        UploadState::Uploaded,
        UploadState::Attached,
        UploadState::Failed,
        UploadState::Lost,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            UploadState::Sending => "sending",
            UploadState::Uploaded => "uploaded",
            UploadState::Attached => "attached",
            UploadState::Failed => "failed",
            UploadState::Lost => "lost",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown upload state `{text}`"))
    }

    /// Whether nothing more will happen to it.
    pub const fn is_final(self) -> bool {
        !matches!(self, UploadState::Sending)
    }
}

/// A recording's upload to the CRM. It outlives the recording: once the file is gone it says
/// where it went, or that it was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingUpload {
    pub recording: RecordingId,
    pub call: CallId,
    pub ticket: TicketId,
    /// The connector it is sent with (`builtin`, `webhook`, `zendesk`), fixed when it starts.
    pub connector: String,
    pub state: UploadState,
    pub size_bytes: u64,
    pub parts_total: u32,
    /// Parts acknowledged so far: parts are sent in order, so these are the first ones.
    pub parts_done: u32,
    /// Where the next part starts in the file.
    pub bytes_done: u64,
    /// How large a part is (at most 50 MB; halved when the CRM refuses one as too large).
    pub part_bytes: u64,
    /// What the CRM answered for each acknowledged part (an attachment or upload id).
    pub receipts: Vec<String>,
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a background job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            JobState::Pending,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Background work as a row: claimed, done, or rescheduled by the retry policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    /// What to do, such as `crm_ticket`.
    pub kind: String,
    /// JSON arguments.
    pub payload: String,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    /// Claims so far (a claim is an attempt).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An uploaded notification tone (.mp3); built-in tones are not stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Tone {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

/// An agent's notification choices (NTF-3).
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationSettings {
    pub user: UserId,
    /// A built-in tone name or an uploaded tone's id.
    pub new_chat_tone: String,
    pub new_message_tone: String,
    /// Repeat the new-chat tone every this many seconds until accepted; `None` plays it once.
    pub repeat_seconds: Option<u32>,
    /// The tone a ringing call plays in the adapter, repeated every `call_repeat_seconds`
    /// until the call is taken or gone (`None`: once).
    pub new_call_tone: String,
    pub call_repeat_seconds: Option<u32>,
}
