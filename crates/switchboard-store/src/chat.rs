//! Web chat: visitors and the identities they are bound to, chat sessions, their messages
//! (appended in batches: group commit), attachments, the built-in CRM's tickets, notification
//! tones and agents' notification settings. `ChatStore` says what is kept; `chat_sql!` is its
//! SQL for both backends.

use crate::records::{
    Attachment, ChatSession, IdentifyOutcome, Identity, NewMessage, NotificationSettings, Ticket,
    Tone, UploadBytes, Visitor,
};
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::chat::{ChatMessage, ReservedProperties};
use switchboard_core::{
    AttachmentId, CallId, Contact, ContactId, IdentityId, TicketId, UserId, VisitorId,
};

/// Chats and what belongs to them. Each method is one transaction.
#[async_trait]
pub trait ChatStore: Send + Sync {
    async fn create_visitor(&self, visitor: &Visitor) -> StoreResult<()>;
    async fn get_visitor(&self, id: VisitorId) -> StoreResult<Visitor>;
    async fn identity(&self, id: IdentityId) -> StoreResult<Identity>;
    /// Binds the visitor to the identity with this external id (creating or updating it) and
    /// moves the visitor's anonymous tickets and chats to it, in one transaction. Refused with a
    /// conflict when the visitor already belongs to another identity: one identity never
    /// absorbs another's history.
    async fn identify_visitor(
        &self,
        visitor: VisitorId,
        identity: &Identity,
    ) -> StoreResult<IdentifyOutcome>;

    /// Stores a new chat: its contact, its session and its ticket, in one transaction.
    async fn insert_chat(
        &self,
        contact: &Contact,
        chat: &ChatSession,
        ticket: &Ticket,
    ) -> StoreResult<()>;
    async fn get_chat(&self, contact: ContactId) -> StoreResult<ChatSession>;
    /// The visitor's chats that are still open, oldest first.
    async fn open_chats_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<ContactId>>;
    async fn set_chat_properties(
        &self,
        contact: ContactId,
        properties: &ReservedProperties,
    ) -> StoreResult<()>;
    async fn mark_chat_accepted(&self, contact: ContactId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Forgets that the chat was accepted: it moved to another agent (or back to a queue), and
    /// whoever has it next accepts it afresh.
    async fn clear_chat_accepted(&self, contact: ContactId) -> StoreResult<()>;
    /// Appends a message with the next sequence number. A message with a client id that this
    /// sender already used in this chat is not stored again: the stored one is returned with
    /// `false`, so a resend is acknowledged exactly like the first send.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<(ChatMessage, bool)>;
    /// Appends several messages in one transaction (group commit), with `append_message`'s
    /// rules for each; all are stored or none is.
    async fn append_messages(
        &self,
        messages: &[NewMessage],
    ) -> StoreResult<Vec<(ChatMessage, bool)>>;
    /// The chat's messages after `after_seq`, in order, at most `limit`.
    async fn messages(
        &self,
        contact: ContactId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>>;

    async fn insert_attachment(&self, attachment: &Attachment) -> StoreResult<()>;
    async fn get_attachment(&self, id: AttachmentId) -> StoreResult<Attachment>;
    async fn attachments_of(&self, contact: ContactId) -> StoreResult<Vec<Attachment>>;
    /// Bytes of the files the consumer uploaded: to this chat, and to every chat of its
    /// visitor (for upload quotas).
    async fn consumer_upload_bytes(&self, contact: ContactId) -> StoreResult<UploadBytes>;

    async fn get_ticket(&self, id: TicketId) -> StoreResult<Ticket>;
    async fn list_tickets(&self, limit: u32) -> StoreResult<Vec<Ticket>>;
    /// Every ticket a visitor's sessions opened, oldest first.
    async fn tickets_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<Ticket>>;
    async fn update_ticket(&self, ticket: &Ticket) -> StoreResult<()>;
    /// Stores a ticket of its own (a call's: a chat's comes with `insert_chat`); a call has
    /// one ticket at most, so a second for the same call is `Conflict`.
    async fn insert_ticket(&self, ticket: &Ticket) -> StoreResult<()>;
    /// The ticket of a call, if it has one.
    async fn ticket_of_call(&self, call: CallId) -> StoreResult<Option<Ticket>>;
    /// The identity whose phone number (its digits) this is, the oldest if several.
    async fn identity_by_phone(&self, phone: &str) -> StoreResult<Option<Identity>>;
    /// Every ticket of an identity, oldest first: its visitors' chats and its calls.
    async fn tickets_of_identity(&self, identity: IdentityId) -> StoreResult<Vec<Ticket>>;

    async fn create_tone(&self, tone: &Tone) -> StoreResult<()>;
    async fn list_tones(&self) -> StoreResult<Vec<Tone>>;
    async fn delete_tone(&self, id: &str) -> StoreResult<()>;
    async fn notification_settings(
        &self,
        user: UserId,
    ) -> StoreResult<Option<NotificationSettings>>;
    async fn put_notification_settings(&self, settings: &NotificationSettings) -> StoreResult<()>;
}

/// Implements `ChatStore` for a backend type with `writer()` and `reader()` pool accessors, in
/// a module next to the backend's `contacts` module (a new chat's contact is inserted with
/// `contacts::insert_contact` in the chat's transaction). `row_lock` locks a selected row for
/// the transaction (empty for SQLite's single writer).
macro_rules! chat_sql {
    ($store:ty, $row:ty, row_lock = $row_lock:literal) => {
        use super::contacts::insert_contact;
        use crate::chat::ChatStore;
        use crate::codec::{self, millis};
        use crate::records::{
            Attachment, ChatSession, IdentifyOutcome, Identity, NewMessage, NotificationSettings, Ticket, Tone, UploadBytes, Visitor,
        };
        use crate::sql::{not_found_unless_one, opt_millis};
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use std::collections::HashMap;
        use switchboard_core::chat::{AttachmentKind, ChatMessage, ClientMessageId, ReservedProperties, Sender};
        use switchboard_core::{AttachmentId, CallId, Contact, ContactId, IdentityId, MessageId, TicketId, UserId, VisitorId};

        crate::sql::opt_id!($row);

        const CHAT_COLUMNS: &str = "contact_id, visitor_id, identity_id, ticket_id, source, verified_customer, bad_actor, \
             repeat_customer, accepted_at";
        const MESSAGE_COLUMNS: &str = "id, contact_id, seq, sender, client_id, body, attachment_id, sent_at";
        const TICKET_COLUMNS: &str = "id, contact_id, visitor_id, identity_id, name, status, transcript, external_id, created_at, updated_at, call_id, phone";

        fn chat_from_row(row: &$row) -> StoreResult<ChatSession> {
            Ok(ChatSession {
                contact: codec::id(&row.try_get::<String, _>("contact_id")?, ContactId::parse)?,
                visitor: codec::id(&row.try_get::<String, _>("visitor_id")?, VisitorId::parse)?,
                identity: opt_id(row, "identity_id", IdentityId::parse)?,
                ticket: codec::id(&row.try_get::<String, _>("ticket_id")?, TicketId::parse)?,
                source: row.try_get("source")?,
                properties: ReservedProperties {
                    verified_customer: row.try_get("verified_customer")?,
                    bad_actor: row.try_get("bad_actor")?,
                    repeat_customer: row.try_get("repeat_customer")?,
                },
                accepted_at: codec::opt_time(row.try_get("accepted_at")?)?,
            })
        }

        fn message_from_row(row: &$row) -> StoreResult<ChatMessage> {
            let client_id: Option<String> = row.try_get("client_id")?;
            Ok(ChatMessage {
                id: codec::id(&row.try_get::<String, _>("id")?, MessageId::parse)?,
                contact: codec::id(&row.try_get::<String, _>("contact_id")?, ContactId::parse)?,
                seq: row.try_get("seq")?,
                sender: Sender::parse(&row.try_get::<String, _>("sender")?).map_err(codec::corrupt)?,
                client_id: client_id.as_deref().map(ClientMessageId::parse).transpose().map_err(codec::corrupt)?,
                text: row.try_get("body")?,
                attachment: opt_id(row, "attachment_id", AttachmentId::parse)?,
                sent_at: codec::time(row.try_get("sent_at")?)?,
            })
        }

        fn attachment_from_row(row: &$row) -> StoreResult<Attachment> {
            let kind: String = row.try_get("kind")?;
            Ok(Attachment {
                id: codec::id(&row.try_get::<String, _>("id")?, AttachmentId::parse)?,
                contact: codec::id(&row.try_get::<String, _>("contact_id")?, ContactId::parse)?,
                kind: AttachmentKind::from_mime(&kind).ok_or_else(|| StoreError::Corrupt(format!("attachment kind {kind}")))?,
                size: row.try_get("size")?,
                name: row.try_get("name")?,
                uploaded_by: Sender::parse(&row.try_get::<String, _>("uploaded_by")?).map_err(codec::corrupt)?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        fn ticket_from_row(row: &$row) -> StoreResult<Ticket> {
            Ok(Ticket {
                id: codec::id(&row.try_get::<String, _>("id")?, TicketId::parse)?,
                contact: opt_id(row, "contact_id", ContactId::parse)?,
                visitor: opt_id(row, "visitor_id", VisitorId::parse)?,
                identity: opt_id(row, "identity_id", IdentityId::parse)?,
                name: row.try_get("name")?,
                status: row.try_get("status")?,
                transcript: row.try_get("transcript")?,
                external_id: row.try_get("external_id")?,
                created_at: codec::time(row.try_get("created_at")?)?,
                updated_at: codec::time(row.try_get("updated_at")?)?,
                call: opt_id(row, "call_id", CallId::parse)?,
                phone: row.try_get("phone")?,
            })
        }

        /// Inserts a ticket inside a transaction or on the pool.
        pub(super) async fn insert_ticket<'e, E>(executor: E, ticket: &Ticket) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(&format!("INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
                .bind(ticket.id.to_string())
                .bind(ticket.contact.map(|c| c.to_string()))
                .bind(ticket.visitor.map(|v| v.to_string()))
                .bind(ticket.identity.map(|i| i.to_string()))
                .bind(&ticket.name)
                .bind(&ticket.status)
                .bind(&ticket.transcript)
                .bind(&ticket.external_id)
                .bind(millis(ticket.created_at))
                .bind(millis(ticket.updated_at))
                .bind(ticket.call.map(|c| c.to_string()))
                .bind(&ticket.phone)
                .execute(executor).await?;
            Ok(())
        }

        fn identity_from_row(row: &$row) -> StoreResult<Identity> {
            Ok(Identity {
                id: codec::id(&row.try_get::<String, _>("id")?, IdentityId::parse)?,
                external_id: row.try_get("external_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                phone: row.try_get("phone")?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        /// Each chat's last sequence number, in one statement. A scalar MAX per chat lets both
        /// databases read it from the (contact_id, seq) index end; a grouped MAX over several
        /// chats made SQLite walk every message of every chat.
        async fn last_seqs(
            tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            chats: &[String],
        ) -> StoreResult<HashMap<String, i64>> {
            let mut query = sqlx::QueryBuilder::<<$row as sqlx::Row>::Database>::new("");
            for (n, chat) in chats.iter().enumerate() {
                if n > 0 {
                    query.push(" UNION ALL ");
                }
                query.push("SELECT ").push_bind(chat.clone());
                query.push(" AS contact_id, (SELECT COALESCE(MAX(seq), 0) FROM chat_messages WHERE contact_id = ").push_bind(chat.clone());
                query.push(") AS last");
            }
            let mut last = HashMap::new();
            for row in query.build().fetch_all(&mut **tx).await? {
                last.insert(row.try_get("contact_id")?, row.try_get("last")?);
            }
            Ok(last)
        }

        /// The common case in two statements: the chats' last sequence numbers, then one
        /// multi-row insert that skips rows whose client id was used already. If any row was a
        /// resend, nothing is kept and `None` says to take the careful path (sequence numbers
        /// must not skip the resend's place).
        async fn append_batch_fast(
            pool: &sqlx::Pool<<$row as sqlx::Row>::Database>,
            messages: &[NewMessage],
        ) -> StoreResult<Option<Vec<(ChatMessage, bool)>>> {
            type Db = <$row as sqlx::Row>::Database;
            let mut keys = std::collections::HashSet::new();
            if messages.iter().any(|m| m.client_id.as_ref().is_some_and(|c| !keys.insert((m.contact, m.sender.key(), c.as_str().to_owned())))) {
                return Ok(None); // a resend inside the batch itself
            }
            let mut tx = pool.begin().await?;
            let mut chats: Vec<String> = messages.iter().map(|m| m.contact.to_string()).collect();
            chats.sort();
            chats.dedup();
            let mut last = last_seqs(&mut tx, &chats).await?;
            let stored: Vec<ChatMessage> = messages
                .iter()
                .map(|m| {
                    let next = last.entry(m.contact.to_string()).or_insert(0);
                    *next += 1;
                    ChatMessage {
                        id: m.id,
                        contact: m.contact,
                        seq: *next,
                        sender: m.sender,
                        client_id: m.client_id.clone(),
                        text: m.text.clone(),
                        attachment: m.attachment,
                        sent_at: m.sent_at,
                    }
                })
                .collect();
            let mut query = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO chat_messages ({MESSAGE_COLUMNS}) "));
            query.push_values(&stored, |mut row, m| {
                row.push_bind(m.id.to_string())
                    .push_bind(m.contact.to_string())
                    .push_bind(m.seq)
                    .push_bind(m.sender.key())
                    .push_bind(m.client_id.as_ref().map(|c| c.as_str().to_owned()))
                    .push_bind(m.text.clone())
                    .push_bind(m.attachment.map(|a| a.to_string()))
                    .push_bind(millis(m.sent_at));
            });
            query.push(" ON CONFLICT (contact_id, sender, client_id) DO NOTHING RETURNING id");
            let inserted = query.build().fetch_all(&mut *tx).await.map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(text) if text.contains("refers to") => StoreError::NotFound("chat"),
                other => other,
            })?;
            if inserted.len() != stored.len() {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(stored.into_iter().map(|m| (m, true)).collect()))
        }

        /// One transaction that appends every message in three statements whatever their number:
        /// the chats' last sequence numbers, the resends among them (a client id this sender
        /// already used in the chat), and one multi-row insert of the rest.
        async fn append_batch(
            pool: &sqlx::Pool<<$row as sqlx::Row>::Database>,
            messages: &[NewMessage],
        ) -> StoreResult<Vec<(ChatMessage, bool)>> {
            type Db = <$row as sqlx::Row>::Database;
            let mut tx = pool.begin().await?;
            let mut chats: Vec<String> = messages.iter().map(|m| m.contact.to_string()).collect();
            chats.sort();
            chats.dedup();

            let mut last = last_seqs(&mut tx, &chats).await?;

            let keyed: Vec<&NewMessage> = messages.iter().filter(|m| m.client_id.is_some()).collect();
            let mut existing: HashMap<(String, String, String), ChatMessage> = HashMap::new();
            if !keyed.is_empty() {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE "));
                for (n, message) in keyed.iter().enumerate() {
                    if n > 0 {
                        query.push(" OR ");
                    }
                    query.push("(contact_id = ").push_bind(message.contact.to_string());
                    query.push(" AND sender = ").push_bind(message.sender.key());
                    query.push(" AND client_id = ").push_bind(message.client_id.as_ref().map(|c| c.as_str().to_owned()));
                    query.push(")");
                }
                for row in query.build().fetch_all(&mut *tx).await? {
                    let found = message_from_row(&row)?;
                    let client = found.client_id.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default();
                    existing.insert((found.contact.to_string(), found.sender.key(), client), found);
                }
            }

            let mut results = Vec::with_capacity(messages.len());
            let mut fresh: Vec<ChatMessage> = Vec::new();
            for message in messages {
                let key = message.client_id.as_ref().map(|c| (message.contact.to_string(), message.sender.key(), c.as_str().to_owned()));
                if let Some(found) = key.as_ref().and_then(|k| existing.get(k)) {
                    results.push((found.clone(), false));
                    continue;
                }
                let next = last.entry(message.contact.to_string()).or_insert(0);
                *next += 1;
                let stored = ChatMessage {
                    id: message.id,
                    contact: message.contact,
                    seq: *next,
                    sender: message.sender,
                    client_id: message.client_id.clone(),
                    text: message.text.clone(),
                    attachment: message.attachment,
                    sent_at: message.sent_at,
                };
                // A resend of a message earlier in this same batch is that message.
                if let Some(key) = key {
                    existing.insert(key, stored.clone());
                }
                fresh.push(stored.clone());
                results.push((stored, true));
            }

            if !fresh.is_empty() {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO chat_messages ({MESSAGE_COLUMNS}) "));
                query.push_values(&fresh, |mut row, m| {
                    row.push_bind(m.id.to_string())
                        .push_bind(m.contact.to_string())
                        .push_bind(m.seq)
                        .push_bind(m.sender.key())
                        .push_bind(m.client_id.as_ref().map(|c| c.as_str().to_owned()))
                        .push_bind(m.text.clone())
                        .push_bind(m.attachment.map(|a| a.to_string()))
                        .push_bind(millis(m.sent_at));
                });
                query.build().execute(&mut *tx).await.map_err(|e| match StoreError::from(e) {
                    // A chat that does not exist (the foreign key); a racing writer's sequence
                    // number surfaces as a unique conflict, which the caller retries.
                    StoreError::Conflict(text) if text.contains("refers to") => StoreError::NotFound("chat"),
                    other => other,
                })?;
            }
            tx.commit().await?;
            Ok(results)
        }

        #[async_trait]
        impl ChatStore for $store {
            async fn create_visitor(&self, visitor: &Visitor) -> StoreResult<()> {
                sqlx::query("INSERT INTO visitors (id, token_hash, identity_id, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(visitor.id.to_string())
                    .bind(&visitor.token_hash)
                    .bind(visitor.identity.map(|i| i.to_string()))
                    .bind(millis(visitor.created_at))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn get_visitor(&self, id: VisitorId) -> StoreResult<Visitor> {
                let row = sqlx::query("SELECT id, token_hash, identity_id, created_at FROM visitors WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("visitor"))?;
                Ok(Visitor {
                    id: codec::id(&row.try_get::<String, _>("id")?, VisitorId::parse)?,
                    token_hash: row.try_get("token_hash")?,
                    identity: opt_id(&row, "identity_id", IdentityId::parse)?,
                    created_at: codec::time(row.try_get("created_at")?)?,
                })
            }

            async fn identity(&self, id: IdentityId) -> StoreResult<Identity> {
                let row = sqlx::query("SELECT id, external_id, email, name, phone, created_at FROM identities WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                identity_from_row(&row.ok_or(StoreError::NotFound("identity"))?)
            }

            async fn identify_visitor(&self, visitor: VisitorId, identity: &Identity) -> StoreResult<IdentifyOutcome> {
                let mut tx = self.writer().begin().await?;
                let row = sqlx::query(
                    "INSERT INTO identities (id, external_id, email, name, phone, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (external_id) DO UPDATE SET email = COALESCE(excluded.email, identities.email), \
                     name = COALESCE(excluded.name, identities.name), phone = COALESCE(excluded.phone, identities.phone) \
                     RETURNING id, external_id, email, name, phone, created_at",
                )
                .bind(identity.id.to_string())
                .bind(&identity.external_id)
                .bind(&identity.email)
                .bind(&identity.name)
                .bind(&identity.phone)
                .bind(millis(identity.created_at))
                .fetch_one(&mut *tx).await?;
                let stored = identity_from_row(&row)?;
                let current: Option<Option<String>> = sqlx::query_scalar(&format!("SELECT identity_id FROM visitors WHERE id = $1 {}", $row_lock))
                    .bind(visitor.to_string()).fetch_optional(&mut *tx).await?;
                match current {
                    None => return Err(StoreError::NotFound("visitor")),
                    Some(Some(bound)) if bound != stored.id.to_string() => {
                        return Err(StoreError::Conflict("this visitor already belongs to another identity".into()))
                    }
                    Some(_) => {}
                }
                let id = stored.id.to_string();
                sqlx::query("UPDATE visitors SET identity_id = $1 WHERE id = $2").bind(&id).bind(visitor.to_string()).execute(&mut *tx).await?;
                let merged_tickets = sqlx::query("UPDATE tickets SET identity_id = $1 WHERE visitor_id = $2 AND identity_id IS NULL")
                    .bind(&id).bind(visitor.to_string()).execute(&mut *tx).await?.rows_affected();
                let merged_chats = sqlx::query("UPDATE chat_sessions SET identity_id = $1 WHERE visitor_id = $2 AND identity_id IS NULL")
                    .bind(&id).bind(visitor.to_string()).execute(&mut *tx).await?.rows_affected();
                // Calls from the identity's number are theirs too (tickets keep the number as
                // its digits, as identities do).
                let merged_calls = match &stored.phone {
                    Some(phone) => sqlx::query("UPDATE tickets SET identity_id = $1 WHERE phone = $2 AND call_id IS NOT NULL AND identity_id IS NULL")
                        .bind(&id).bind(phone).execute(&mut *tx).await?.rows_affected(),
                    None => 0,
                };
                let merged_tickets = merged_tickets + merged_calls;
                tx.commit().await?;
                Ok(IdentifyOutcome { identity: stored, merged_tickets, merged_chats })
            }

            async fn insert_chat(&self, contact: &Contact, chat: &ChatSession, ticket: &Ticket) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                insert_contact(&mut *tx, contact).await?;
                insert_ticket(&mut *tx, ticket).await?;
                sqlx::query(&format!("INSERT INTO chat_sessions ({CHAT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                    .bind(chat.contact.to_string())
                    .bind(chat.visitor.to_string())
                    .bind(chat.identity.map(|i| i.to_string()))
                    .bind(chat.ticket.to_string())
                    .bind(&chat.source)
                    .bind(chat.properties.verified_customer)
                    .bind(chat.properties.bad_actor)
                    .bind(chat.properties.repeat_customer)
                    .bind(opt_millis(chat.accepted_at))
                    .execute(&mut *tx).await
                    .map_err(|e| StoreError::from(e).conflict_as("the chat's visitor does not exist"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_chat(&self, contact: ContactId) -> StoreResult<ChatSession> {
                let row = sqlx::query(&format!("SELECT {CHAT_COLUMNS} FROM chat_sessions WHERE contact_id = $1"))
                    .bind(contact.to_string()).fetch_optional(self.reader()).await?;
                chat_from_row(&row.ok_or(StoreError::NotFound("chat"))?)
            }

            async fn open_chats_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<ContactId>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT s.contact_id FROM chat_sessions s JOIN contacts c ON c.id = s.contact_id \
                     WHERE s.visitor_id = $1 AND c.status IN ('queued', 'assigned') ORDER BY c.created_at",
                )
                .bind(visitor.to_string()).fetch_all(self.reader()).await?;
                ids.iter().map(|id| codec::id(id, ContactId::parse)).collect()
            }

            async fn set_chat_properties(&self, contact: ContactId, properties: &ReservedProperties) -> StoreResult<()> {
                let done = sqlx::query("UPDATE chat_sessions SET verified_customer = $2, bad_actor = $3, repeat_customer = $4 WHERE contact_id = $1")
                    .bind(contact.to_string())
                    .bind(properties.verified_customer)
                    .bind(properties.bad_actor)
                    .bind(properties.repeat_customer)
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "chat")
            }

            async fn mark_chat_accepted(&self, contact: ContactId, at: DateTime<Utc>) -> StoreResult<()> {
                let done = sqlx::query("UPDATE chat_sessions SET accepted_at = $2 WHERE contact_id = $1")
                    .bind(contact.to_string()).bind(millis(at)).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "chat")
            }

            async fn clear_chat_accepted(&self, contact: ContactId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE chat_sessions SET accepted_at = NULL WHERE contact_id = $1")
                    .bind(contact.to_string()).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "chat")
            }

            async fn append_message(&self, message: &NewMessage) -> StoreResult<(ChatMessage, bool)> {
                let mut stored = self.append_messages(std::slice::from_ref(message)).await?;
                stored.pop().ok_or(StoreError::NotFound("chat"))
            }

            async fn append_messages(&self, messages: &[NewMessage]) -> StoreResult<Vec<(ChatMessage, bool)>> {
                // Sequence numbers come from MAX(seq) + 1 inside the insert; two servers racing on
                // one chat collide on UNIQUE (contact_id, seq) and the batch is simply tried again.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let outcome = match append_batch_fast(self.writer(), messages).await {
                        Ok(Some(stored)) => Ok(stored),
                        Ok(None) => append_batch(self.writer(), messages).await,
                        Err(error) => Err(error),
                    };
                    match outcome {
                        Err(StoreError::Conflict(_)) if attempt < 5 => continue,
                        other => return other,
                    }
                }
            }

            async fn messages(&self, contact: ContactId, after_seq: i64, limit: u32) -> StoreResult<Vec<ChatMessage>> {
                let rows = sqlx::query(&format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE contact_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
                    .bind(contact.to_string()).bind(after_seq).bind(i64::from(limit))
                    .fetch_all(self.reader()).await?;
                rows.iter().map(message_from_row).collect()
            }

            async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()> {
                sqlx::query("INSERT INTO attachments (id, contact_id, kind, size, name, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(a.id.to_string())
                    .bind(a.contact.to_string())
                    .bind(a.kind.mime())
                    .bind(a.size)
                    .bind(&a.name)
                    .bind(a.uploaded_by.key())
                    .bind(millis(a.created_at))
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("the chat does not exist"))?;
                Ok(())
            }

            async fn get_attachment(&self, id: AttachmentId) -> StoreResult<Attachment> {
                let row = sqlx::query("SELECT id, contact_id, kind, size, name, uploaded_by, created_at FROM attachments WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                attachment_from_row(&row.ok_or(StoreError::NotFound("attachment"))?)
            }

            async fn attachments_of(&self, contact: ContactId) -> StoreResult<Vec<Attachment>> {
                let rows = sqlx::query("SELECT id, contact_id, kind, size, name, uploaded_by, created_at FROM attachments WHERE contact_id = $1 ORDER BY created_at, id")
                    .bind(contact.to_string()).fetch_all(self.reader()).await?;
                rows.iter().map(attachment_from_row).collect()
            }

            async fn consumer_upload_bytes(&self, contact: ContactId) -> StoreResult<UploadBytes> {
                let row = sqlx::query(
                    "SELECT \
                       CAST((SELECT COALESCE(SUM(size), 0) FROM attachments WHERE contact_id = $1 AND uploaded_by = 'consumer') AS BIGINT) AS chat_bytes, \
                       CAST((SELECT COALESCE(SUM(a.size), 0) FROM attachments a JOIN chat_sessions s ON s.contact_id = a.contact_id \
                        WHERE a.uploaded_by = 'consumer' AND s.visitor_id = (SELECT visitor_id FROM chat_sessions WHERE contact_id = $1)) AS BIGINT) AS visitor_bytes")
                    .bind(contact.to_string()).fetch_one(self.reader()).await?;
                Ok(UploadBytes {
                    chat: row.try_get::<i64, _>("chat_bytes")?,
                    visitor: row.try_get::<i64, _>("visitor_bytes")?,
                })
            }

            async fn get_ticket(&self, id: TicketId) -> StoreResult<Ticket> {
                let row = sqlx::query(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                ticket_from_row(&row.ok_or(StoreError::NotFound("ticket"))?)
            }

            async fn list_tickets(&self, limit: u32) -> StoreResult<Vec<Ticket>> {
                let rows = sqlx::query(&format!("SELECT {TICKET_COLUMNS} FROM tickets ORDER BY created_at DESC, id LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(ticket_from_row).collect()
            }

            async fn tickets_of_visitor(&self, visitor: VisitorId) -> StoreResult<Vec<Ticket>> {
                let rows = sqlx::query(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE visitor_id = $1 ORDER BY created_at, id"))
                    .bind(visitor.to_string()).fetch_all(self.reader()).await?;
                rows.iter().map(ticket_from_row).collect()
            }

            async fn insert_ticket(&self, ticket: &Ticket) -> StoreResult<()> {
                insert_ticket(self.writer(), ticket).await
            }

            async fn identity_by_phone(&self, phone: &str) -> StoreResult<Option<Identity>> {
                let row = sqlx::query("SELECT id, external_id, email, name, phone, created_at FROM identities WHERE phone = $1 ORDER BY created_at, id LIMIT 1")
                    .bind(phone).fetch_optional(self.reader()).await?;
                row.as_ref().map(identity_from_row).transpose()
            }

            async fn tickets_of_identity(&self, identity: IdentityId) -> StoreResult<Vec<Ticket>> {
                let rows = sqlx::query(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE identity_id = $1 ORDER BY created_at, id"))
                    .bind(identity.to_string()).fetch_all(self.reader()).await?;
                rows.iter().map(ticket_from_row).collect()
            }

            async fn ticket_of_call(&self, call: CallId) -> StoreResult<Option<Ticket>> {
                let row = sqlx::query(&format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE call_id = $1"))
                    .bind(call.to_string()).fetch_optional(self.reader()).await?;
                row.as_ref().map(ticket_from_row).transpose()
            }

            async fn update_ticket(&self, t: &Ticket) -> StoreResult<()> {
                let done = sqlx::query("UPDATE tickets SET name = $2, status = $3, transcript = $4, external_id = $5, identity_id = $6, updated_at = $7 WHERE id = $1")
                    .bind(t.id.to_string())
                    .bind(&t.name)
                    .bind(&t.status)
                    .bind(&t.transcript)
                    .bind(&t.external_id)
                    .bind(t.identity.map(|i| i.to_string()))
                    .bind(millis(t.updated_at))
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "ticket")
            }

            async fn create_tone(&self, tone: &Tone) -> StoreResult<()> {
                sqlx::query("INSERT INTO tones (id, name, size, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&tone.id).bind(&tone.name).bind(tone.size).bind(millis(tone.created_at))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn list_tones(&self) -> StoreResult<Vec<Tone>> {
                let rows = sqlx::query("SELECT id, name, size, created_at FROM tones ORDER BY created_at, id").fetch_all(self.reader()).await?;
                rows.iter()
                    .map(|row| {
                        Ok(Tone { id: row.try_get("id")?, name: row.try_get("name")?, size: row.try_get("size")?, created_at: codec::time(row.try_get("created_at")?)? })
                    })
                    .collect()
            }

            async fn delete_tone(&self, id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM tones WHERE id = $1").bind(id).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "tone")
            }

            async fn notification_settings(&self, user: UserId) -> StoreResult<Option<NotificationSettings>> {
                let row = sqlx::query("SELECT user_id, new_chat_tone, new_message_tone, repeat_seconds, new_call_tone, call_repeat_seconds FROM notification_settings WHERE user_id = $1")
                    .bind(user.to_string()).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                let repeat: Option<i32> = row.try_get("repeat_seconds")?;
                let call_repeat: Option<i32> = row.try_get("call_repeat_seconds")?;
                Ok(Some(NotificationSettings {
                    user,
                    new_chat_tone: row.try_get("new_chat_tone")?,
                    new_message_tone: row.try_get("new_message_tone")?,
                    repeat_seconds: repeat.map(|r| u32::try_from(r).map_err(codec::corrupt)).transpose()?,
                    new_call_tone: row.try_get("new_call_tone")?,
                    call_repeat_seconds: call_repeat.map(|r| u32::try_from(r).map_err(codec::corrupt)).transpose()?,
                }))
            }

            async fn put_notification_settings(&self, settings: &NotificationSettings) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, new_chat_tone, new_message_tone, repeat_seconds, new_call_tone, call_repeat_seconds) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (user_id) DO UPDATE SET new_chat_tone = excluded.new_chat_tone, new_message_tone = excluded.new_message_tone, \
                     repeat_seconds = excluded.repeat_seconds, new_call_tone = excluded.new_call_tone, call_repeat_seconds = excluded.call_repeat_seconds",
                )
                .bind(settings.user.to_string())
                .bind(&settings.new_chat_tone)
                .bind(&settings.new_message_tone)
                .bind(settings.repeat_seconds.map(|r| r as i32))
                .bind(&settings.new_call_tone)
                .bind(settings.call_repeat_seconds.map(|r| r as i32))
                .execute(self.writer()).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use chat_sql;
