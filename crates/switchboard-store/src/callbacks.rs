//! Scheduled callbacks as rows: stored when booked, claimed when due with a lease (`SKIP
//! LOCKED` on PostgreSQL, as jobs are), and moved through their life one transaction a step,
//! each checking the status it leaves, so that a restart loses none and no attempt is made
//! twice. `CallbackStore` says what is kept; `callbacks_sql!` is its SQL for both backends.

use crate::codec::{self, corrupt};
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use switchboard_core::callback::{
    Attempt, AttemptOutcome, Callback, CallbackOrigin, CallbackStatus, RetryPolicy, E164,
};
use switchboard_core::{CallbackId, ContactId, QueueId, UserId};

/// Callback rows. Each method is one transaction.
#[async_trait]
pub trait CallbackStore: Send + Sync {
    async fn insert_callback(&self, callback: &Callback) -> StoreResult<()>;
    /// `NotFound` when there is none.
    async fn get_callback(&self, id: CallbackId) -> StoreResult<Callback>;
    /// Callbacks (of one status, or all), by due time, at most `limit`.
    async fn list_callbacks(
        &self,
        status: Option<CallbackStatus>,
        limit: u32,
    ) -> StoreResult<Vec<Callback>>;
    /// Claims up to `limit` due callbacks (scheduled, due at `now`, and not held by an
    /// unexpired lease) in slot order, holding each until `lease_until`. A claim that is not
    /// followed by `save_callback` lapses, and the callback is claimed again.
    async fn claim_due_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Callback>>;
    /// When the next scheduled callback is due (however it is held).
    async fn next_callback_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// Stores the callback's new state (status, due time, contact, attempts) and releases its
    /// lease, if it is still in `from`; otherwise changes nothing and answers `Conflict` (someone
    /// else moved it on: it is not dialled twice).
    async fn save_callback(&self, callback: &Callback, from: CallbackStatus) -> StoreResult<()>;
    /// The queues whose waiting callers may not ask for a callback (`*`); every other may.
    async fn queues_without_queue_callbacks(&self) -> StoreResult<Vec<QueueId>>;
    /// Allows or refuses a queue's waiting callers asking for a callback.
    async fn set_queue_callbacks(&self, queue: QueueId, allowed: bool) -> StoreResult<()>;
}

pub(crate) const COLUMNS: &str = "id, queue_id, number, priority, origin, enqueued_at, slot_at, due_at, status, max_attempts, retry_delay_ms, contact_id, created_at, updated_at";

/// A `callbacks` row's columns, as read.
pub(crate) struct Row {
    pub id: String,
    pub queue_id: String,
    pub number: String,
    pub priority: i32,
    pub origin: String,
    pub enqueued_at: Option<i64>,
    pub slot_at: i64,
    pub due_at: i64,
    pub status: String,
    pub max_attempts: i32,
    pub retry_delay_ms: i64,
    pub contact_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A `callback_attempts` row's columns, as read.
pub(crate) struct AttemptRow {
    pub callback_id: String,
    pub number: i32,
    pub agent_id: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
}

pub(crate) fn attempt_from(row: AttemptRow) -> StoreResult<(CallbackId, Attempt)> {
    Ok((
        codec::id(&row.callback_id, CallbackId::parse)?,
        Attempt {
            number: u32::try_from(row.number).map_err(corrupt)?,
            agent: row
                .agent_id
                .as_deref()
                .map(|a| codec::id(a, UserId::parse))
                .transpose()?,
            started_at: codec::time(row.started_at)?,
            ended_at: codec::opt_time(row.ended_at)?,
            outcome: row
                .outcome
                .as_deref()
                .map(|o| {
                    AttemptOutcome::parse(o).ok_or_else(|| corrupt(format!("callback outcome {o}")))
                })
                .transpose()?,
        },
    ))
}

pub(crate) fn callback_from(row: Row, mut attempts: Vec<Attempt>) -> StoreResult<Callback> {
    attempts.sort_by_key(|a| a.number);
    let origin = match (row.origin.as_str(), row.enqueued_at) {
        ("scheduled", _) => CallbackOrigin::Scheduled,
        ("in_queue", Some(at)) => CallbackOrigin::InQueue {
            enqueued_at: codec::time(at)?,
        },
        (other, _) => return Err(corrupt(format!("callback origin {other}"))),
    };
    let delay = Duration::milliseconds(row.retry_delay_ms);
    Ok(Callback {
        id: codec::id(&row.id, CallbackId::parse)?,
        queue: codec::id(&row.queue_id, QueueId::parse)?,
        number: E164::parse(&row.number).map_err(corrupt)?,
        priority: row.priority,
        origin,
        slot: codec::time(row.slot_at)?,
        due_at: codec::time(row.due_at)?,
        status: CallbackStatus::parse(&row.status)
            .ok_or_else(|| corrupt(format!("callback status {}", row.status)))?,
        policy: RetryPolicy::new(u32::try_from(row.max_attempts).map_err(corrupt)?, delay)
            .map_err(corrupt)?,
        contact: row
            .contact_id
            .as_deref()
            .map(|c| codec::id(c, ContactId::parse))
            .transpose()?,
        attempts,
        created_at: codec::time(row.created_at)?,
        updated_at: codec::time(row.updated_at)?,
    })
}

/// Implements `CallbackStore` for a backend type with `writer()` and `reader()` pool
/// accessors. `skip_locked` lets schedulers on several servers pass over rows another one is
/// claiming (empty for SQLite's single writer).
macro_rules! callbacks_sql {
    ($store:ty, $row:ty, skip_locked = $skip_locked:literal) => {
        use crate::callbacks::{attempt_from, callback_from, AttemptRow, CallbackStore, Row, COLUMNS};
        use crate::codec::millis;
        use crate::sql::opt_millis;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row as _;
        use std::collections::HashMap;
        use switchboard_core::callback::{Attempt, Callback, CallbackOrigin, CallbackStatus};
        use switchboard_core::CallbackId;

        fn row_from(row: &$row) -> StoreResult<Row> {
            Ok(Row {
                id: row.try_get("id")?,
                queue_id: row.try_get("queue_id")?,
                number: row.try_get("number")?,
                priority: row.try_get("priority")?,
                origin: row.try_get("origin")?,
                enqueued_at: row.try_get("enqueued_at")?,
                slot_at: row.try_get("slot_at")?,
                due_at: row.try_get("due_at")?,
                status: row.try_get("status")?,
                max_attempts: row.try_get("max_attempts")?,
                retry_delay_ms: row.try_get("retry_delay_ms")?,
                contact_id: row.try_get("contact_id")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        impl $store {
            /// The rows with their attempts, in due order (then id).
            async fn with_attempts<'e, E>(&self, executor: E, rows: Vec<$row>) -> StoreResult<Vec<Callback>>
            where
                E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
            {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let rows = rows.iter().map(row_from).collect::<StoreResult<Vec<_>>>()?;
                let placeholders: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT callback_id, number, agent_id, started_at, ended_at, outcome FROM callback_attempts WHERE callback_id IN ({})",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for row in &rows {
                    query = query.bind(row.id.clone());
                }
                let mut attempts: HashMap<CallbackId, Vec<Attempt>> = HashMap::new();
                for a in query.fetch_all(executor).await? {
                    let (id, attempt) = attempt_from(AttemptRow {
                        callback_id: a.try_get("callback_id")?,
                        number: a.try_get("number")?,
                        agent_id: a.try_get("agent_id")?,
                        started_at: a.try_get("started_at")?,
                        ended_at: a.try_get("ended_at")?,
                        outcome: a.try_get("outcome")?,
                    })?;
                    attempts.entry(id).or_default().push(attempt);
                }
                let mut callbacks = rows
                    .into_iter()
                    .map(|row| {
                        let id = crate::codec::id(&row.id, CallbackId::parse)?;
                        callback_from(row, attempts.remove(&id).unwrap_or_default())
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                callbacks.sort_by_key(|c| (c.due_at, std::cmp::Reverse(c.priority), c.created_at, c.id));
                Ok(callbacks)
            }
        }

        #[async_trait]
        impl CallbackStore for $store {
            async fn insert_callback(&self, callback: &Callback) -> StoreResult<()> {
                let enqueued_at = match callback.origin {
                    CallbackOrigin::Scheduled => None,
                    CallbackOrigin::InQueue { enqueued_at } => Some(millis(enqueued_at)),
                };
                sqlx::query(&format!(
                    "INSERT INTO callbacks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(callback.id.to_string())
                .bind(callback.queue.to_string())
                .bind(callback.number.as_str())
                .bind(callback.priority)
                .bind(callback.origin.kind())
                .bind(enqueued_at)
                .bind(millis(callback.slot))
                .bind(millis(callback.due_at))
                .bind(callback.status.as_str())
                .bind(callback.policy.max_attempts as i32)
                .bind(callback.policy.delay.num_milliseconds())
                .bind(callback.contact.map(|c| c.to_string()))
                .bind(millis(callback.created_at))
                .bind(millis(callback.updated_at))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn get_callback(&self, id: CallbackId) -> StoreResult<Callback> {
                let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM callbacks WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                self.with_attempts(self.reader(), rows)
                    .await?
                    .pop()
                    .ok_or(StoreError::NotFound("callback"))
            }

            async fn list_callbacks(&self, status: Option<CallbackStatus>, limit: u32) -> StoreResult<Vec<Callback>> {
                let rows = match status {
                    Some(status) => sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM callbacks WHERE status = $1 ORDER BY due_at, id LIMIT $2"
                    ))
                    .bind(status.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await?,
                    None => sqlx::query(&format!("SELECT {COLUMNS} FROM callbacks ORDER BY due_at, id LIMIT $1"))
                        .bind(i64::from(limit))
                        .fetch_all(self.reader())
                        .await?,
                };
                self.with_attempts(self.reader(), rows).await
            }

            async fn claim_due_callbacks(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Callback>> {
                let mut tx = self.writer().begin().await?;
                let sql = format!(
                    "UPDATE callbacks SET locked_until = $2 WHERE id IN ( \
                     SELECT id FROM callbacks WHERE status = 'scheduled' AND due_at <= $1 \
                     AND (locked_until IS NULL OR locked_until <= $1) \
                     ORDER BY due_at, priority DESC, id LIMIT $3 {}) RETURNING {COLUMNS}",
                    $skip_locked
                );
                let rows = sqlx::query(&sql)
                    .bind(millis(now))
                    .bind(millis(lease_until))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let callbacks = self.with_attempts(&mut *tx, rows).await?;
                tx.commit().await?;
                Ok(callbacks)
            }

            async fn next_callback_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
                let at: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM callbacks WHERE status = 'scheduled'")
                    .fetch_one(self.reader())
                    .await?;
                crate::codec::opt_time(at)
            }

            async fn save_callback(&self, callback: &Callback, from: CallbackStatus) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE callbacks SET status = $2, due_at = $3, contact_id = $4, updated_at = $5, locked_until = NULL \
                     WHERE id = $1 AND status = $6",
                )
                .bind(callback.id.to_string())
                .bind(callback.status.as_str())
                .bind(millis(callback.due_at))
                .bind(callback.contact.map(|c| c.to_string()))
                .bind(millis(callback.updated_at))
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    let exists: Option<String> = sqlx::query_scalar("SELECT status FROM callbacks WHERE id = $1")
                        .bind(callback.id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match exists {
                        None => StoreError::NotFound("callback"),
                        Some(status) => StoreError::Conflict(format!(
                            "the callback is {status}, no longer {}",
                            from.as_str()
                        )),
                    });
                }
                for attempt in &callback.attempts {
                    sqlx::query(
                        "INSERT INTO callback_attempts (callback_id, number, agent_id, started_at, ended_at, outcome) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (callback_id, number) DO UPDATE SET \
                         agent_id = excluded.agent_id, ended_at = excluded.ended_at, outcome = excluded.outcome",
                    )
                    .bind(callback.id.to_string())
                    .bind(attempt.number as i32)
                    .bind(attempt.agent.map(|a| a.to_string()))
                    .bind(millis(attempt.started_at))
                    .bind(opt_millis(attempt.ended_at))
                    .bind(attempt.outcome.map(|o| o.as_str()))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn queues_without_queue_callbacks(&self) -> StoreResult<Vec<switchboard_core::QueueId>> {
                let rows: Vec<String> = sqlx::query_scalar("SELECT queue_id FROM queue_callback_settings WHERE NOT in_queue")
                    .fetch_all(self.reader())
                    .await?;
                let mut queues = rows
                    .iter()
                    .map(|q| crate::codec::id(q, switchboard_core::QueueId::parse))
                    .collect::<StoreResult<Vec<_>>>()?;
                queues.sort();
                Ok(queues)
            }

            async fn set_queue_callbacks(&self, queue: switchboard_core::QueueId, allowed: bool) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO queue_callback_settings (queue_id, in_queue) VALUES ($1, $2) \
                     ON CONFLICT (queue_id) DO UPDATE SET in_queue = excluded.in_queue",
                )
                .bind(queue.to_string())
                .bind(allowed)
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use callbacks_sql;
