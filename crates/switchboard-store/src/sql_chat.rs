//! The chat side of the shared SQL: row decoders for chats, messages, attachments, tickets,
//! jobs and identities, and the group-commit append. `impl_store!` expands `chat_sql!` for each
//! backend's row type, so this text, like `sql.rs`, serves both databases.

/// Chat decoders and helpers for one backend's row type.
macro_rules! chat_sql {
    ($row:ty) => {
        fn opt_id<T>(row: &$row, column: &str, parse: fn(&str) -> Result<T, switchboard_core::IdError>) -> StoreResult<Option<T>> {
            row.try_get::<Option<String>, _>(column)?.as_deref().map(|text| codec::id(text, parse)).transpose()
        }

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
            })
        }

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

        fn identity_from_row(row: &$row) -> StoreResult<Identity> {
            Ok(Identity {
                id: codec::id(&row.try_get::<String, _>("id")?, IdentityId::parse)?,
                external_id: row.try_get("external_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
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

    };
}

pub(crate) use chat_sql;
