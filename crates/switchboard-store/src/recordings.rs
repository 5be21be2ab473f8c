//! Call recordings: each recording's metadata (its bytes are in the server's recordings blob
//! store), and which voice queues do not record their calls. `RecordingStore` says what is
//! kept; `recordings_sql!` is its SQL for both backends.

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
        use switchboard_core::{CallId, QueueId, RecordingId, UserId};

        const COLUMNS: &str = "id, call_id, agent_id, started_at, ended_at, duration_ms, size_bytes, paused, status, blob_key";

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
        }
    };
}

pub(crate) use recordings_sql;
