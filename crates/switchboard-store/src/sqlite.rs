//! The SQLite backend: the embedded default. One file, WAL mode, one writer connection (so
//! write transactions queue in-process instead of failing with SQLITE_BUSY) and a few readers.

use crate::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_chat.sql")),
    (3, include_str!("../migrations/sqlite/0003_voice.sql")),
    (4, include_str!("../migrations/sqlite/0004_hardening.sql")),
    (5, include_str!("../migrations/sqlite/0005_security.sql")),
    (6, include_str!("../migrations/sqlite/0006_dialing.sql")),
    (
        7,
        include_str!("../migrations/sqlite/0007_caller_flags.sql"),
    ),
    (8, include_str!("../migrations/sqlite/0008_wrap_up.sql")),
    (10, include_str!("../migrations/sqlite/0010_recordings.sql")),
    (
        11,
        include_str!("../migrations/sqlite/0011_dialer_whisper.sql"),
    ),
    (12, include_str!("../migrations/sqlite/0012_dashboards.sql")),
    (14, include_str!("../migrations/sqlite/0014_monitoring.sql")),
    (
        15,
        include_str!("../migrations/sqlite/0015_member_lookups.sql"),
    ),
    (16, include_str!("../migrations/sqlite/0016_emergency.sql")),
    (
        17,
        include_str!("../migrations/sqlite/0017_emergency_log.sql"),
    ),
    (
        18,
        include_str!("../migrations/sqlite/0018_call_tickets.sql"),
    ),
    (19, include_str!("../migrations/sqlite/0019_zendesk.sql")),
    (
        20,
        include_str!("../migrations/sqlite/0020_identity_phone.sql"),
    ),
    (
        21,
        include_str!("../migrations/sqlite/0021_after_hours.sql"),
    ),
    (22, include_str!("../migrations/sqlite/0022_callbacks.sql")),
    (23, include_str!("../migrations/sqlite/0023_sms.sql")),
    (24, include_str!("../migrations/sqlite/0024_voicemail.sql")),
    (25, include_str!("../migrations/sqlite/0025_offers.sql")),
];

/// A SQLite database file (or an in-memory database, for throwaway use).
pub struct SqliteStore {
    writer: SqlitePool,
    /// Readers; the same pool as `writer` for an in-memory database, which one connection owns.
    reader: SqlitePool,
    /// Seals and opens the secrets the server reads back.
    secrets: crate::SecretKeys,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://path` or `sqlite::memory:` URL and
    /// migrates it.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?
        };
        let store = Self {
            writer,
            reader,
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

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

// Every area of the store, each in a module of its own (see `sql.rs`).
mod store {
    crate::sql::backend_sql!(super::SqliteStore, backend = "sqlite", migration_lock = "");
}
mod directory {
    crate::directory::directory_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow, tree_lock = "");
}
mod contacts {
    crate::contacts::contacts_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod chat {
    crate::chat::chat_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow, row_lock = "");
}
mod voice {
    crate::voice::voice_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod jobs {
    crate::jobs::jobs_sql!(
        super::SqliteStore,
        sqlx::sqlite::SqliteRow,
        skip_locked = ""
    );
}
mod offers {
    crate::offers::offers_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}

mod after_hours {
    crate::after_hours::after_hours_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod policy {
    crate::policy::policy_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod audit {
    crate::audit::audit_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod recordings {
    crate::recordings::recordings_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod voicemails {
    crate::voicemails::voicemails_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod dashboards {
    crate::dashboards::dashboards_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod emergency {
    crate::emergency::emergency_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod emergency_log {
    crate::emergency_log::emergency_log_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}
mod sms {
    crate::sms::sms_sql!(super::SqliteStore, sqlx::sqlite::SqliteRow);
}

mod callbacks {
    crate::callbacks::callbacks_sql!(
        super::SqliteStore,
        sqlx::sqlite::SqliteRow,
        skip_locked = ""
    );
}
