//! Contacts: every chat and call that asks for an agent, with its routing state (queued,
//! assigned, ended). `ContactStore` says what is kept; `contacts_sql!` is its SQL for both
//! backends. A chat's contact is stored with its session by `ChatStore::insert_chat`, which
//! uses this file's `insert_contact` inside its own transaction.

use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::{Contact, ContactId, WrapUp};

/// Contacts and their routing state. Each method is one transaction.
#[async_trait]
pub trait ContactStore: Send + Sync {
    async fn insert_contact(&self, contact: &Contact) -> StoreResult<()>;
    /// Saves several contacts' new states at once (an assignment round, a release).
    async fn update_contacts(&self, contacts: &[Contact]) -> StoreResult<()>;
    async fn get_contact(&self, id: ContactId) -> StoreResult<Contact>;
    /// Queued and assigned contacts, oldest first.
    async fn open_contacts(&self) -> StoreResult<Vec<Contact>>;
    /// The most recent contacts, newest first.
    async fn recent_contacts(&self, limit: u32) -> StoreResult<Vec<Contact>>;

    /// The center's dispositions for wrap-up, in order.
    async fn dispositions(&self) -> StoreResult<Vec<String>>;
    /// Replaces the center's dispositions (wrap-ups already stored keep theirs).
    async fn set_dispositions(&self, dispositions: &[String]) -> StoreResult<()>;
    /// Stores a contact's wrap-up, replacing an earlier one.
    async fn put_wrap_up(&self, wrap_up: &WrapUp) -> StoreResult<()>;
    async fn wrap_up(&self, contact: ContactId) -> StoreResult<Option<WrapUp>>;
}

/// Implements `ContactStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! contacts_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::contacts::ContactStore;
        use crate::sql::{not_found_unless_one, opt_millis};
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::{Channel, Contact, ContactId, ContactStatus, EndedBy, Language, QueueId, UserId, WrapUp};

        const CONTACT_COLUMNS: &str = "id, channel, queue_id, issue, priority, language, status, agent_id, customer, \
             created_at, assigned_at, ended_at, end_reason, transfers, ended_by_user_id, ended_by_name";

        fn contact_from_row(row: &$row) -> StoreResult<Contact> {
            let queue: Option<String> = row.try_get("queue_id")?;
            let agent: Option<String> = row.try_get("agent_id")?;
            let language: Option<String> = row.try_get("language")?;
            let ended_by_user: Option<String> = row.try_get("ended_by_user_id")?;
            let ended_by_name: Option<String> = row.try_get("ended_by_name")?;
            let ended_by = match (ended_by_user, ended_by_name) {
                (Some(user), Some(name)) => Some(EndedBy { user: codec::id(&user, UserId::parse)?, name }),
                (None, None) => None,
                _ => return Err(codec::corrupt("a contact's ender has a user id or a name, not both")),
            };
            Ok(Contact {
                id: codec::id(&row.try_get::<String, _>("id")?, ContactId::parse)?,
                channel: Channel::parse(&row.try_get::<String, _>("channel")?).map_err(codec::corrupt)?,
                queue: queue.as_deref().map(|q| codec::id(q, QueueId::parse)).transpose()?,
                issue: row.try_get("issue")?,
                priority: row.try_get("priority")?,
                language: language.as_deref().map(Language::parse).transpose().map_err(codec::corrupt)?,
                status: ContactStatus::parse(&row.try_get::<String, _>("status")?).map_err(codec::corrupt)?,
                agent: agent.as_deref().map(|a| codec::id(a, UserId::parse)).transpose()?,
                customer: row.try_get("customer")?,
                created_at: codec::time(row.try_get("created_at")?)?,
                assigned_at: codec::opt_time(row.try_get("assigned_at")?)?,
                ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                end_reason: row.try_get("end_reason")?,
                transfers: u32::try_from(row.try_get::<i32, _>("transfers")?).map_err(codec::corrupt)?,
                ended_by,
            })
        }

        /// Inserts a contact with any executor (the pool, or a transaction shared with more writes).
        pub(super) async fn insert_contact<'e, E>(executor: E, c: &Contact) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(&format!("INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"))
                .bind(c.id.to_string())
                .bind(c.channel.as_str())
                .bind(c.queue.map(|q| q.to_string()))
                .bind(&c.issue)
                .bind(c.priority)
                .bind(c.language.as_ref().map(Language::as_str))
                .bind(c.status.as_str())
                .bind(c.agent.map(|a| a.to_string()))
                .bind(&c.customer)
                .bind(millis(c.created_at))
                .bind(opt_millis(c.assigned_at))
                .bind(opt_millis(c.ended_at))
                .bind(&c.end_reason)
                .bind(c.transfers as i32)
                .bind(c.ended_by.as_ref().map(|by| by.user.to_string()))
                .bind(c.ended_by.as_ref().map(|by| by.name.clone()))
                .execute(executor).await
                .map_err(|e| StoreError::from(e).conflict_as("the contact's queue or agent does not exist"))?;
            Ok(())
        }

        #[async_trait]
        impl ContactStore for $store {
            async fn insert_contact(&self, c: &Contact) -> StoreResult<()> {
                insert_contact(self.writer(), c).await
            }

            async fn update_contacts(&self, contacts: &[Contact]) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                for c in contacts {
                    let done = sqlx::query("UPDATE contacts SET status = $2, agent_id = $3, assigned_at = $4, ended_at = $5, end_reason = $6, \
                         queue_id = $7, issue = $8, priority = $9, transfers = $10, ended_by_user_id = $11, ended_by_name = $12 WHERE id = $1")
                        .bind(c.id.to_string())
                        .bind(c.status.as_str())
                        .bind(c.agent.map(|a| a.to_string()))
                        .bind(opt_millis(c.assigned_at))
                        .bind(opt_millis(c.ended_at))
                        .bind(&c.end_reason)
                        .bind(c.queue.map(|q| q.to_string()))
                        .bind(&c.issue)
                        .bind(c.priority)
                        .bind(c.transfers as i32)
                        .bind(c.ended_by.as_ref().map(|by| by.user.to_string()))
                        .bind(c.ended_by.as_ref().map(|by| by.name.clone()))
                        .execute(&mut *tx).await?;
                    not_found_unless_one(done.rows_affected(), "contact")?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_contact(&self, id: ContactId) -> StoreResult<Contact> {
                let row = sqlx::query(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                contact_from_row(&row.ok_or(StoreError::NotFound("contact"))?)
            }

            async fn open_contacts(&self) -> StoreResult<Vec<Contact>> {
                let rows = sqlx::query(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE status IN ('queued', 'assigned') ORDER BY created_at, id"))
                    .fetch_all(self.reader()).await?;
                rows.iter().map(contact_from_row).collect()
            }

            async fn recent_contacts(&self, limit: u32) -> StoreResult<Vec<Contact>> {
                let rows = sqlx::query(&format!("SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY created_at DESC, id LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(contact_from_row).collect()
            }

            async fn dispositions(&self) -> StoreResult<Vec<String>> {
                let rows = sqlx::query("SELECT label FROM dispositions ORDER BY position")
                    .fetch_all(self.reader()).await?;
                rows.iter().map(|r| Ok(r.try_get("label")?)).collect()
            }

            async fn set_dispositions(&self, dispositions: &[String]) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("DELETE FROM dispositions").execute(&mut *tx).await?;
                for (position, label) in dispositions.iter().enumerate() {
                    sqlx::query("INSERT INTO dispositions (position, label) VALUES ($1, $2)")
                        .bind(i64::try_from(position).map_err(codec::corrupt)?)
                        .bind(label)
                        .execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn put_wrap_up(&self, w: &WrapUp) -> StoreResult<()> {
                sqlx::query("INSERT INTO contact_wrap_ups (contact_id, agent_id, disposition, note, at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (contact_id) DO UPDATE SET agent_id = excluded.agent_id, disposition = excluded.disposition, \
                     note = excluded.note, at = excluded.at")
                    .bind(w.contact.to_string())
                    .bind(w.agent.to_string())
                    .bind(&w.disposition)
                    .bind(&w.note)
                    .bind(millis(w.at))
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("the contact or the agent does not exist"))?;
                Ok(())
            }

            async fn wrap_up(&self, contact: ContactId) -> StoreResult<Option<WrapUp>> {
                let row = sqlx::query("SELECT contact_id, agent_id, disposition, note, at FROM contact_wrap_ups WHERE contact_id = $1")
                    .bind(contact.to_string()).fetch_optional(self.reader()).await?;
                row.map(|row| {
                    Ok(WrapUp {
                        contact: codec::id(&row.try_get::<String, _>("contact_id")?, ContactId::parse)?,
                        agent: codec::id(&row.try_get::<String, _>("agent_id")?, UserId::parse)?,
                        disposition: row.try_get("disposition")?,
                        note: row.try_get("note")?,
                        at: codec::time(row.try_get("at")?)?,
                    })
                })
                .transpose()
            }
        }
    };
}

pub(crate) use contacts_sql;
