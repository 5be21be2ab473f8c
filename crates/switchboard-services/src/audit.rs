//! The audit log's handle: who did what to whom, for admins. Writing an entry never fails the
//! action it records (an audit write that fails is logged as an error); reading is for the
//! portal and the API.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use switchboard_core::UserId;
use switchboard_store::{AuditEntry, AuditFilter, Store, StoreResult};

#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Audit { store }
    }

    /// Records an action: `action` is a stable code (`dial_refused`, `settings_changed`, …).
    pub async fn record(
        &self,
        now: DateTime<Utc>,
        actor: Option<UserId>,
        action: &str,
        subject: Option<String>,
        detail: String,
    ) {
        let millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let random: [u8; 10] = *uuid::Uuid::new_v4()
            .as_bytes()
            .first_chunk()
            .unwrap_or(&[0; 10]);
        let entry = AuditEntry {
            id: uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid(),
            at: now,
            actor,
            action: action.to_owned(),
            subject,
            detail,
        };
        if let Err(error) = self.store.record_audit(&entry).await {
            tracing::error!(%error, action, "could not write an audit entry");
        }
    }

    pub async fn list(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.store.list_audit(&filter).await
    }
}
