//! The SQL both backends share. SQLite and PostgreSQL agree on `$1` placeholders, `ON CONFLICT`
//! upserts and `RETURNING`, so one text serves both; `impl_store!` instantiates it for each
//! backend's concrete pool and row types (sqlx's generic bounds over `Database` would make the
//! same code much harder to read). What differs between the dialects is passed in:
//! Lists are sorted in Rust, not by `ORDER BY` on text: PostgreSQL sorts text by the locale's
//! collation and SQLite by bytes, and both backends must answer alike.
//! `tree_lock`, a statement that serialises queue-tree changes, and `migration_lock`, one that
//! serialises schema migrations between processes (both empty where the backend already has a
//! single writer). `row_lock` locks a selected row for the transaction, `skip_locked` lets job
//! workers pass over rows another worker holds (both empty for SQLite's single writer).

/// Implements `Store` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! impl_store {
    (
        $store:ty,
        $row:ty,
        backend = $backend:literal,
        tree_lock = $tree_lock:literal,
        migration_lock = $migration_lock:literal,
        row_lock = $row_lock:literal,
        skip_locked = $skip_locked:literal
    ) => {
        use crate::codec::{self, millis};
        use crate::records::{
            ApiKey, Attachment, CenterSettings, ChatSession, Credentials, HoursRecord, IdentifyOutcome, Identity,
            IntegrationSettings, Job, JobState, NewMessage, NotificationSettings, Session, Ticket, Tone, Visitor,
        };
        use switchboard_core::chat::{AttachmentKind, ChatMessage, ClientMessageId, ReservedProperties, Sender};
        use switchboard_core::{AttachmentId, IdentityId, JobId, MessageId, TicketId, VisitorId};
        use crate::{Store, StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use std::collections::HashMap;
        use switchboard_core::presence::PresenceState;
        use switchboard_core::{
            BuiltinRole, CapacityProfile, CapacityProfileId, Channel, Contact, ContactId, ContactStatus, Email,
            EmailList, Language, Name, QueueId, QueueKind, QueueNode, QueueTree, Role, RoleKey, RoleScope, Team,
            TeamId, User, UserId, Username,
        };

        const USER_COLUMNS: &str = "id, username, display_name, email, role_key, capacity_profile_id, languages, \
             emergency_contacts, totp_enabled, disabled, presence, presence_since, presence_forced_from, created_at";
        const QUEUE_COLUMNS: &str = "id, channel, parent_id, name, kind, position, priority, languages";
        const CONTACT_COLUMNS: &str = "id, channel, queue_id, issue, priority, language, status, agent_id, customer, \
             created_at, assigned_at, ended_at, end_reason, transfers";
        const CHAT_COLUMNS: &str = "contact_id, visitor_id, identity_id, ticket_id, source, verified_customer, bad_actor, \
             repeat_customer, accepted_at";
        const MESSAGE_COLUMNS: &str = "id, contact_id, seq, sender, client_id, body, attachment_id, sent_at";
        const TICKET_COLUMNS: &str = "id, contact_id, visitor_id, identity_id, name, status, transcript, external_id, created_at, updated_at";
        const JOB_COLUMNS: &str = "id, kind, payload, state, run_at, attempts, last_error, created_at";
        const HOURS_COLUMNS: &str = "id, name, queue_id, channel, language, time_zone, periods, holidays, closures";

        fn role_from_row(row: &$row) -> StoreResult<Role> {
            let key: String = row.try_get("key")?;
            Ok(Role {
                key: RoleKey::parse(&key).map_err(codec::corrupt)?,
                name: row.try_get("name")?,
                permissions: codec::permissions(&row.try_get::<String, _>("permissions")?)?,
                scope: RoleScope::parse(&row.try_get::<String, _>("scope")?).map_err(codec::corrupt)?,
                builtin: row.try_get("builtin")?,
            })
        }

        fn team_from_row(row: &$row) -> StoreResult<Team> {
            Ok(Team {
                id: codec::id(&row.try_get::<String, _>("id")?, TeamId::parse)?,
                name: Name::parse("team name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        fn profile_from_row(row: &$row) -> StoreResult<CapacityProfile> {
            let count = |column: &str| -> StoreResult<u16> {
                u16::try_from(row.try_get::<i32, _>(column)?).map_err(codec::corrupt)
            };
            CapacityProfile::new(
                codec::id(&row.try_get::<String, _>("id")?, CapacityProfileId::parse)?,
                Name::parse("profile name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                count("max_chats")?,
                count("max_calls")?,
                row.try_get("voice_outbound")?,
            )
            .map_err(codec::corrupt)
        }

        fn queue_from_row(row: &$row) -> StoreResult<QueueNode> {
            let parent: Option<String> = row.try_get("parent_id")?;
            Ok(QueueNode {
                id: codec::id(&row.try_get::<String, _>("id")?, QueueId::parse)?,
                channel: Channel::parse(&row.try_get::<String, _>("channel")?).map_err(codec::corrupt)?,
                parent: parent.as_deref().map(|p| codec::id(p, QueueId::parse)).transpose()?,
                name: Name::parse("queue name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                kind: QueueKind::parse(&row.try_get::<String, _>("kind")?).map_err(codec::corrupt)?,
                position: row.try_get("position")?,
                priority: row.try_get("priority")?,
                languages: codec::languages(&row.try_get::<String, _>("languages")?)?,
            })
        }

        fn contact_from_row(row: &$row) -> StoreResult<Contact> {
            let queue: Option<String> = row.try_get("queue_id")?;
            let agent: Option<String> = row.try_get("agent_id")?;
            let language: Option<String> = row.try_get("language")?;
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
            })
        }

        crate::sql_chat::chat_sql!($row);
        crate::sql_voice::voice_sql_helpers!($row);

        fn api_key_from_row(row: &$row) -> StoreResult<ApiKey> {
            Ok(ApiKey {
                key_id: row.try_get("key_id")?,
                name: row.try_get("name")?,
                secret_hash: row.try_get("secret_hash")?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        fn hours_from_row(row: &$row) -> StoreResult<HoursRecord> {
            let columns = codec::ScheduleColumns {
                time_zone: row.try_get("time_zone")?,
                periods: row.try_get("periods")?,
                holidays: row.try_get("holidays")?,
                closures: row.try_get("closures")?,
            };
            Ok(HoursRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                scope: codec::scope(
                    row.try_get::<Option<String>, _>("queue_id")?.as_deref(),
                    row.try_get::<Option<String>, _>("channel")?.as_deref(),
                    row.try_get::<Option<String>, _>("language")?.as_deref(),
                )?,
                schedule: codec::schedule(&columns)?,
            })
        }

        /// Team memberships, managed teams and queues, by user id.
        #[derive(Default)]
        struct UserLinks {
            teams: HashMap<UserId, Vec<TeamId>>,
            managed: HashMap<UserId, Vec<TeamId>>,
            queues: HashMap<UserId, Vec<QueueId>>,
        }

        fn user_from_row(row: &$row, links: &mut UserLinks) -> StoreResult<User> {
            let id = codec::id(&row.try_get::<String, _>("id")?, UserId::parse)?;
            let email: Option<String> = row.try_get("email")?;
            let profile: Option<String> = row.try_get("capacity_profile_id")?;
            let forced: Option<String> = row.try_get("presence_forced_from")?;
            Ok(User {
                id,
                username: Username::parse(&row.try_get::<String, _>("username")?).map_err(codec::corrupt)?,
                display_name: Name::parse("display name", &row.try_get::<String, _>("display_name")?)
                    .map_err(codec::corrupt)?,
                email: email.as_deref().map(Email::parse).transpose().map_err(codec::corrupt)?,
                role: RoleKey::parse(&row.try_get::<String, _>("role_key")?).map_err(codec::corrupt)?,
                teams: links.teams.remove(&id).unwrap_or_default(),
                managed_teams: links.managed.remove(&id).unwrap_or_default(),
                queues: links.queues.remove(&id).unwrap_or_default(),
                languages: codec::languages(&row.try_get::<String, _>("languages")?)?,
                capacity_profile: profile.as_deref().map(|p| codec::id(p, CapacityProfileId::parse)).transpose()?,
                emergency_contacts: EmailList::parse(&row.try_get::<String, _>("emergency_contacts")?)
                    .map_err(codec::corrupt)?,
                presence: PresenceState::from_parts(
                    codec::presence(&row.try_get::<String, _>("presence")?)?,
                    codec::time(row.try_get("presence_since")?)?,
                    forced.as_deref().map(codec::presence).transpose()?,
                ),
                disabled: row.try_get("disabled")?,
                totp_enabled: row.try_get("totp_enabled")?,
                created_at: codec::time(row.try_get("created_at")?)?,
            })
        }

        impl $store {
            /// Reads memberships for one user, or for everyone when `user` is `None`.
            async fn user_links(&self, user: Option<UserId>) -> StoreResult<UserLinks> {
                let mut links = UserLinks::default();
                let filter = user.map(|u| u.to_string()).unwrap_or_default();
                for (table, column) in [("team_members", "team_id"), ("team_managers", "team_id"), ("queue_agents", "queue_id")] {
                    let sql = format!(
                        "SELECT user_id, {column} AS target FROM {table} WHERE $1 = '' OR user_id = $1 "
                    );
                    let rows = sqlx::query(&sql).bind(&filter).fetch_all(self.reader()).await?;
                    for row in rows {
                        let user_id = codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?;
                        let target: String = row.try_get("target")?;
                        match table {
                            "team_members" => links.teams.entry(user_id).or_default().push(codec::id(&target, TeamId::parse)?),
                            "team_managers" => links.managed.entry(user_id).or_default().push(codec::id(&target, TeamId::parse)?),
                            _ => links.queues.entry(user_id).or_default().push(codec::id(&target, QueueId::parse)?),
                        }
                    }
                }
                // Text order differs between the backends' collations; sort here so both agree.
                for list in links.teams.values_mut().chain(links.managed.values_mut()) {
                    list.sort();
                }
                for list in links.queues.values_mut() {
                    list.sort();
                }
                Ok(links)
            }

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

            /// Brings the built-in roles up to date with this version's definitions.
            pub(crate) async fn ensure_builtin_roles(&self) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                for builtin in BuiltinRole::ALL {
                    let role = builtin.role();
                    sqlx::query(
                        "INSERT INTO roles (key, name, permissions, scope, builtin) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (key) DO UPDATE SET name = excluded.name, permissions = excluded.permissions, \
                         scope = excluded.scope, builtin = excluded.builtin",
                    )
                    .bind(role.key.as_str())
                    .bind(&role.name)
                    .bind(codec::permissions_text(role.permissions))
                    .bind(role.scope.as_str())
                    .bind(true)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }

        /// Writes a user's team, managed-team and queue links inside a transaction.
        async fn write_user_links(
            tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            user: &User,
        ) -> StoreResult<()> {
            let id = user.id.to_string();
            for table in ["team_members", "team_managers", "queue_agents"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1")).bind(&id).execute(&mut **tx).await?;
            }
            for team in &user.teams {
                sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
                    .bind(team.to_string()).bind(&id).execute(&mut **tx).await?;
            }
            for team in &user.managed_teams {
                sqlx::query("INSERT INTO team_managers (team_id, user_id) VALUES ($1, $2)")
                    .bind(team.to_string()).bind(&id).execute(&mut **tx).await?;
            }
            for queue in &user.queues {
                let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM queues WHERE id = $1")
                    .bind(queue.to_string()).fetch_optional(&mut **tx).await?;
                match kind.as_deref() {
                    Some("leaf") => {}
                    Some(_) => return Err(StoreError::Conflict(format!("queue {queue} is a menu; agents take contacts from leaf queues"))),
                    None => return Err(StoreError::NotFound("queue")),
                }
                sqlx::query("INSERT INTO queue_agents (queue_id, user_id) VALUES ($1, $2)")
                    .bind(queue.to_string()).bind(&id).execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Loads the whole queue tree inside a transaction, after taking the tree lock.
        async fn locked_tree(tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>) -> StoreResult<QueueTree> {
            if !$tree_lock.is_empty() {
                sqlx::query($tree_lock).execute(&mut **tx).await?;
            }
            let rows = sqlx::query(&format!("SELECT {QUEUE_COLUMNS} FROM queues")).fetch_all(&mut **tx).await?;
            let nodes = rows.iter().map(queue_from_row).collect::<StoreResult<Vec<_>>>()?;
            QueueTree::new(nodes).map_err(codec::corrupt)
        }

        /// Inserts a contact with any executor (the pool, or a transaction shared with more writes).
        async fn insert_contact<'e, E>(executor: E, c: &Contact) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(&format!("INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
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
                .execute(executor).await
                .map_err(|e| StoreError::from(e).conflict_as("the contact's queue or agent does not exist"))?;
            Ok(())
        }

        fn parent_key(node: &QueueNode) -> String {
            node.parent.map(|p| p.to_string()).unwrap_or_default()
        }

        fn not_found_unless_one(affected: u64, what: &'static str) -> StoreResult<()> {
            if affected == 0 { Err(StoreError::NotFound(what)) } else { Ok(()) }
        }

        fn opt_millis(at: Option<DateTime<Utc>>) -> Option<i64> {
            at.map(millis)
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

            async fn center_settings(&self) -> StoreResult<CenterSettings> {
                let row = sqlx::query("SELECT name, time_zone, languages FROM center_settings WHERE id = 1")
                    .fetch_one(self.reader()).await?;
                Ok(CenterSettings {
                    name: row.try_get("name")?,
                    time_zone: row.try_get("time_zone")?,
                    languages: codec::languages(&row.try_get::<String, _>("languages")?)?,
                })
            }

            async fn update_center_settings(&self, settings: &CenterSettings) -> StoreResult<()> {
                sqlx::query("UPDATE center_settings SET name = $1, time_zone = $2, languages = $3 WHERE id = 1")
                    .bind(&settings.name)
                    .bind(&settings.time_zone)
                    .bind(codec::language_texts(&settings.languages))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn list_roles(&self) -> StoreResult<Vec<Role>> {
                let rows = sqlx::query("SELECT key, name, permissions, scope, builtin FROM roles")
                    .fetch_all(self.reader()).await?;
                let mut roles = rows.iter().map(role_from_row).collect::<StoreResult<Vec<_>>>()?;
                roles.sort_by(|a, b| (!a.builtin, a.key.as_str()).cmp(&(!b.builtin, b.key.as_str())));
                Ok(roles)
            }

            async fn get_role(&self, key: &RoleKey) -> StoreResult<Role> {
                let row = sqlx::query("SELECT key, name, permissions, scope, builtin FROM roles WHERE key = $1")
                    .bind(key.as_str()).fetch_optional(self.reader()).await?;
                role_from_row(&row.ok_or(StoreError::NotFound("role"))?)
            }

            async fn create_role(&self, role: &Role) -> StoreResult<()> {
                sqlx::query("INSERT INTO roles (key, name, permissions, scope, builtin) VALUES ($1, $2, $3, $4, $5)")
                    .bind(role.key.as_str())
                    .bind(&role.name)
                    .bind(codec::permissions_text(role.permissions))
                    .bind(role.scope.as_str())
                    .bind(false)
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("a role with that key already exists"))?;
                Ok(())
            }

            async fn update_role(&self, role: &Role) -> StoreResult<()> {
                let done = sqlx::query("UPDATE roles SET name = $2, permissions = $3, scope = $4 WHERE key = $1 AND builtin = $5")
                    .bind(role.key.as_str())
                    .bind(&role.name)
                    .bind(codec::permissions_text(role.permissions))
                    .bind(role.scope.as_str())
                    .bind(false)
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "custom role")
            }

            async fn delete_role(&self, key: &RoleKey) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM roles WHERE key = $1 AND builtin = $2")
                    .bind(key.as_str()).bind(false)
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("users still hold this role"))?;
                not_found_unless_one(done.rows_affected(), "custom role")
            }

            async fn list_teams(&self) -> StoreResult<Vec<Team>> {
                let rows = sqlx::query("SELECT id, name, created_at FROM teams").fetch_all(self.reader()).await?;
                let mut teams = rows.iter().map(team_from_row).collect::<StoreResult<Vec<_>>>()?;
                teams.sort_by_cached_key(|t| t.name.as_str().to_lowercase());
                Ok(teams)
            }

            async fn get_team(&self, id: TeamId) -> StoreResult<Team> {
                let row = sqlx::query("SELECT id, name, created_at FROM teams WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                team_from_row(&row.ok_or(StoreError::NotFound("team"))?)
            }

            async fn create_team(&self, team: &Team) -> StoreResult<()> {
                sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(team.id.to_string()).bind(team.name.as_str()).bind(millis(team.created_at))
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("a team with that name already exists"))?;
                Ok(())
            }

            async fn update_team(&self, team: &Team) -> StoreResult<()> {
                let done = sqlx::query("UPDATE teams SET name = $2 WHERE id = $1")
                    .bind(team.id.to_string()).bind(team.name.as_str())
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("a team with that name already exists"))?;
                not_found_unless_one(done.rows_affected(), "team")
            }

            async fn delete_team(&self, id: TeamId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM teams WHERE id = $1").bind(id.to_string()).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "team")
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                let mut links = self.user_links(None).await?;
                let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users"))
                    .fetch_all(self.reader()).await?;
                let mut users = rows.iter().map(|row| user_from_row(row, &mut links)).collect::<StoreResult<Vec<_>>>()?;
                users.sort_by(|a, b| a.username.cmp(&b.username));
                Ok(users)
            }

            async fn get_user(&self, id: UserId) -> StoreResult<User> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("user"))?;
                let mut links = self.user_links(Some(id)).await?;
                user_from_row(&row, &mut links)
            }

            async fn find_user(&self, username: &Username) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
                    .bind(username.as_str()).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                let id = codec::id(&row.try_get::<String, _>("id")?, UserId::parse)?;
                let mut links = self.user_links(Some(id)).await?;
                user_from_row(&row, &mut links).map(Some)
            }

            async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let presence = &user.presence;
                sqlx::query(
                    "INSERT INTO users (id, username, display_name, email, role_key, capacity_profile_id, languages, \
                     emergency_contacts, password_hash, totp_secret, totp_enabled, totp_last_step, disabled, presence, \
                     presence_since, presence_forced_from, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, 0, $11, $12, $13, $14, $15)",
                )
                .bind(user.id.to_string())
                .bind(user.username.as_str())
                .bind(user.display_name.as_str())
                .bind(user.email.as_ref().map(Email::as_str))
                .bind(user.role.as_str())
                .bind(user.capacity_profile.map(|p| p.to_string()))
                .bind(codec::language_texts(&user.languages))
                .bind(user.emergency_contacts.joined())
                .bind(password_hash)
                .bind(false)
                .bind(user.disabled)
                .bind(presence.current().to_string())
                .bind(millis(presence.since()))
                .bind(presence.forced_from().map(ToString::to_string))
                .bind(millis(user.created_at))
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("that username is taken, or the role or capacity profile does not exist"))?;
                write_user_links(&mut tx, user).await
                    .map_err(|e| e.conflict_as("a team or queue given does not exist"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_user(&self, user: &User) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET username = $2, display_name = $3, email = $4, role_key = $5, capacity_profile_id = $6, \
                     languages = $7, emergency_contacts = $8, disabled = $9 WHERE id = $1",
                )
                .bind(user.id.to_string())
                .bind(user.username.as_str())
                .bind(user.display_name.as_str())
                .bind(user.email.as_ref().map(Email::as_str))
                .bind(user.role.as_str())
                .bind(user.capacity_profile.map(|p| p.to_string()))
                .bind(codec::language_texts(&user.languages))
                .bind(user.emergency_contacts.joined())
                .bind(user.disabled)
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("that username is taken, or the role or capacity profile does not exist"))?;
                not_found_unless_one(done.rows_affected(), "user")?;
                write_user_links(&mut tx, user).await
                    .map_err(|e| e.conflict_as("a team or queue given does not exist"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_user(&self, id: UserId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id.to_string())
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("contact history names this user; disable the user instead"))?;
                not_found_unless_one(done.rows_affected(), "user")
            }

            async fn credentials(&self, id: UserId) -> StoreResult<Credentials> {
                let row = sqlx::query("SELECT password_hash, totp_secret, totp_enabled FROM users WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("user"))?;
                Ok(Credentials {
                    password_hash: row.try_get("password_hash")?,
                    totp_secret: row.try_get("totp_secret")?,
                    totp_enabled: row.try_get("totp_enabled")?,
                })
            }

            async fn set_password(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(id.to_string()).bind(password_hash).execute(&mut *tx).await?;
                not_found_unless_one(done.rows_affected(), "user")?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_totp(&self, id: UserId, secret: Option<&str>, enabled: bool) -> StoreResult<()> {
                let done = sqlx::query("UPDATE users SET totp_secret = $2, totp_enabled = $3 WHERE id = $1")
                    .bind(id.to_string()).bind(secret).bind(enabled && secret.is_some())
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "user")
            }

            async fn use_totp_step(&self, id: UserId, step: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
                    .bind(id.to_string()).bind(step).execute(self.writer()).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_presence(&self, id: UserId, presence: &PresenceState) -> StoreResult<()> {
                let done = sqlx::query("UPDATE users SET presence = $2, presence_since = $3, presence_forced_from = $4 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(presence.current().to_string())
                    .bind(millis(presence.since()))
                    .bind(presence.forced_from().map(ToString::to_string))
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "user")
            }

            async fn list_queues(&self) -> StoreResult<Vec<QueueNode>> {
                let rows = sqlx::query(&format!("SELECT {QUEUE_COLUMNS} FROM queues"))
                    .fetch_all(self.reader()).await?;
                let mut queues = rows.iter().map(queue_from_row).collect::<StoreResult<Vec<_>>>()?;
                queues.sort_by_cached_key(|q| (q.channel, q.position, q.name.as_str().to_lowercase()));
                Ok(queues)
            }

            async fn create_queue(&self, node: &QueueNode) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                locked_tree(&mut tx).await?.check_insert(node)?;
                sqlx::query(
                    "INSERT INTO queues (id, channel, parent_id, parent_key, name, kind, position, priority, languages) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(node.id.to_string())
                .bind(node.channel.as_str())
                .bind(node.parent.map(|p| p.to_string()))
                .bind(parent_key(node))
                .bind(node.name.as_str())
                .bind(node.kind.as_str())
                .bind(node.position)
                .bind(node.priority)
                .bind(codec::language_texts(&node.languages))
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("a sibling queue already has that name"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_queue(&self, node: &QueueNode) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                locked_tree(&mut tx).await?.check_update(node)?;
                sqlx::query(
                    "UPDATE queues SET parent_id = $2, parent_key = $3, name = $4, kind = $5, position = $6, priority = $7, \
                     languages = $8 WHERE id = $1",
                )
                .bind(node.id.to_string())
                .bind(node.parent.map(|p| p.to_string()))
                .bind(parent_key(node))
                .bind(node.name.as_str())
                .bind(node.kind.as_str())
                .bind(node.position)
                .bind(node.priority)
                .bind(codec::language_texts(&node.languages))
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("a sibling queue already has that name"))?;
                if node.kind == QueueKind::Menu {
                    // A menu takes no contacts, so nobody is assigned to it any more.
                    sqlx::query("DELETE FROM queue_agents WHERE queue_id = $1").bind(node.id.to_string()).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_queue(&self, id: QueueId) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                locked_tree(&mut tx).await?.check_delete(id)?;
                sqlx::query("DELETE FROM queues WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await
                    .map_err(|e| StoreError::from(e).conflict_as("contact history refers to this queue"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_capacity_profiles(&self) -> StoreResult<Vec<CapacityProfile>> {
                let rows = sqlx::query("SELECT id, name, max_chats, max_calls, voice_outbound FROM capacity_profiles")
                    .fetch_all(self.reader()).await?;
                let mut profiles = rows.iter().map(profile_from_row).collect::<StoreResult<Vec<_>>>()?;
                profiles.sort_by_cached_key(|p| p.name.as_str().to_lowercase());
                Ok(profiles)
            }

            async fn get_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<CapacityProfile> {
                let row = sqlx::query("SELECT id, name, max_chats, max_calls, voice_outbound FROM capacity_profiles WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                profile_from_row(&row.ok_or(StoreError::NotFound("capacity profile"))?)
            }

            async fn create_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()> {
                sqlx::query("INSERT INTO capacity_profiles (id, name, max_chats, max_calls, voice_outbound) VALUES ($1, $2, $3, $4, $5)")
                    .bind(profile.id.to_string())
                    .bind(profile.name.as_str())
                    .bind(i32::from(profile.max_chats()))
                    .bind(i32::from(profile.max_calls()))
                    .bind(profile.voice_outbound)
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("a capacity profile with that name already exists"))?;
                Ok(())
            }

            async fn update_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()> {
                let done = sqlx::query("UPDATE capacity_profiles SET name = $2, max_chats = $3, max_calls = $4, voice_outbound = $5 WHERE id = $1")
                    .bind(profile.id.to_string())
                    .bind(profile.name.as_str())
                    .bind(i32::from(profile.max_chats()))
                    .bind(i32::from(profile.max_calls()))
                    .bind(profile.voice_outbound)
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("a capacity profile with that name already exists"))?;
                not_found_unless_one(done.rows_affected(), "capacity profile")
            }

            async fn delete_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM capacity_profiles WHERE id = $1").bind(id.to_string())
                    .execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("users still have this capacity profile"))?;
                not_found_unless_one(done.rows_affected(), "capacity profile")
            }

            async fn list_hours(&self) -> StoreResult<Vec<HoursRecord>> {
                let rows = sqlx::query(&format!("SELECT {HOURS_COLUMNS} FROM business_hours"))
                    .fetch_all(self.reader()).await?;
                let mut hours = rows.iter().map(hours_from_row).collect::<StoreResult<Vec<_>>>()?;
                // General first (the global schedule), then overrides by how specific they are.
                hours.sort_by_cached_key(|h| (h.scope.specificity(), h.scope.key(), h.id.clone()));
                Ok(hours)
            }

            async fn put_hours(&self, hours: &HoursRecord) -> StoreResult<()> {
                let columns = codec::schedule_columns(&hours.schedule);
                sqlx::query(
                    "INSERT INTO business_hours (id, name, scope_key, queue_id, channel, language, time_zone, periods, holidays, closures) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, scope_key = excluded.scope_key, \
                     queue_id = excluded.queue_id, channel = excluded.channel, language = excluded.language, \
                     time_zone = excluded.time_zone, periods = excluded.periods, holidays = excluded.holidays, \
                     closures = excluded.closures",
                )
                .bind(&hours.id)
                .bind(&hours.name)
                .bind(hours.scope.key())
                .bind(hours.scope.queue.map(|q| q.to_string()))
                .bind(hours.scope.channel.map(Channel::as_str))
                .bind(hours.scope.language.as_ref().map(Language::as_str))
                .bind(&columns.time_zone)
                .bind(&columns.periods)
                .bind(&columns.holidays)
                .bind(&columns.closures)
                .execute(self.writer()).await
                .map_err(|e| StoreError::from(e).conflict_as("another schedule already covers that scope, or its queue does not exist"))?;
                Ok(())
            }

            async fn delete_hours(&self, id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM business_hours WHERE id = $1").bind(id).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "business hours")
            }

            async fn list_custom_statuses(&self) -> StoreResult<Vec<String>> {
                let mut names: Vec<String> = sqlx::query_scalar("SELECT name FROM custom_statuses").fetch_all(self.reader()).await?;
                names.sort_by_cached_key(|n| n.to_lowercase());
                Ok(names)
            }

            async fn create_custom_status(&self, name: &str) -> StoreResult<()> {
                sqlx::query("INSERT INTO custom_statuses (name) VALUES ($1)").bind(name).execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("that custom status exists already"))?;
                Ok(())
            }

            async fn delete_custom_status(&self, name: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM custom_statuses WHERE name = $1").bind(name).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "custom status")
            }

            async fn create_session(&self, session: &Session) -> StoreResult<()> {
                sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, mfa) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&session.token_hash)
                    .bind(session.user_id.to_string())
                    .bind(millis(session.created_at))
                    .bind(millis(session.expires_at))
                    .bind(session.mfa)
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn get_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Session>> {
                let row = sqlx::query("SELECT token_hash, user_id, created_at, expires_at, mfa FROM sessions WHERE token_hash = $1 AND expires_at > $2")
                    .bind(token_hash).bind(millis(now)).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(Session {
                    token_hash: row.try_get("token_hash")?,
                    user_id: codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?,
                    created_at: codec::time(row.try_get("created_at")?)?,
                    expires_at: codec::time(row.try_get("expires_at")?)?,
                    mfa: row.try_get("mfa")?,
                }))
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(self.writer()).await?;
                Ok(())
            }

            async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(millis(now)).execute(self.writer()).await?;
                Ok(done.rows_affected())
            }

            async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
                sqlx::query("INSERT INTO api_keys (key_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&key.key_id).bind(&key.name).bind(&key.secret_hash).bind(millis(key.created_at))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn get_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKey>> {
                let row = sqlx::query("SELECT key_id, name, secret_hash, created_at FROM api_keys WHERE key_id = $1")
                    .bind(key_id).fetch_optional(self.reader()).await?;
                row.as_ref().map(api_key_from_row).transpose()
            }

            async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
                let rows = sqlx::query("SELECT key_id, name, secret_hash, created_at FROM api_keys ORDER BY created_at")
                    .fetch_all(self.reader()).await?;
                rows.iter().map(api_key_from_row).collect()
            }

            async fn delete_api_key(&self, key_id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM api_keys WHERE key_id = $1").bind(key_id).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "API key")
            }

            async fn insert_contact(&self, c: &Contact) -> StoreResult<()> {
                insert_contact(self.writer(), c).await
            }

            async fn update_contacts(&self, contacts: &[Contact]) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                for c in contacts {
                    let done = sqlx::query("UPDATE contacts SET status = $2, agent_id = $3, assigned_at = $4, ended_at = $5, end_reason = $6, \
                         queue_id = $7, issue = $8, priority = $9, transfers = $10 WHERE id = $1")
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

            async fn integration_settings(&self, new_identity_secret: &str) -> StoreResult<IntegrationSettings> {
                sqlx::query("INSERT INTO integration_settings (id, identity_secret, crm_connector) VALUES (1, $1, 'builtin') ON CONFLICT (id) DO NOTHING")
                    .bind(new_identity_secret).execute(self.writer()).await?;
                let row = sqlx::query("SELECT identity_secret, crm_connector, crm_webhook_url, crm_webhook_secret FROM integration_settings WHERE id = 1")
                    .fetch_one(self.writer()).await?;
                Ok(IntegrationSettings {
                    identity_secret: row.try_get("identity_secret")?,
                    crm_connector: row.try_get("crm_connector")?,
                    crm_webhook_url: row.try_get("crm_webhook_url")?,
                    crm_webhook_secret: row.try_get("crm_webhook_secret")?,
                })
            }

            async fn update_integration_settings(&self, settings: &IntegrationSettings) -> StoreResult<()> {
                let done = sqlx::query("UPDATE integration_settings SET identity_secret = $1, crm_connector = $2, crm_webhook_url = $3, crm_webhook_secret = $4 WHERE id = 1")
                    .bind(&settings.identity_secret)
                    .bind(&settings.crm_connector)
                    .bind(&settings.crm_webhook_url)
                    .bind(&settings.crm_webhook_secret)
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "integration settings")
            }

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
                let row = sqlx::query("SELECT id, external_id, email, name, created_at FROM identities WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.reader()).await?;
                identity_from_row(&row.ok_or(StoreError::NotFound("identity"))?)
            }

            async fn identify_visitor(&self, visitor: VisitorId, identity: &Identity) -> StoreResult<IdentifyOutcome> {
                let mut tx = self.writer().begin().await?;
                let row = sqlx::query(
                    "INSERT INTO identities (id, external_id, email, name, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (external_id) DO UPDATE SET email = COALESCE(excluded.email, identities.email), \
                     name = COALESCE(excluded.name, identities.name) \
                     RETURNING id, external_id, email, name, created_at",
                )
                .bind(identity.id.to_string())
                .bind(&identity.external_id)
                .bind(&identity.email)
                .bind(&identity.name)
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
                tx.commit().await?;
                Ok(IdentifyOutcome { identity: stored, merged_tickets, merged_chats })
            }

            async fn insert_chat(&self, contact: &Contact, chat: &ChatSession, ticket: &Ticket) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                insert_contact(&mut *tx, contact).await?;
                sqlx::query(&format!("INSERT INTO tickets ({TICKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
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
                    .execute(&mut *tx).await?;
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

            async fn enqueue_job(&self, job: &Job) -> StoreResult<()> {
                sqlx::query(&format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(job.id.to_string())
                    .bind(&job.kind)
                    .bind(&job.payload)
                    .bind(job.state.as_str())
                    .bind(millis(job.run_at))
                    .bind(job.attempts as i32)
                    .bind(&job.last_error)
                    .bind(millis(job.created_at))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn claim_job(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> StoreResult<Option<Job>> {
                let sql = format!(
                    "UPDATE jobs SET state = 'running', locked_until = $2, attempts = attempts + 1 WHERE id = ( \
                     SELECT id FROM jobs WHERE (state = 'pending' AND run_at <= $1) OR (state = 'running' AND locked_until <= $1) \
                     ORDER BY run_at, id LIMIT 1 {}) RETURNING {JOB_COLUMNS}",
                    $skip_locked
                );
                let row = sqlx::query(&sql).bind(millis(now)).bind(millis(lease_until)).fetch_optional(self.writer()).await?;
                row.as_ref().map(job_from_row).transpose()
            }

            async fn complete_job(&self, id: JobId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE jobs SET state = 'done', locked_until = NULL WHERE id = $1")
                    .bind(id.to_string()).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "job")
            }

            async fn fail_job(&self, id: JobId, error: &str, run_at: Option<DateTime<Utc>>) -> StoreResult<()> {
                let error: String = error.chars().take(1000).collect();
                let done = match run_at {
                    Some(at) => sqlx::query("UPDATE jobs SET state = 'pending', locked_until = NULL, last_error = $2, run_at = $3 WHERE id = $1")
                        .bind(id.to_string()).bind(&error).bind(millis(at)).execute(self.writer()).await?,
                    None => sqlx::query("UPDATE jobs SET state = 'failed', locked_until = NULL, last_error = $2 WHERE id = $1")
                        .bind(id.to_string()).bind(&error).execute(self.writer()).await?,
                };
                not_found_unless_one(done.rows_affected(), "job")
            }

            async fn list_jobs(&self, limit: u32) -> StoreResult<Vec<Job>> {
                let rows = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(job_from_row).collect()
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
                let row = sqlx::query("SELECT user_id, new_chat_tone, new_message_tone, repeat_seconds FROM notification_settings WHERE user_id = $1")
                    .bind(user.to_string()).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                let repeat: Option<i32> = row.try_get("repeat_seconds")?;
                Ok(Some(NotificationSettings {
                    user,
                    new_chat_tone: row.try_get("new_chat_tone")?,
                    new_message_tone: row.try_get("new_message_tone")?,
                    repeat_seconds: repeat.map(|r| u32::try_from(r).map_err(codec::corrupt)).transpose()?,
                }))
            }

            async fn put_notification_settings(&self, settings: &NotificationSettings) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO notification_settings (user_id, new_chat_tone, new_message_tone, repeat_seconds) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET new_chat_tone = excluded.new_chat_tone, new_message_tone = excluded.new_message_tone, \
                     repeat_seconds = excluded.repeat_seconds",
                )
                .bind(settings.user.to_string())
                .bind(&settings.new_chat_tone)
                .bind(&settings.new_message_tone)
                .bind(settings.repeat_seconds.map(|r| r as i32))
                .execute(self.writer()).await?;
                Ok(())
            }

            async fn list_trunks(&self) -> StoreResult<Vec<switchboard_core::voice::Trunk>> {
                let rows = sqlx::query(&format!("SELECT {TRUNK_COLUMNS} FROM trunks")).fetch_all(self.reader()).await?;
                let mut trunks = rows.iter().map(trunk_from_row).collect::<StoreResult<Vec<_>>>()?;
                trunks.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.id.cmp(&b.id)));
                Ok(trunks)
            }

            async fn get_trunk(&self, id: switchboard_core::TrunkId) -> StoreResult<switchboard_core::voice::Trunk> {
                let row = sqlx::query(&format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("trunk"))?;
                trunk_from_row(&row)
            }

            async fn put_trunk(&self, trunk: &switchboard_core::voice::Trunk) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO trunks (id, name, direction, addresses, username, secret, host, port, tcp, caller_id, dial_rules, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, direction = excluded.direction, addresses = excluded.addresses, \
                     username = excluded.username, secret = excluded.secret, host = excluded.host, port = excluded.port, tcp = excluded.tcp, \
                     caller_id = excluded.caller_id, dial_rules = excluded.dial_rules",
                )
                .bind(trunk.id.to_string())
                .bind(trunk.name.as_str())
                .bind(trunk.direction.as_str())
                .bind(codec::networks_text(&trunk.addresses))
                .bind(&trunk.username)
                .bind(&trunk.secret)
                .bind(&trunk.host)
                .bind(trunk.port.map(i32::from))
                .bind(trunk.tcp)
                .bind(trunk.caller_id.as_ref().map(|c| c.as_str().to_owned()))
                .bind(codec::dial_rules_text(&trunk.dial_rules))
                .bind(millis(Utc::now()))
                .execute(self.writer()).await?;
                Ok(())
            }

            async fn delete_trunk(&self, id: switchboard_core::TrunkId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM trunks WHERE id = $1").bind(id.to_string()).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "trunk")
            }

            async fn list_dids(&self) -> StoreResult<Vec<switchboard_core::voice::Did>> {
                let rows = sqlx::query("SELECT number, entry_queue_id, language FROM dids").fetch_all(self.reader()).await?;
                let mut dids = rows.iter().map(|row| {
                    let language: Option<String> = row.try_get("language")?;
                    Ok(switchboard_core::voice::Did {
                        number: switchboard_core::voice::PhoneNumber::parse("number", &row.try_get::<String, _>("number")?).map_err(codec::corrupt)?,
                        entry: opt_id(row, "entry_queue_id", QueueId::parse)?,
                        language: language.as_deref().map(Language::parse).transpose().map_err(codec::corrupt)?,
                    })
                }).collect::<StoreResult<Vec<_>>>()?;
                dids.sort_by(|a, b| a.number.cmp(&b.number));
                Ok(dids)
            }

            async fn put_did(&self, did: &switchboard_core::voice::Did) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                if let Some(entry) = did.entry {
                    let found = sqlx::query("SELECT channel FROM queues WHERE id = $1").bind(entry.to_string()).fetch_optional(&mut *tx).await?;
                    match found {
                        Some(row) if row.try_get::<String, _>("channel")? == "voice" => {}
                        Some(_) => return Err(StoreError::Conflict("a number's entry point must be a voice queue or menu".into())),
                        None => return Err(StoreError::NotFound("queue")),
                    }
                }
                sqlx::query(
                    "INSERT INTO dids (number, entry_queue_id, language) VALUES ($1, $2, $3) \
                     ON CONFLICT (number) DO UPDATE SET entry_queue_id = excluded.entry_queue_id, language = excluded.language",
                )
                .bind(did.number.as_str())
                .bind(did.entry.map(|q| q.to_string()))
                .bind(did.language.as_ref().map(|l| l.as_str().to_owned()))
                .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_did(&self, number: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM dids WHERE number = $1").bind(number).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "number")
            }

            async fn set_sip_phone(&self, user: UserId, ha1: Option<&str>) -> StoreResult<()> {
                match ha1 {
                    Some(ha1) => {
                        let mut tx = self.writer().begin().await?;
                        let exists = sqlx::query("SELECT id FROM users WHERE id = $1").bind(user.to_string()).fetch_optional(&mut *tx).await?;
                        if exists.is_none() {
                            return Err(StoreError::NotFound("user"));
                        }
                        sqlx::query("INSERT INTO sip_phones (user_id, ha1) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET ha1 = excluded.ha1")
                            .bind(user.to_string()).bind(ha1).execute(&mut *tx).await?;
                        tx.commit().await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM sip_phones WHERE user_id = $1").bind(user.to_string()).execute(self.writer()).await?;
                    }
                }
                Ok(())
            }

            async fn sip_phone(&self, username: &Username) -> StoreResult<Option<(UserId, String)>> {
                let row = sqlx::query("SELECT p.user_id, p.ha1 FROM sip_phones p JOIN users u ON u.id = p.user_id WHERE u.username = $1 AND NOT u.disabled")
                    .bind(username.as_str()).fetch_optional(self.reader()).await?;
                row.map(|row| Ok((codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?, row.try_get("ha1")?))).transpose()
            }

            async fn put_voice_audio(&self, key: &str, blob: &str, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("INSERT INTO voice_audio (key, blob_id, created_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (key) DO UPDATE SET blob_id = excluded.blob_id, created_at = excluded.created_at")
                    .bind(key).bind(blob).bind(millis(at)).execute(self.writer()).await?;
                Ok(())
            }

            async fn voice_audio(&self, key: &str) -> StoreResult<Option<String>> {
                let row = sqlx::query("SELECT blob_id FROM voice_audio WHERE key = $1").bind(key).fetch_optional(self.reader()).await?;
                row.map(|row| Ok(row.try_get("blob_id")?)).transpose()
            }

            async fn delete_voice_audio(&self, key: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM voice_audio WHERE key = $1").bind(key).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "audio")
            }

            async fn put_calls(&self, calls: &[switchboard_core::voice::CallRecord]) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                for call in calls {
                sqlx::query(&format!(
                    "INSERT INTO calls ({CALL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                     ON CONFLICT (id) DO UPDATE SET rtp_from_caller = excluded.rtp_from_caller, rtp_to_caller = excluded.rtp_to_caller, \
                     rtp_from_agent = excluded.rtp_from_agent, rtp_to_agent = excluded.rtp_to_agent, ivr_path = excluded.ivr_path, queue_id = excluded.queue_id, agent_id = excluded.agent_id, \
                     contact_id = excluded.contact_id, queued_at = excluded.queued_at, ringing_at = excluded.ringing_at, \
                     answered_at = excluded.answered_at, ended_at = excluded.ended_at, disposition = excluded.disposition, \
                     ended_by = excluded.ended_by, transfers = excluded.transfers"
                ))
                .bind(call.id.to_string())
                .bind(&call.caller)
                .bind(&call.did)
                .bind(&call.ivr_path)
                .bind(call.queue.map(|q| q.to_string()))
                .bind(call.agent.map(|a| a.to_string()))
                .bind(call.contact.map(|c| c.to_string()))
                .bind(millis(call.started_at))
                .bind(call.queued_at.map(millis))
                .bind(call.ringing_at.map(millis))
                .bind(call.answered_at.map(millis))
                .bind(call.ended_at.map(millis))
                .bind(call.disposition.as_str())
                .bind(&call.ended_by)
                .bind(serde_json::to_string(&call.transfers).map_err(codec::corrupt)?)
                .bind(i32::try_from(call.rtp.from_caller).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.to_caller).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.from_agent).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.to_agent).unwrap_or(i32::MAX))
                .execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_call(&self, id: switchboard_core::CallId) -> StoreResult<switchboard_core::voice::CallRecord> {
                let row = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("call"))?;
                call_from_row(&row)
            }

            async fn list_calls(&self, limit: u32) -> StoreResult<Vec<switchboard_core::voice::CallRecord>> {
                let rows = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, id DESC LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(call_from_row).collect()
            }
        }
    };
}

pub(crate) use impl_store;
