//! Voicemails (AHD-7): one row per message a caller left at a closed queue, its audio the
//! recording `recording_id` in the recordings' blob store (`blob_key`). A voicemail reaches the
//! queue's agents as a contact (`contact_id`), or, on a queue nobody is assigned to, the CRM
//! as the call's ticket (no contact). `VoicemailStore` says what is kept; `voicemails_sql!` is
//! its SQL for both backends.

use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::{CallId, ContactId, QueueId, RecordingId};

/// A voicemail as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voicemail {
    /// Its recording, which is also its id (one voicemail per recording).
    pub recording: RecordingId,
    pub call: CallId,
    /// The closed queue the caller reached; `None` once that queue is deleted.
    pub queue: Option<QueueId>,
    /// The queue's path when the message was left ("Sales > Renewals").
    pub queue_path: String,
    /// The caller's number as the call gave it.
    pub caller: String,
    pub duration_ms: u64,
    pub blob_key: String,
    /// The contact that routes it to the queue's agents; `None` when it went to the CRM.
    pub contact: Option<ContactId>,
    pub created_at: DateTime<Utc>,
}

/// Voicemails. Each method is one transaction.
#[async_trait]
pub trait VoicemailStore: Send + Sync {
    /// Stores a new voicemail (a second one for the same recording is a conflict).
    async fn insert_voicemail(&self, voicemail: &Voicemail) -> StoreResult<()>;
    async fn get_voicemail(&self, recording: RecordingId) -> StoreResult<Voicemail>;
    /// The voicemail a contact carries, if it carries one.
    async fn voicemail_of_contact(&self, contact: ContactId) -> StoreResult<Option<Voicemail>>;
    /// Every contact that carries a voicemail, so the server tells them apart from calls.
    async fn voicemail_contacts(&self) -> StoreResult<Vec<ContactId>>;
    /// The newest voicemails first, at most `limit`.
    async fn list_voicemails(&self, limit: u32) -> StoreResult<Vec<Voicemail>>;
}

/// Implements `VoicemailStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! voicemails_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::recordings::{signed, unsigned};
        use crate::sql::opt_id;
        use crate::voicemails::{Voicemail, VoicemailStore};
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::{CallId, ContactId, QueueId, RecordingId};

        const COLUMNS: &str = "recording_id, call_id, queue_id, queue_path, caller, duration_ms, blob_key, contact_id, created_at";

        opt_id!($row);

        fn voicemail_from_row(row: &$row) -> StoreResult<Voicemail> {
            Ok(Voicemail {
                recording: codec::id(&row.try_get::<String, _>("recording_id")?, RecordingId::parse)?,
                call: codec::id(&row.try_get::<String, _>("call_id")?, CallId::parse)?,
                queue: opt_id(row, "queue_id", QueueId::parse)?,
                queue_path: row.try_get("queue_path")?,
                caller: row.try_get("caller")?,
                duration_ms: unsigned(row.try_get("duration_ms")?)?,
                blob_key: row.try_get("blob_key")?,
                contact: opt_id(row, "contact_id", ContactId::parse)?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        #[async_trait]
        impl VoicemailStore for $store {
            async fn insert_voicemail(&self, v: &Voicemail) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO voicemails ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(v.recording.to_string())
                .bind(v.call.to_string())
                .bind(v.queue.map(|q| q.to_string()))
                .bind(&v.queue_path)
                .bind(&v.caller)
                .bind(signed(v.duration_ms))
                .bind(&v.blob_key)
                .bind(v.contact.map(|c| c.to_string()))
                .bind(millis(v.created_at))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn get_voicemail(&self, recording: RecordingId) -> StoreResult<Voicemail> {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM voicemails WHERE recording_id = $1"
                ))
                .bind(recording.to_string())
                .fetch_optional(self.reader())
                .await?
                .ok_or_else(|| StoreError::NotFound("voicemail"))?;
                voicemail_from_row(&row)
            }

            async fn voicemail_of_contact(
                &self,
                contact: ContactId,
            ) -> StoreResult<Option<Voicemail>> {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM voicemails WHERE contact_id = $1"
                ))
                .bind(contact.to_string())
                .fetch_optional(self.reader())
                .await?
                .as_ref()
                .map(voicemail_from_row)
                .transpose()
            }

            async fn voicemail_contacts(&self) -> StoreResult<Vec<ContactId>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT contact_id FROM voicemails WHERE contact_id IS NOT NULL ORDER BY contact_id",
                )
                .fetch_all(self.reader())
                .await?;
                ids.iter()
                    .map(|id| codec::id(id, ContactId::parse))
                    .collect()
            }

            async fn list_voicemails(&self, limit: u32) -> StoreResult<Vec<Voicemail>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM voicemails ORDER BY created_at DESC, recording_id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(voicemail_from_row).collect()
            }
        }
    };
}

pub(crate) use voicemails_sql;
