//! The SQL both backends share, and how it is instantiated. SQLite and PostgreSQL agree on `$1`
//! placeholders, `ON CONFLICT` upserts and `RETURNING`, so one text serves both. Each area of
//! the store (`directory.rs`, `contacts.rs`, `chat.rs`, `voice.rs`, `jobs.rs`) has its trait
//! and one macro holding its SQL; a backend instantiates every area's macro in a child module
//! named after the area, for its concrete pool and row types (sqlx's generic bounds over
//! `Database` would make the same code much harder to read), and `backend_sql!` here for what
//! is the store's as a whole: its name, the health check and migrations.
//!
//! Lists are sorted in Rust, not by `ORDER BY` on text: PostgreSQL sorts text by the locale's
//! collation and SQLite by bytes, and both backends must answer alike.
//!
//! What differs between the dialects is passed in as statements, empty where the backend
//! already has a single writer: `tree_lock` serialises queue-tree changes (directory),
//! `migration_lock` serialises schema migrations between processes, `row_lock` locks a selected
//! row for the transaction (chat), `skip_locked` lets job workers pass over rows another worker
//! holds (jobs).

use crate::codec::millis;
use crate::{StoreError, StoreResult};
use chrono::{DateTime, Utc};

pub(crate) fn not_found_unless_one(affected: u64, what: &'static str) -> StoreResult<()> {
    if affected == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

pub(crate) fn opt_millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(millis)
}

/// Defines `opt_id` for one backend's row type: an optional id column, checked.
macro_rules! opt_id {
    ($row:ty) => {
        fn opt_id<T>(
            row: &$row,
            column: &str,
            parse: fn(&str) -> Result<T, switchboard_core::IdError>,
        ) -> StoreResult<Option<T>> {
            row.try_get::<Option<String>, _>(column)?
                .as_deref()
                .map(|text| codec::id(text, parse))
                .transpose()
        }
    };
}

/// Implements `Store` (the backend's name and health check) and the migrations for a backend
/// type with `writer()` and `reader()` pool accessors. The backend's `directory` module
/// provides `ensure_builtin_roles`, run after every migration.
macro_rules! backend_sql {
    ($store:ty, backend = $backend:literal, migration_lock = $migration_lock:literal) => {
        use crate::codec::millis;
        use crate::{Store, StoreResult};
        use async_trait::async_trait;
        use chrono::Utc;

        impl $store {
            /// Applies the migrations not yet applied, each in its own transaction, then brings the
            /// built-in roles up to date.
            pub(crate) async fn migrate(&self, migrations: &[(i64, &str)]) -> StoreResult<()> {
                sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
                    .execute(self.writer()).await?;
                for (version, script) in migrations {
                    let mut tx = self.writer().begin().await?;
                    if !$migration_lock.is_empty() {
                        sqlx::query($migration_lock).execute(&mut *tx).await?;
                    }
                    let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                        .bind(version).fetch_optional(&mut *tx).await?;
                    if applied.is_some() {
                        continue;
                    }
                    tracing::info!(backend = $backend, version, "applying migration");
                    sqlx::raw_sql(script).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                        .bind(version).bind(millis(Utc::now())).execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                self.ensure_builtin_roles().await
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn reseal_secrets(&self) -> StoreResult<u64> {
                use sqlx::Row;
                let keys = self.secrets();
                let mut tx = self.writer().begin().await?;
                let mut count = 0;
                // (table, key column, secret column): every secret the server reads back.
                for (table, id, column) in [
                    ("users", "id", "totp_secret"),
                    ("trunks", "id", "secret"),
                    ("integration_settings", "id", "identity_secret"),
                    ("integration_settings", "id", "crm_webhook_secret"),
                    ("integration_settings", "id", "zendesk_token"),
                    ("sms_settings", "id", "sms_auth_token"),
                ] {
                    let rows = sqlx::query(&format!("SELECT CAST({id} AS TEXT) AS id, {column} AS value FROM {table} WHERE {column} IS NOT NULL"))
                        .fetch_all(&mut *tx).await?;
                    for row in rows {
                        let key: String = row.try_get("id")?;
                        let stored: String = row.try_get("value")?;
                        if !keys.needs_reseal(&stored) {
                            continue;
                        }
                        let sealed = keys.seal(column, &keys.open(column, &stored)?)?;
                        sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE CAST({id} AS TEXT) = $2"))
                            .bind(sealed).bind(key).execute(&mut *tx).await?;
                        count += 1;
                    }
                }
                tx.commit().await?;
                Ok(count)
            }

            async fn probe_write(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
                sqlx::query("INSERT INTO health_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
                    .bind(now.timestamp_millis())
                    .execute(self.writer()).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use {backend_sql, opt_id};
