//! The audit log: who did what to whom, kept for admins (settings changes, monitoring,
//! forced ends, recording downloads, refused dialling). Append-only. `AuditStore` says what is
//! kept; `audit_sql!` is its SQL for both backends.

use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::UserId;

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub at: DateTime<Utc>,
    /// Who did it (`None` for the system).
    pub actor: Option<UserId>,
    /// What, as a stable code: `dial_refused`, `settings_changed`, `monitor_started`, …
    pub action: String,
    /// What it was about (a call, a user, a number).
    pub subject: Option<String>,
    /// Anything else worth knowing, as text.
    pub detail: String,
}

/// Which entries to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor: Option<UserId>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// The audit log. Each method is one transaction.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Entries matching the filter, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}

/// Implements `AuditStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! audit_sql {
    ($store:ty, $row:ty) => {
        use crate::audit::{AuditEntry, AuditFilter, AuditStore};
        use crate::codec::{self, millis};
        use crate::StoreResult;
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::UserId;

        crate::sql::opt_id!($row);

        fn audit_from_row(row: &$row) -> StoreResult<AuditEntry> {
            let id: String = row.try_get("id")?;
            Ok(AuditEntry {
                id: uuid::Uuid::try_parse(&id).map_err(codec::corrupt)?,
                at: codec::time(row.try_get("at")?)?,
                actor: opt_id(row, "actor_id", UserId::parse)?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                detail: row.try_get("detail")?,
            })
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (id, at, actor_id, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(entry.id.to_string())
                    .bind(millis(entry.at))
                    .bind(entry.actor.map(|a| a.to_string()))
                    .bind(&entry.action)
                    .bind(&entry.subject)
                    .bind(&entry.detail)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT id, at, actor_id, action, subject, detail FROM audit_log \
                     WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR at >= $3) \
                     ORDER BY at DESC, id DESC LIMIT $4",
                )
                .bind(&filter.action)
                .bind(filter.actor.map(|a| a.to_string()))
                .bind(filter.since.map(millis))
                .bind(i64::from(filter.limit.clamp(1, 1000)))
                .fetch_all(self.reader())
                .await?;
                rows.iter().map(audit_from_row).collect()
            }
        }
    };
}

pub(crate) use audit_sql;
