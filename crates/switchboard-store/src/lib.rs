//! Switchboard's storage: the `Store` trait, split by area, and its two backends.
//!
//! SQLite is the embedded default (a file created on first run, in WAL mode); PostgreSQL is
//! for centers that outgrow one machine. Both run the same SQL where the dialects agree
//! (see `sql.rs`) and keep their own migrations. Writes that belong together are one
//! transaction inside a single trait method, so callers never hold a transaction open.
//!
//! The store is split by area, each a trait in its own file with its SQL next to it:
//! - `DirectoryStore` (`directory.rs`): how the center is set up and who works in it. Center
//!   settings, roles, teams, users with their credentials, TOTP and presence, queues, capacity
//!   profiles, business hours, custom statuses, sign-in sessions, Apps API keys, integration
//!   settings. Sessions and keys sit here because they belong to users and the center's setup.
//! - `ContactStore` (`contacts.rs`): contacts and their routing state, for every channel.
//! - `ChatStore` (`chat.rs`): visitors and identities, chat sessions, messages, attachments,
//!   tickets, notification tones and settings.
//! - `VoiceStore` (`voice.rs`): trunks, dialled numbers, SIP phones, uploaded voice audio, call
//!   records.
//! - `JobStore` (`jobs.rs`): background jobs (rows claimed with a lease).
//! - `AfterHoursStore` (`after_hours.rs`): after-hours deflection rules per channel and queue,
//!   and whether agents may transfer to queues outside their hours.
//! - `OfferStore` (`offers.rs`): what consumers are offered instead of chatting or waiting
//!   (the help-center address, the wait offer).
//! - `PolicyStore` (`policy.rs`): dialling policies (class of service) per center, role, team.
//! - `AuditStore` (`audit.rs`): the audit log, append-only.
//! - `RecordingStore` (`recordings.rs`): call recordings' metadata, queues' recording setting,
//!   recordings' uploads to the CRM.
//! - `DashboardStore` (`dashboards.rs`): the rows dashboards are computed from.
//! - `EmergencyStore` (`emergency.rs`): emergency numbers, sites and agents' civic addresses,
//!   callback-number leases.
//! - `EmergencyLogStore` (`emergency_log.rs`): the restricted emergency log and the notification
//!   template.
//! - `VoicemailStore` (`voicemails.rs`): voicemails left at closed queues.
//! - `SmsStore` (`sms.rs`): the SMS connector's settings, senders, inbound and outbound messages,
//!   agents' numbers for call notifications.
//! - `CallbackStore` (`callbacks.rs`): scheduled callbacks and their attempts, claimed when due.
//!
//! `Store` is all of them together, plus the backend's name and a health check, so an
//! `Arc<dyn Store>` serves every caller; `use switchboard_store::prelude::*` brings every
//! area's methods into scope. A new area is a new file with its trait and its SQL macro, one
//! more supertrait of `Store`, and one line per backend.

mod after_hours;
mod audit;
mod callbacks;
mod chat;
mod codec;
mod contacts;
mod dashboards;
mod directory;
mod emergency;
mod emergency_log;
mod error;
mod jobs;
mod offers;
mod policy;
mod postgres;
mod recordings;
mod records;
mod secrets;
mod sms;
mod sql;
mod sqlite;
mod voice;
mod voicemails;

pub use after_hours::AfterHoursStore;
pub use audit::{AuditEntry, AuditFilter, AuditStore};
pub use callbacks::CallbackStore;
pub use chat::ChatStore;
pub use contacts::ContactStore;
pub use dashboards::DashboardStore;
pub use directory::DirectoryStore;
pub use emergency::EmergencyStore;
pub use emergency_log::{EmergencyCall, EmergencyFilter, EmergencyLogStore};
pub use error::StoreError;
pub use jobs::{JobFilter, JobStore};
pub use offers::OfferStore;
pub use policy::{PolicyScope, PolicyStore};
pub use postgres::PostgresStore;
pub use recordings::RecordingStore;
pub use records::{
    ApiKey, Attachment, CenterSettings, ChatSession, Credentials, HoursRecord, IdentifyOutcome,
    Identity, IntegrationSettings, Job, JobState, NewMessage, NotificationSettings,
    RecordingUpload, Session, Ticket, Tone, UploadBytes, UploadState, Visitor,
};
pub use secrets::{is_sealed, SecretKeys};
pub use sms::{InboundSms, OutboundSms, SmsSender, SmsSettings, SmsStore};
pub use sqlite::SqliteStore;
pub use voice::{VoiceStore, WhisperSettings};
pub use voicemails::{Voicemail, VoicemailStore};

use async_trait::async_trait;
use std::sync::Arc;

pub type StoreResult<T> = Result<T, StoreError>;

/// The store traits, to bring every area's methods into scope at once.
pub mod prelude {
    pub use crate::{
        AfterHoursStore, AuditStore, CallbackStore, ChatStore, ContactStore, DashboardStore,
        DirectoryStore, EmergencyLogStore, EmergencyStore, JobStore, OfferStore, PolicyStore,
        RecordingStore, SmsStore, Store, VoiceStore, VoicemailStore,
    };
}

/// Everything Switchboard keeps: every area, on one backend.
#[async_trait]
pub trait Store:
    DirectoryStore
    + AfterHoursStore
    + ContactStore
    + ChatStore
    + VoiceStore
    + JobStore
    + PolicyStore
    + AuditStore
    + RecordingStore
    + DashboardStore
    + EmergencyStore
    + EmergencyLogStore
    + OfferStore
    + VoicemailStore
    + SmsStore
    + CallbackStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Answers when the database is reachable (for health checks).
    async fn ping(&self) -> StoreResult<()>;
    /// Rewrites one row, to learn whether the database takes writes (a full disk, a
    /// read-only replica, a lost lock); for health checks.
    async fn probe_write(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<()>;
    /// Seals every stored secret that is clear or sealed under an older key with the current
    /// key, in one transaction; returns how many were sealed again. Run on start, and by a
    /// key rotation.
    async fn reseal_secrets(&self) -> StoreResult<u64>;
}

/// Opens the store a URL names (`sqlite://path`, `sqlite::memory:`, `postgres://…`) and brings
/// its schema up to date.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    open_sealed(url, SecretKeys::none()).await
}

/// Opens the store like `open`, sealing secrets at rest with `keys` (see `secrets.rs`).
pub async fn open_sealed(url: &str, keys: SecretKeys) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(url).await?.with_secret_keys(keys),
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::open(url).await?.with_secret_keys(keys),
        ))
    } else {
        Err(StoreError::Config(format!(
            "database URL must start with sqlite: or postgres://, got `{}`",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
