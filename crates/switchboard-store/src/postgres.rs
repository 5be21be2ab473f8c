//! The PostgreSQL backend, for centers that outgrow one machine.

use crate::StoreResult;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_chat.sql")),
    (3, include_str!("../migrations/postgres/0003_voice.sql")),
    (4, include_str!("../migrations/postgres/0004_hardening.sql")),
    (5, include_str!("../migrations/postgres/0005_security.sql")),
    (6, include_str!("../migrations/postgres/0006_dialing.sql")),
    (
        7,
        include_str!("../migrations/postgres/0007_caller_flags.sql"),
    ),
    (8, include_str!("../migrations/postgres/0008_wrap_up.sql")),
    (
        10,
        include_str!("../migrations/postgres/0010_recordings.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_dialer_whisper.sql"),
    ),
    (
        12,
        include_str!("../migrations/postgres/0012_dashboards.sql"),
    ),
    (
        14,
        include_str!("../migrations/postgres/0014_monitoring.sql"),
    ),
    (
        15,
        include_str!("../migrations/postgres/0015_member_lookups.sql"),
    ),
    (
        16,
        include_str!("../migrations/postgres/0016_emergency.sql"),
    ),
    (
        17,
        include_str!("../migrations/postgres/0017_emergency_log.sql"),
    ),
    (
        18,
        include_str!("../migrations/postgres/0018_call_tickets.sql"),
    ),
    (19, include_str!("../migrations/postgres/0019_zendesk.sql")),
    (
        20,
        include_str!("../migrations/postgres/0020_identity_phone.sql"),
    ),
    (
        21,
        include_str!("../migrations/postgres/0021_after_hours.sql"),
    ),
    (
        22,
        include_str!("../migrations/postgres/0022_callbacks.sql"),
    ),
    (23, include_str!("../migrations/postgres/0023_sms.sql")),
    (
        24,
        include_str!("../migrations/postgres/0024_voicemail.sql"),
    ),
    (25, include_str!("../migrations/postgres/0025_offers.sql")),
];

/// A PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
    /// Seals and opens the secrets the server reads back.
    secrets: crate::SecretKeys,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates the database.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = Self {
            pool,
            secrets: crate::SecretKeys::none(),
        };
        store.migrate(MIGRATIONS).await?;
        Ok(store)
    }

    /// Seals secrets with `keys` from now on (values already stored are read with them too).
    pub fn with_secret_keys(mut self, keys: crate::SecretKeys) -> Self {
        self.secrets = keys;
        self
    }

    fn secrets(&self) -> &crate::SecretKeys {
        &self.secrets
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

// Every area of the store, each in a module of its own (see `sql.rs`).
mod store {
    crate::sql::backend_sql!(
        super::PostgresStore,
        backend = "postgres",
        // Two servers starting at once must not both apply the same migration.
        migration_lock = "SELECT pg_advisory_xact_lock(72010001)"
    );
}
mod directory {
    crate::directory::directory_sql!(
        super::PostgresStore,
        sqlx::postgres::PgRow,
        // Queue-tree checks read the whole tree; this keeps two concurrent changes from both
        // passing the check against the same old tree.
        tree_lock = "LOCK TABLE queues IN SHARE ROW EXCLUSIVE MODE"
    );
}
mod contacts {
    crate::contacts::contacts_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod chat {
    crate::chat::chat_sql!(
        super::PostgresStore,
        sqlx::postgres::PgRow,
        row_lock = "FOR UPDATE"
    );
}
mod voice {
    crate::voice::voice_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod jobs {
    crate::jobs::jobs_sql!(
        super::PostgresStore,
        sqlx::postgres::PgRow,
        // Several servers may run job workers against one database.
        skip_locked = "FOR UPDATE SKIP LOCKED"
    );
}
mod offers {
    crate::offers::offers_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}

mod after_hours {
    crate::after_hours::after_hours_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod policy {
    crate::policy::policy_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod audit {
    crate::audit::audit_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod recordings {
    crate::recordings::recordings_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod voicemails {
    crate::voicemails::voicemails_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod dashboards {
    crate::dashboards::dashboards_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod emergency {
    crate::emergency::emergency_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod emergency_log {
    crate::emergency_log::emergency_log_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}
mod sms {
    crate::sms::sms_sql!(super::PostgresStore, sqlx::postgres::PgRow);
}

mod callbacks {
    crate::callbacks::callbacks_sql!(
        super::PostgresStore,
        sqlx::postgres::PgRow,
        skip_locked = "FOR UPDATE SKIP LOCKED"
    );
}
