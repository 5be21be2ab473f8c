//! Dashboards (PLT-10): the rows a queue's or a team's dashboard is computed from (the core's
//! `dashboard` module does the arithmetic). `DashboardStore` says what is read;
//! `dashboards_sql!` is its SQL for both backends.
//!
//! What keeps a dashboard fast over millions of contacts is `contacts_queue_created`
//! (migration 0012): the range's contacts of a queue are one range scan of an index that holds
//! every column read, so the cost follows the range's contacts, not the table's. A team reads
//! its queues the same way, one index range per queue.

use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::dashboard::{ContactRow, PresenceRow, Range, Scope};

/// Reads for dashboards. Each method is one query.
#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// The contacts that arrived in the range in the scope's queues (a team's: those its
    /// members take contacts from).
    async fn dashboard_contacts(&self, scope: Scope, range: Range) -> StoreResult<Vec<ContactRow>>;
    /// For each of the scope's agents (a queue's agents, a team's members): their last
    /// presence change before the range and their changes in it.
    async fn dashboard_presence(&self, scope: Scope, range: Range)
        -> StoreResult<Vec<PresenceRow>>;
}

/// Implements `DashboardStore` for a backend type with a `reader()` pool accessor.
macro_rules! dashboards_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::dashboards::DashboardStore;
        use crate::StoreResult;
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::dashboard::{ContactRow, PresenceRow, Range, Scope};
        use switchboard_core::{ContactStatus, UserId};

        /// The scope's queues as a subquery on `$1`.
        fn queues_of(scope: Scope) -> (&'static str, String) {
            match scope {
                Scope::Queue(queue) => ("SELECT $1", queue.to_string()),
                Scope::Team(team) => (
                    "SELECT DISTINCT qa.queue_id FROM queue_agents qa \
                     JOIN team_members tm ON tm.user_id = qa.user_id WHERE tm.team_id = $1",
                    team.to_string(),
                ),
            }
        }

        /// The scope's agents as a subquery on `$1`.
        fn agents_of(scope: Scope) -> (&'static str, String) {
            match scope {
                Scope::Queue(queue) => ("SELECT user_id FROM queue_agents WHERE queue_id = $1", queue.to_string()),
                Scope::Team(team) => ("SELECT user_id FROM team_members WHERE team_id = $1", team.to_string()),
            }
        }

        #[async_trait]
        impl DashboardStore for $store {
            async fn dashboard_contacts(&self, scope: Scope, range: Range) -> StoreResult<Vec<ContactRow>> {
                let (queues, key) = queues_of(scope);
                let rows = sqlx::query(&format!(
                    "SELECT created_at, assigned_at, ended_at, status FROM contacts \
                     WHERE queue_id IN ({queues}) AND created_at >= $2 AND created_at < $3"
                ))
                .bind(key)
                .bind(millis(range.from()))
                .bind(millis(range.to()))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        Ok(ContactRow {
                            created_at: codec::time(row.try_get("created_at")?)?,
                            assigned_at: codec::opt_time(row.try_get("assigned_at")?)?,
                            ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                            status: ContactStatus::parse(&row.try_get::<String, _>("status")?)
                                .map_err(codec::corrupt)?,
                        })
                    })
                    .collect()
            }

            async fn dashboard_presence(&self, scope: Scope, range: Range) -> StoreResult<Vec<PresenceRow>> {
                let (agents, key) = agents_of(scope);
                let rows = sqlx::query(&format!(
                    "SELECT p.user_id, p.presence, p.at FROM presence_changes p \
                     WHERE p.user_id IN ({agents}) AND p.at < $3 AND (p.at >= $2 OR p.at = \
                     (SELECT max(b.at) FROM presence_changes b WHERE b.user_id = p.user_id AND b.at < $2))"
                ))
                .bind(key)
                .bind(millis(range.from()))
                .bind(millis(range.to()))
                .fetch_all(self.reader())
                .await?;
                rows.iter()
                    .map(|row: &$row| {
                        Ok(PresenceRow {
                            agent: codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?,
                            presence: row.try_get::<String, _>("presence")?,
                            at: codec::time(row.try_get("at")?)?,
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use dashboards_sql;
