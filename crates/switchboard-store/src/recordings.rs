//! Call recordings: each recording's metadata (its bytes are in the server's recordings blob
//! store), and which voice queues do not record their calls. `RecordingStore` says what is
//! kept; `recordings_sql!` is its SQL for both backends.

use crate::records::RecordingUpload;
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::voice::Recording;
use switchboard_core::{CallId, QueueId, RecordingId};

/// Recordings and the queues' recording setting. Each method is one transaction.
#[async_trait]
pub trait RecordingStore: Send + Sync {
    /// Creates a recording's row or replaces it (as it grows and when it ends).
    async fn put_recording(&self, recording: &Recording) -> StoreResult<()>;
    async fn get_recording(&self, id: RecordingId) -> StoreResult<Recording>;
    /// A call's recordings, oldest first.
    async fn recordings_of_call(&self, call: CallId) -> StoreResult<Vec<Recording>>;
    /// Recordings started before `cutoff`, oldest first, at most `limit`.
    async fn recordings_started_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Recording>>;
    /// Deletes a recording's row (its bytes are the blob store's).
    async fn delete_recording(&self, id: RecordingId) -> StoreResult<()>;
    /// Marks every recording still being written as interrupted (a previous process stopped
    /// while writing them); returns how many.
    async fn interrupt_recordings(&self) -> StoreResult<u64>;
    /// Whether a queue records its calls (default: yes).
    async fn set_queue_recording(&self, queue: QueueId, record_calls: bool) -> StoreResult<()>;
    async fn queue_records_calls(&self, queue: QueueId) -> StoreResult<bool>;
    /// The queues that do not record their calls.
    async fn unrecorded_queues(&self) -> StoreResult<Vec<QueueId>>;
    /// Creates a recording's upload or replaces it (as its parts are acknowledged).
    async fn put_upload(&self, upload: &RecordingUpload) -> StoreResult<()>;
    async fn get_upload(&self, recording: RecordingId) -> StoreResult<Option<RecordingUpload>>;
    /// Uploads, newest first; with `unfinished`, only those not yet uploaded or attached
    /// (sending, failed, lost): what the portal shows an admin to look at.
    async fn list_uploads(&self, unfinished: bool, limit: u32)
        -> StoreResult<Vec<RecordingUpload>>;
    /// A call's uploads, oldest first.
    async fn uploads_of_call(&self, call: CallId) -> StoreResult<Vec<RecordingUpload>>;
}

pub(crate) fn spans_text(spans: &[(u64, u64)]) -> String {
    let pairs: Vec<[u64; 2]> = spans.iter().map(|(a, b)| [*a, *b]).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn spans(text: &str) -> StoreResult<Vec<(u64, u64)>> {
    let pairs: Vec<[u64; 2]> = serde_json::from_str(text).map_err(crate::codec::corrupt)?;
    Ok(pairs.into_iter().map(|[a, b]| (a, b)).collect())
}

pub(crate) fn unsigned(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(crate::codec::corrupt)
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Implements `RecordingStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! recordings_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::recordings::{signed, spans, spans_text, unsigned, RecordingStore};
        use crate::sql::{not_found_unless_one, opt_id, opt_millis};
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use switchboard_core::voice::{Recording, RecordingStatus};
        use switchboard_core::{CallId, QueueId, RecordingId, TicketId, UserId};
        use crate::records::{RecordingUpload, UploadState};

        const COLUMNS: &str = "id, call_id, agent_id, started_at, ended_at, duration_ms, size_bytes, paused, status, blob_key";
        const UPLOAD_COLUMNS: &str = "recording_id, call_id, ticket_id, connector, state, size_bytes, parts_total, parts_done, bytes_done, part_bytes, receipts, last_error, queued_at, updated_at";

        fn upload_from_row(row: &$row) -> StoreResult<RecordingUpload> {
            let count = |name: &str| -> StoreResult<u32> {
                u32::try_from(row.try_get::<i64, _>(name)?).map_err(codec::corrupt)
            };
            Ok(RecordingUpload {
                recording: codec::id(&row.try_get::<String, _>("recording_id")?, RecordingId::parse)?,
                call: codec::id(&row.try_get::<String, _>("call_id")?, CallId::parse)?,
                ticket: codec::id(&row.try_get::<String, _>("ticket_id")?, TicketId::parse)?,
                connector: row.try_get("connector")?,
                state: UploadState::parse(&row.try_get::<String, _>("state")?).map_err(codec::corrupt)?,
                size_bytes: unsigned(row.try_get("size_bytes")?)?,
                parts_total: count("parts_total")?,
                parts_done: count("parts_done")?,
                bytes_done: unsigned(row.try_get("bytes_done")?)?,
                part_bytes: unsigned(row.try_get("part_bytes")?)?,
                receipts: serde_json::from_str(&row.try_get::<String, _>("receipts")?).map_err(codec::corrupt)?,
                last_error: row.try_get("last_error")?,
                queued_at: codec::time(row.try_get("queued_at")?)?,
                updated_at: codec::time(row.try_get("updated_at")?)?,
            })
        }

        opt_id!($row);

        fn recording_from_row(row: &$row) -> StoreResult<Recording> {
            Ok(Recording {
                id: codec::id(&row.try_get::<String, _>("id")?, RecordingId::parse)?,
                call: codec::id(&row.try_get::<String, _>("call_id")?, CallId::parse)?,
                agent: opt_id(row, "agent_id", UserId::parse)?,
                started_at: codec::time(row.try_get("started_at")?)?,
                ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                duration_ms: unsigned(row.try_get("duration_ms")?)?,
                size_bytes: unsigned(row.try_get("size_bytes")?)?,
                paused: spans(&row.try_get::<String, _>("paused")?)?,
                status: RecordingStatus::parse(&row.try_get::<String, _>("status")?)
                    .map_err(codec::corrupt)?,
                blob_key: row.try_get("blob_key")?,
            })
        }

        #[async_trait]
        impl RecordingStore for $store {
            async fn put_recording(&self, r: &Recording) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, ended_at = excluded.ended_at, \
                     duration_ms = excluded.duration_ms, size_bytes = excluded.size_bytes, paused = excluded.paused, \
                     status = excluded.status"
                ))
                .bind(r.id.to_string())
                .bind(r.call.to_string())
                .bind(r.agent.map(|a| a.to_string()))
                .bind(millis(r.started_at))
                .bind(opt_millis(r.ended_at))
                .bind(signed(r.duration_ms))
                .bind(signed(r.size_bytes))
                .bind(spans_text(&r.paused))
                .bind(r.status.as_str())
                .bind(&r.blob_key)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn get_recording(&self, id: RecordingId) -> StoreResult<Recording> {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(StoreError::NotFound("recording"))?;
                recording_from_row(&row)
            }

            async fn recordings_of_call(&self, call: CallId) -> StoreResult<Vec<Recording>> {
                let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE call_id = $1"))
                    .bind(call.to_string())
                    .fetch_all(self.reader())
                    .await?;
                let mut list = rows.iter().map(recording_from_row).collect::<StoreResult<Vec<_>>>()?;
                list.sort_by_key(|r| (r.started_at, r.id));
                Ok(list)
            }

            async fn recordings_started_before(
                &self,
                cutoff: DateTime<Utc>,
                limit: u32,
            ) -> StoreResult<Vec<Recording>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM recordings WHERE started_at < $1 ORDER BY started_at LIMIT $2"
                ))
                .bind(millis(cutoff))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(recording_from_row).collect()
            }

            async fn delete_recording(&self, id: RecordingId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM recordings WHERE id = $1")
                    .bind(id.to_string())
                    .execute(self.writer())
                    .await?;
                not_found_unless_one(done.rows_affected(), "recording")
            }

            async fn interrupt_recordings(&self) -> StoreResult<u64> {
                let done = sqlx::query("UPDATE recordings SET status = $1 WHERE status = $2")
                    .bind(RecordingStatus::Interrupted.as_str())
                    .bind(RecordingStatus::Recording.as_str())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn set_queue_recording(&self, queue: QueueId, record_calls: bool) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO queue_recording (queue_id, record_calls) VALUES ($1, $2) \
                     ON CONFLICT (queue_id) DO UPDATE SET record_calls = excluded.record_calls",
                )
                .bind(queue.to_string())
                .bind(record_calls)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn queue_records_calls(&self, queue: QueueId) -> StoreResult<bool> {
                let record: Option<bool> = sqlx::query_scalar("SELECT record_calls FROM queue_recording WHERE queue_id = $1")
                    .bind(queue.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                Ok(record.unwrap_or(true))
            }

            async fn unrecorded_queues(&self) -> StoreResult<Vec<QueueId>> {
                let rows = sqlx::query("SELECT queue_id FROM queue_recording WHERE record_calls = $1")
                    .bind(false)
                    .fetch_all(self.reader())
                    .await?;
                let mut queues = rows
                    .iter()
                    .map(|row| codec::id(&row.try_get::<String, _>("queue_id")?, QueueId::parse))
                    .collect::<StoreResult<Vec<_>>>()?;
                queues.sort();
                Ok(queues)
            }

            async fn put_upload(&self, u: &RecordingUpload) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO recording_uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (recording_id) DO UPDATE SET state = excluded.state, parts_total = excluded.parts_total, \
                     parts_done = excluded.parts_done, bytes_done = excluded.bytes_done, part_bytes = excluded.part_bytes, receipts = excluded.receipts, last_error = excluded.last_error, \
                     updated_at = excluded.updated_at"
                ))
                .bind(u.recording.to_string())
                .bind(u.call.to_string())
                .bind(u.ticket.to_string())
                .bind(&u.connector)
                .bind(u.state.as_str())
                .bind(signed(u.size_bytes))
                .bind(i64::from(u.parts_total))
                .bind(i64::from(u.parts_done))
                .bind(signed(u.bytes_done))
                .bind(signed(u.part_bytes))
                .bind(serde_json::to_string(&u.receipts).unwrap_or_else(|_| "[]".into()))
                .bind(&u.last_error)
                .bind(millis(u.queued_at))
                .bind(millis(u.updated_at))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn get_upload(&self, recording: RecordingId) -> StoreResult<Option<RecordingUpload>> {
                let row = sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM recording_uploads WHERE recording_id = $1"))
                    .bind(recording.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(upload_from_row).transpose()
            }

            async fn list_uploads(&self, unfinished: bool, limit: u32) -> StoreResult<Vec<RecordingUpload>> {
                let filter = if unfinished { "WHERE state IN ('sending', 'failed', 'lost')" } else { "" };
                let rows = sqlx::query(&format!(
                    "SELECT {UPLOAD_COLUMNS} FROM recording_uploads {filter} ORDER BY queued_at DESC, recording_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(upload_from_row).collect()
            }

            async fn uploads_of_call(&self, call: CallId) -> StoreResult<Vec<RecordingUpload>> {
                let rows = sqlx::query(&format!(
                    "SELECT {UPLOAD_COLUMNS} FROM recording_uploads WHERE call_id = $1 ORDER BY queued_at, recording_id"
                ))
                .bind(call.to_string())
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(upload_from_row).collect()
            }
        }
    };
}

pub(crate) use recordings_sql;
