//! Background work as rows: a job is stored, claimed with a lease (`SKIP LOCKED` on
//! PostgreSQL, so several servers may run workers), completed, or put back with the next
//! attempt's time. `JobStore` says what is kept; `jobs_sql!` is its SQL for both backends.

use crate::records::Job;
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::JobId;

/// Which jobs a worker claims: every kind, one kind only, or all but one (a lane of its own
/// for slow work, so that it never holds up the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobFilter<'a> {
    Any,
    Only(&'a str),
    Except(&'a str),
}

/// Job rows. Each method is one transaction.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn enqueue_job(&self, job: &Job) -> StoreResult<()>;
    /// Stores a job unless one with its id exists (a recurring job's next run, which every
    /// server start and every run schedules); says whether it was stored.
    async fn enqueue_job_once(&self, job: &Job) -> StoreResult<bool>;
    /// Claims the next due job (pending and due, or running with an expired lease), marking it
    /// running until `lease_until` and counting the attempt.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        filter: JobFilter<'_>,
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
}

/// Implements `JobStore` for a backend type with `writer()` and `reader()` pool accessors.
/// `skip_locked` lets workers pass over rows another worker holds (empty for SQLite's single
/// writer).
macro_rules! jobs_sql {
    ($store:ty, $row:ty, skip_locked = $skip_locked:literal) => {
        use crate::codec::{self, millis};
        use crate::jobs::JobStore;
        use crate::records::{Job, JobState};
        use crate::sql::not_found_unless_one;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use switchboard_core::JobId;

        const JOB_COLUMNS: &str = "id, kind, payload, state, run_at, attempts, last_error, created_at";

        fn job_from_row(row: &$row) -> StoreResult<Job> {
            let state: String = row.try_get("state")?;
            Ok(Job {
                id: codec::id(&row.try_get::<String, _>("id")?, JobId::parse)?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state}")))?,
                run_at: codec::time(row.try_get("run_at")?)?,
                attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).map_err(codec::corrupt)?,
                last_error: row.try_get("last_error")?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        #[async_trait]
        impl JobStore for $store {
            async fn enqueue_job(&self, job: &Job) -> StoreResult<()> {
                sqlx::query(&format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(job.id.to_string())
                    .bind(&job.kind)
                    .bind(&job.payload)
                    .bind(job.state.as_str())
                    .bind(millis(job.run_at))
                    .bind(job.attempts as i32)
                    .bind(&job.last_error)
                    .bind(millis(job.created_at))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn enqueue_job_once(&self, job: &Job) -> StoreResult<bool> {
                let done = sqlx::query(&format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING"))
                    .bind(job.id.to_string())
                    .bind(&job.kind)
                    .bind(&job.payload)
                    .bind(job.state.as_str())
                    .bind(millis(job.run_at))
                    .bind(job.attempts as i32)
                    .bind(&job.last_error)
                    .bind(millis(job.created_at))
                    .execute(self.writer()).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_job(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, filter: crate::jobs::JobFilter<'_>) -> StoreResult<Option<Job>> {
                use crate::jobs::JobFilter;
                let (kind, value) = match filter {
                    JobFilter::Any => ("", ""),
                    JobFilter::Only(kind) => ("AND kind = $3", kind),
                    JobFilter::Except(kind) => ("AND kind <> $3", kind),
                };
                let sql = format!(
                    "UPDATE jobs SET state = 'running', locked_until = $2, attempts = attempts + 1 WHERE id = ( \
                     SELECT id FROM jobs WHERE ((state = 'pending' AND run_at <= $1) OR (state = 'running' AND locked_until <= $1)) {kind} \
                     ORDER BY run_at, id LIMIT 1 {}) RETURNING {JOB_COLUMNS}",
                    $skip_locked
                );
                let mut query = sqlx::query(&sql).bind(millis(now)).bind(millis(lease_until));
                if !kind.is_empty() {
                    query = query.bind(value);
                }
                let row = query.fetch_optional(self.writer()).await?;
                row.as_ref().map(job_from_row).transpose()
            }

            async fn complete_job(&self, id: JobId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE jobs SET state = 'done', locked_until = NULL WHERE id = $1")
                    .bind(id.to_string()).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "job")
            }

            async fn fail_job(&self, id: JobId, error: &str, run_at: Option<DateTime<Utc>>) -> StoreResult<()> {
                let error: String = error.chars().take(1000).collect();
                let done = match run_at {
                    Some(at) => sqlx::query("UPDATE jobs SET state = 'pending', locked_until = NULL, last_error = $2, run_at = $3 WHERE id = $1")
                        .bind(id.to_string()).bind(&error).bind(millis(at)).execute(self.writer()).await?,
                    None => sqlx::query("UPDATE jobs SET state = 'failed', locked_until = NULL, last_error = $2 WHERE id = $1")
                        .bind(id.to_string()).bind(&error).execute(self.writer()).await?,
                };
                not_found_unless_one(done.rows_affected(), "job")
            }

            async fn list_jobs(&self, limit: u32) -> StoreResult<Vec<Job>> {
                let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(job_from_row).collect()
            }
        }
    };
}

pub(crate) use jobs_sql;
