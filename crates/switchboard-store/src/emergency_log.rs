//! The restricted emergency log (EMG-6) and the notification template (EMG-7): one row per
//! emergency call an agent placed (who, when, the number dialled, the callback number and
//! location sent, where the notification mail stands), and the center's "Emergency Call
//! Notification" template. `EmergencyLogStore` says what is kept; `emergency_log_sql!` is its SQL for
//! both backends.

use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::emergency::notice::{MailStatus, Template};
use switchboard_core::{CallId, UserId};

/// One emergency call in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyCall {
    pub call: CallId,
    pub agent: UserId,
    /// The agent's display name when they dialled.
    pub agent_name: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the call is in progress.
    pub ended_at: Option<DateTime<Utc>>,
    /// As the agent typed it (`9-911`).
    pub dialled: String,
    /// The emergency number called (`911`).
    pub number: String,
    /// A carriers' test number (933).
    pub test: bool,
    /// The callback number leased to the agent; `None` when the pool was exhausted.
    pub callback_number: Option<String>,
    /// The civic address sent with the call, on one line; `None` when none was sent.
    pub location: Option<String>,
    pub mail_status: MailStatus,
    /// The last attempt's error, while `mail_status` is `Failed`.
    pub mail_error: Option<String>,
    /// When the mail was handed over, once `Sent`.
    pub mail_sent_at: Option<DateTime<Utc>>,
}

/// Which calls to list.
#[derive(Clone, Debug, Default)]
pub struct EmergencyFilter {
    pub agent: Option<UserId>,
    /// Only calls started at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only calls started before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only calls not ended yet.
    pub in_progress: bool,
    /// At most this many (1 to 1000).
    pub limit: u32,
}

/// The emergency log and template. Each method is one transaction.
#[async_trait]
pub trait EmergencyLogStore: Send + Sync {
    /// Logs a call placed (`Conflict` when the call is logged already).
    async fn insert_emergency_call(&self, call: &EmergencyCall) -> StoreResult<()>;
    /// Notes when the call ended; a call already ended keeps its first end (`NotFound` for a
    /// call not logged).
    async fn end_emergency_call(&self, call: CallId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Sets where the call's mail stands: `Sent` at `at`, `Failed` with `error`, or another
    /// status (`NotFound` for a call not logged).
    async fn set_emergency_mail(
        &self,
        call: CallId,
        status: MailStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn get_emergency_call(&self, call: CallId) -> StoreResult<EmergencyCall>;
    /// Calls matching the filter, newest first.
    async fn list_emergency_calls(
        &self,
        filter: &EmergencyFilter,
    ) -> StoreResult<Vec<EmergencyCall>>;
    /// The notification template: the one saved, else the default.
    async fn emergency_template(&self) -> StoreResult<Template>;
    async fn put_emergency_template(
        &self,
        template: &Template,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Implements `EmergencyLogStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! emergency_log_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::emergency_log::{EmergencyCall, EmergencyFilter, EmergencyLogStore};
        use crate::sql::{not_found_unless_one, opt_millis};
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use switchboard_core::emergency::notice::{MailStatus, Template};
        use switchboard_core::{CallId, UserId};

        const COLUMNS: &str = "call_id, agent_id, agent_name, started_at, ended_at, dialled, number, test, \
             callback_number, location, mail_status, mail_error, mail_sent_at";

        fn call_from_row(row: &$row) -> StoreResult<EmergencyCall> {
            let status: String = row.try_get("mail_status")?;
            Ok(EmergencyCall {
                call: codec::id(&row.try_get::<String, _>("call_id")?, CallId::parse)?,
                agent: codec::id(&row.try_get::<String, _>("agent_id")?, UserId::parse)?,
                agent_name: row.try_get("agent_name")?,
                started_at: codec::time(row.try_get("started_at")?)?,
                ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                dialled: row.try_get("dialled")?,
                number: row.try_get("number")?,
                test: row.try_get("test")?,
                callback_number: row.try_get("callback_number")?,
                location: row.try_get("location")?,
                mail_status: MailStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("mail status {status}")))?,
                mail_error: row.try_get("mail_error")?,
                mail_sent_at: codec::opt_time(row.try_get("mail_sent_at")?)?,
            })
        }

        #[async_trait]
        impl EmergencyLogStore for $store {
            async fn insert_emergency_call(&self, call: &EmergencyCall) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO emergency_calls ({COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ))
                .bind(call.call.to_string())
                .bind(call.agent.to_string())
                .bind(&call.agent_name)
                .bind(millis(call.started_at))
                .bind(opt_millis(call.ended_at))
                .bind(&call.dialled)
                .bind(&call.number)
                .bind(call.test)
                .bind(&call.callback_number)
                .bind(&call.location)
                .bind(call.mail_status.as_str())
                .bind(&call.mail_error)
                .bind(opt_millis(call.mail_sent_at))
                .execute(self.writer())
                .await
                .map_err(|e| StoreError::from(e).conflict_as("this emergency call is logged already"))?;
                Ok(())
            }

            async fn end_emergency_call(&self, call: CallId, at: DateTime<Utc>) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE emergency_calls SET ended_at = COALESCE(ended_at, $2) WHERE call_id = $1",
                )
                .bind(call.to_string())
                .bind(millis(at))
                .execute(self.writer())
                .await?;
                not_found_unless_one(done.rows_affected(), "emergency call")
            }

            async fn set_emergency_mail(
                &self,
                call: CallId,
                status: MailStatus,
                error: Option<&str>,
                at: DateTime<Utc>,
            ) -> StoreResult<()> {
                let error = (status == MailStatus::Failed)
                    .then(|| error.unwrap_or("unknown error").chars().take(1000).collect::<String>());
                let sent_at = (status == MailStatus::Sent).then(|| millis(at));
                let done = sqlx::query(
                    "UPDATE emergency_calls SET mail_status = $2, mail_error = $3, mail_sent_at = $4 WHERE call_id = $1",
                )
                .bind(call.to_string())
                .bind(status.as_str())
                .bind(error)
                .bind(sent_at)
                .execute(self.writer())
                .await?;
                not_found_unless_one(done.rows_affected(), "emergency call")
            }

            async fn get_emergency_call(&self, call: CallId) -> StoreResult<EmergencyCall> {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM emergency_calls WHERE call_id = $1"))
                    .bind(call.to_string())
                    .fetch_optional(self.reader())
                    .await?
                    .ok_or(StoreError::NotFound("emergency call"))?;
                call_from_row(&row)
            }

            async fn list_emergency_calls(
                &self,
                filter: &EmergencyFilter,
            ) -> StoreResult<Vec<EmergencyCall>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM emergency_calls \
                     WHERE ($1 IS NULL OR agent_id = $1) AND ($2 IS NULL OR started_at >= $2) \
                     AND ($3 IS NULL OR started_at < $3) AND ($4 = 0 OR ended_at IS NULL) \
                     ORDER BY started_at DESC, call_id DESC LIMIT $5"
                ))
                .bind(filter.agent.map(|a| a.to_string()))
                .bind(opt_millis(filter.from))
                .bind(opt_millis(filter.to))
                .bind(i64::from(filter.in_progress))
                .bind(i64::from(filter.limit.clamp(1, 1000)))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(call_from_row).collect()
            }

            async fn emergency_template(&self) -> StoreResult<Template> {
                let row = sqlx::query("SELECT subject, body FROM emergency_template WHERE id = 1")
                    .fetch_optional(self.reader())
                    .await?;
                match row {
                    None => Ok(Template::default()),
                    Some(row) => Template::parse(
                        &row.try_get::<String, _>("subject")?,
                        &row.try_get::<String, _>("body")?,
                    )
                    .map_err(codec::corrupt),
                }
            }

            async fn put_emergency_template(
                &self,
                template: &Template,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO emergency_template (id, subject, body, updated_at) VALUES (1, $1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_at = excluded.updated_at",
                )
                .bind(template.subject())
                .bind(template.body())
                .bind(millis(now))
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use emergency_log_sql;
