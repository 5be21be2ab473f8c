//! Switchboard's storage: the `Store` trait and its two backends.
//!
//! SQLite is the embedded default (a file created on first run, in WAL mode); PostgreSQL is
//! for centers that outgrow one machine. Both run the same SQL where the dialects agree
//! (see `sql.rs`) and keep their own migrations. Writes that belong together are one
//! transaction inside a single trait method, so callers never hold a transaction open.

mod codec;
mod error;
mod postgres;
mod records;
mod sql;
mod sql_chat;
mod sql_voice;
mod sqlite;

pub use error::StoreError;
pub use postgres::PostgresStore;
pub use records::{
    ApiKey, Attachment, CenterSettings, ChatSession, Credentials, HoursRecord, IdentifyOutcome,
    Identity, IntegrationSettings, Job, JobState, NewMessage, NotificationSettings, Session,
    Ticket, Tone, Visitor,
};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use switchboard_core::chat::{ChatMessage, ReservedProperties};
use switchboard_core::voice::{CallRecord, Did, Trunk};
use switchboard_core::{
    AttachmentId, CapacityProfile, CapacityProfileId, Contact, ContactId, IdentityId, JobId,
    PresenceState, QueueId, QueueNode, Role, RoleKey, Team, TeamId, TicketId, User, UserId,
    Username, VisitorId,
};
use switchboard_core::{CallId, TrunkId};

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Switchboard keeps. Each method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Answers when the database is reachable (for health checks).
    async fn ping(&self) -> StoreResult<()>;

    async fn center_settings(&self) -> StoreResult<CenterSettings>;
    async fn update_center_settings(&self, settings: &CenterSettings) -> StoreResult<()>;

    async fn list_roles(&self) -> StoreResult<Vec<Role>>;
    async fn get_role(&self, key: &RoleKey) -> StoreResult<Role>;
    async fn create_role(&self, role: &Role) -> StoreResult<()>;
    async fn update_role(&self, role: &Role) -> StoreResult<()>;
    /// Refused while a user holds the role.
    async fn delete_role(&self, key: &RoleKey) -> StoreResult<()>;

    async fn list_teams(&self) -> StoreResult<Vec<Team>>;
    async fn get_team(&self, id: TeamId) -> StoreResult<Team>;
    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    async fn update_team(&self, team: &Team) -> StoreResult<()>;
    async fn delete_team(&self, id: TeamId) -> StoreResult<()>;

    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn get_user(&self, id: UserId) -> StoreResult<User>;
    async fn find_user(&self, username: &Username) -> StoreResult<Option<User>>;
    /// Creates the user with their teams, managed teams and queues.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;
    /// Replaces the user's profile, teams, managed teams and queues (not credentials or presence).
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Refused while contact history names the user; disable them instead.
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
    async fn credentials(&self, id: UserId) -> StoreResult<Credentials>;
    /// Sets a new password hash and ends the user's sessions.
    async fn set_password(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// Stores a TOTP secret (pending until enabled) or clears it (`None`).
    async fn set_totp(&self, id: UserId, secret: Option<&str>, enabled: bool) -> StoreResult<()>;
    /// Records a used TOTP time step; false when that step (or a later one) was used already,
    /// so a code can never be replayed.
    async fn use_totp_step(&self, id: UserId, step: i64) -> StoreResult<bool>;
    async fn save_presence(&self, id: UserId, presence: &PresenceState) -> StoreResult<()>;

    async fn list_queues(&self) -> StoreResult<Vec<QueueNode>>;
    /// Adds a node after checking it against the whole tree.
    async fn create_queue(&self, node: &QueueNode) -> StoreResult<()>;
    async fn update_queue(&self, node: &QueueNode) -> StoreResult<()>;
    async fn delete_queue(&self, id: QueueId) -> StoreResult<()>;

    async fn list_capacity_profiles(&self) -> StoreResult<Vec<CapacityProfile>>;
    async fn get_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<CapacityProfile>;
    async fn create_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()>;
    async fn update_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()>;
    async fn delete_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<()>;

    async fn list_hours(&self) -> StoreResult<Vec<HoursRecord>>;
    /// Creates or replaces a schedule by id; one schedule per scope.
    async fn put_hours(&self, hours: &HoursRecord) -> StoreResult<()>;
    async fn delete_hours(&self, id: &str) -> StoreResult<()>;

    async fn list_custom_statuses(&self) -> StoreResult<Vec<String>>;
    async fn create_custom_status(&self, name: &str) -> StoreResult<()>;
    async fn delete_custom_status(&self, name: &str) -> StoreResult<()>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The session with this token hash, if it exists and has not expired at `now`.
    async fn get_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Removes expired sessions; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn get_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn delete_api_key(&self, key_id: &str) -> StoreResult<()>;

    async fn insert_contact(&self, contact: &Contact) -> StoreResult<()>;
    /// Saves several contacts' new states at once (an assignment round, a release).
    async fn update_contacts(&self, contacts: &[Contact]) -> StoreResult<()>;
    async fn get_contact(&self, id: ContactId) -> StoreResult<Contact>;
    /// Queued and assigned contacts, oldest first.
    async fn open_contacts(&self) -> StoreResult<Vec<Contact>>;
    /// The most recent contacts, newest first.
    async fn recent_contacts(&self, limit: u32) -> StoreResult<Vec<Contact>>;

    /// The integration settings; the first call stores them with this identity secret.
    async fn integration_settings(
        &self,
        new_identity_secret: &str,
    ) -> StoreResult<IntegrationSettings>;
    async fn update_integration_settings(&self, settings: &IntegrationSettings) -> StoreResult<()>;

    async fn create_visitor(&self, visitor: &Visitor) -> StoreResult<()>;
    async fn get_visitor(&self, id: VisitorId) -> StoreResult<Visitor>;
    async fn identity(&self, id: IdentityId) -> StoreResult<Identity>;
    /// Binds the visitor to the identity with this external id (creating or updating it) and
    /// moves the visitor's anonymous tickets and chats to it, in one transaction. Refused with a
    /// conflict when the visitor already belongs to another identity: one identity never
    /// absorbs another's history.
    async fn identify_visitor(
        &self,
        visitor: VisitorId,
        identity: &Identity,
    ) -> StoreResult<IdentifyOutcome>;

    /// Stores a new chat: its contact, its session and its ticket, in one transaction.
    async fn insert_chat(
        &self,
        contact: &Contact,
        chat: &ChatSession,
        ticket: &Ticket,
    ) -> StoreResult<()>;
    async fn get_chat(&self, contact: ContactId) -> StoreResult<ChatSession>;
    /// The visitor's chats that are still open, oldest first.
    async fn open_chats_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<ContactId>>;
    async fn set_chat_properties(
        &self,
        contact: ContactId,
        properties: &ReservedProperties,
    ) -> StoreResult<()>;
    async fn mark_chat_accepted(&self, contact: ContactId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Appends a message with the next sequence number. A message with a client id that this
    /// sender already used in this chat is not stored again: the stored one is returned with
    /// `false`, so a resend is acknowledged exactly like the first send.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<(ChatMessage, bool)>;
    /// Appends several messages in one transaction (group commit), with `append_message`'s
    /// rules for each; all are stored or none is.
    async fn append_messages(
        &self,
        messages: &[NewMessage],
    ) -> StoreResult<Vec<(ChatMessage, bool)>>;
    /// The chat's messages after `after_seq`, in order, at most `limit`.
    async fn messages(
        &self,
        contact: ContactId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>>;

    async fn insert_attachment(&self, attachment: &Attachment) -> StoreResult<()>;
    async fn get_attachment(&self, id: AttachmentId) -> StoreResult<Attachment>;
    async fn attachments_of(&self, contact: ContactId) -> StoreResult<Vec<Attachment>>;

    async fn get_ticket(&self, id: TicketId) -> StoreResult<Ticket>;
    async fn list_tickets(&self, limit: u32) -> StoreResult<Vec<Ticket>>;
    /// Every ticket a visitor's sessions opened, oldest first.
    async fn tickets_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<Ticket>>;
    async fn update_ticket(&self, ticket: &Ticket) -> StoreResult<()>;

    async fn enqueue_job(&self, job: &Job) -> StoreResult<()>;
    /// Claims the next due job (pending and due, or running with an expired lease), marking it
    /// running until `lease_until` and counting the attempt.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Job>>;
    async fn complete_job(&self, id: JobId) -> StoreResult<()>;
    /// Puts a failed job back to pending at `run_at`, or marks it failed for good (`None`).
    async fn fail_job(
        &self,
        id: JobId,
        error: &str,
        run_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    async fn list_jobs(&self, limit: u32) -> StoreResult<Vec<Job>>;

    async fn create_tone(&self, tone: &Tone) -> StoreResult<()>;
    async fn list_tones(&self) -> StoreResult<Vec<Tone>>;
    async fn delete_tone(&self, id: &str) -> StoreResult<()>;
    async fn notification_settings(
        &self,
        user: UserId,
    ) -> StoreResult<Option<NotificationSettings>>;
    async fn put_notification_settings(&self, settings: &NotificationSettings) -> StoreResult<()>;

    async fn list_trunks(&self) -> StoreResult<Vec<Trunk>>;
    async fn get_trunk(&self, id: TrunkId) -> StoreResult<Trunk>;
    /// Creates or replaces a trunk.
    async fn put_trunk(&self, trunk: &Trunk) -> StoreResult<()>;
    async fn delete_trunk(&self, id: TrunkId) -> StoreResult<()>;
    async fn list_dids(&self) -> StoreResult<Vec<Did>>;
    /// Creates or replaces a dialled number's entry point.
    async fn put_did(&self, did: &Did) -> StoreResult<()>;
    async fn delete_did(&self, number: &str) -> StoreResult<()>;
    /// Sets (or with `None` removes) an agent's SIP phone credential (HA1).
    async fn set_sip_phone(&self, user: UserId, ha1: Option<&str>) -> StoreResult<()>;
    /// The user and HA1 of the SIP phone registered as `username`.
    async fn sip_phone(&self, username: &Username) -> StoreResult<Option<(UserId, String)>>;
    async fn put_voice_audio(&self, key: &str, blob: &str, at: DateTime<Utc>) -> StoreResult<()>;
    async fn voice_audio(&self, key: &str) -> StoreResult<Option<String>>;
    async fn delete_voice_audio(&self, key: &str) -> StoreResult<()>;
    /// Creates or replaces call records, in one transaction.
    async fn put_calls(&self, calls: &[CallRecord]) -> StoreResult<()>;
    /// Creates or replaces a call's record.
    async fn put_call(&self, call: &CallRecord) -> StoreResult<()> {
        self.put_calls(std::slice::from_ref(call)).await
    }
    async fn get_call(&self, id: CallId) -> StoreResult<CallRecord>;
    /// The newest calls first.
    async fn list_calls(&self, limit: u32) -> StoreResult<Vec<CallRecord>>;
}

/// Opens the store a URL names (`sqlite://path`, `sqlite::memory:`, `postgres://…`) and brings
/// its schema up to date.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Config(format!(
            "database URL must start with sqlite: or postgres://, got `{}`",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
