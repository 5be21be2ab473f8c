//! The directory: how the center is set up and who works in it. Center settings, roles, teams,
//! users (with their credentials, TOTP and presence), the queue trees, capacity profiles,
//! business hours, custom statuses, sign-in sessions, Apps API keys and integration settings.
//! `DirectoryStore` says what is kept; `directory_sql!` is its SQL, instantiated for each
//! backend (see `sql.rs`).

use crate::codec;
use crate::records::{
    ApiKey, CenterSettings, Credentials, HoursRecord, IntegrationSettings, Session,
};
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::hours::{
    parse_time_zone, Closure, Holiday, HoursScope, Schedule, WeeklyPeriod,
};
use switchboard_core::presence::PresenceState;
use switchboard_core::{
    CapacityProfile, CapacityProfileId, Channel, Language, QueueId, QueueNode, Role, RoleKey, Team,
    TeamId, User, UserId, Username,
};

/// The center's setup and its people. Each method is one transaction.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn center_settings(&self) -> StoreResult<CenterSettings>;
    async fn update_center_settings(&self, settings: &CenterSettings) -> StoreResult<()>;

    async fn list_roles(&self) -> StoreResult<Vec<Role>>;
    async fn get_role(&self, key: &RoleKey) -> StoreResult<Role>;
    async fn create_role(&self, role: &Role) -> StoreResult<()>;
    async fn update_role(&self, role: &Role) -> StoreResult<()>;
    /// Refused while a user holds the role.
    async fn delete_role(&self, key: &RoleKey) -> StoreResult<()>;

    async fn list_teams(&self) -> StoreResult<Vec<Team>>;
    async fn get_team(&self, id: TeamId) -> StoreResult<Team>;
    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    async fn update_team(&self, team: &Team) -> StoreResult<()>;
    async fn delete_team(&self, id: TeamId) -> StoreResult<()>;

    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn get_user(&self, id: UserId) -> StoreResult<User>;
    async fn find_user(&self, username: &Username) -> StoreResult<Option<User>>;
    /// Creates the user with their teams, managed teams and queues.
    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;
    /// Replaces the user's profile, teams, managed teams and queues (not credentials or presence).
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Refused while contact history names the user; disable them instead.
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
    async fn credentials(&self, id: UserId) -> StoreResult<Credentials>;
    /// Sets a new password hash and ends the user's sessions.
    async fn set_password(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// Stores a TOTP secret (pending until enabled) or clears it (`None`).
    async fn set_totp(&self, id: UserId, secret: Option<&str>, enabled: bool) -> StoreResult<()>;
    /// Records a used TOTP time step; false when that step (or a later one) was used already,
    /// so a code can never be replayed.
    async fn use_totp_step(&self, id: UserId, step: i64) -> StoreResult<bool>;
    /// Saves the user's presence and adds it to their presence history.
    async fn save_presence(&self, id: UserId, presence: &PresenceState) -> StoreResult<()>;

    async fn list_queues(&self) -> StoreResult<Vec<QueueNode>>;
    /// Adds a node after checking it against the whole tree.
    async fn create_queue(&self, node: &QueueNode) -> StoreResult<()>;
    async fn update_queue(&self, node: &QueueNode) -> StoreResult<()>;
    async fn delete_queue(&self, id: QueueId) -> StoreResult<()>;

    async fn list_capacity_profiles(&self) -> StoreResult<Vec<CapacityProfile>>;
    async fn get_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<CapacityProfile>;
    async fn create_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()>;
    async fn update_capacity_profile(&self, profile: &CapacityProfile) -> StoreResult<()>;
    async fn delete_capacity_profile(&self, id: CapacityProfileId) -> StoreResult<()>;

    async fn list_hours(&self) -> StoreResult<Vec<HoursRecord>>;
    /// Creates or replaces a schedule by id; one schedule per scope.
    async fn put_hours(&self, hours: &HoursRecord) -> StoreResult<()>;
    async fn delete_hours(&self, id: &str) -> StoreResult<()>;

    async fn list_custom_statuses(&self) -> StoreResult<Vec<String>>;
    async fn create_custom_status(&self, name: &str) -> StoreResult<()>;
    async fn delete_custom_status(&self, name: &str) -> StoreResult<()>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The session with this token hash, if it exists and has not expired at `now`.
    async fn get_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// The session passed a TOTP check at `at` (a step-up, for downloading recordings).
    async fn step_up_session(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Removes expired sessions; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn get_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn delete_api_key(&self, key_id: &str) -> StoreResult<()>;

    /// The integration settings; the first call stores them with this identity secret.
    async fn integration_settings(
        &self,
        new_identity_secret: &str,
    ) -> StoreResult<IntegrationSettings>;
    async fn update_integration_settings(&self, settings: &IntegrationSettings) -> StoreResult<()>;
}

/// A schedule's parts as stored: time zone and three JSON arrays of their text forms.
pub(crate) struct ScheduleColumns {
    pub time_zone: String,
    pub periods: String,
    pub holidays: String,
    pub closures: String,
}

fn json_texts<T: ToString>(items: &[T]) -> String {
    serde_json::to_string(&items.iter().map(T::to_string).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

fn from_json_texts<T, E: std::fmt::Display>(
    text: &str,
    parse: fn(&str) -> Result<T, E>,
) -> StoreResult<Vec<T>> {
    let texts: Vec<String> = serde_json::from_str(text).map_err(codec::corrupt)?;
    texts
        .iter()
        .map(|t| parse(t).map_err(codec::corrupt))
        .collect()
}

pub(crate) fn schedule_columns(schedule: &Schedule) -> ScheduleColumns {
    ScheduleColumns {
        time_zone: schedule.time_zone().name().to_owned(),
        periods: json_texts(schedule.periods()),
        holidays: json_texts(schedule.holidays()),
        closures: json_texts(schedule.closures()),
    }
}

pub(crate) fn schedule(columns: &ScheduleColumns) -> StoreResult<Schedule> {
    Schedule::new(
        parse_time_zone(&columns.time_zone).map_err(codec::corrupt)?,
        from_json_texts(&columns.periods, WeeklyPeriod::parse)?,
        from_json_texts(&columns.holidays, Holiday::parse)?,
        from_json_texts(&columns.closures, Closure::parse)?,
    )
    .map_err(codec::corrupt)
}

pub(crate) fn scope(
    queue: Option<&str>,
    channel: Option<&str>,
    language: Option<&str>,
) -> StoreResult<HoursScope> {
    Ok(HoursScope {
        queue: queue
            .map(|q| codec::id(q, switchboard_core::QueueId::parse))
            .transpose()?,
        channel: channel
            .map(|c| Channel::parse(c).map_err(codec::corrupt))
            .transpose()?,
        language: language
            .map(|l| Language::parse(l).map_err(codec::corrupt))
            .transpose()?,
    })
}

/// Implements `DirectoryStore` for a backend type with `writer()` and `reader()` pool accessors.
/// `tree_lock` is a statement that serialises queue-tree changes (empty where the backend has a
/// single writer).
macro_rules! directory_sql {
    ($store:ty, $row:ty, tree_lock = $tree_lock:literal) => {
        use crate::codec::{self, millis};
        use crate::directory::{schedule, schedule_columns, scope, DirectoryStore, ScheduleColumns};
        use crate::records::{ApiKey, CenterSettings, Credentials, HoursRecord, IntegrationSettings, Session};
        use crate::sql::not_found_unless_one;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use std::collections::HashMap;
        use switchboard_core::presence::PresenceState;
        use switchboard_core::{
            BuiltinRole, CapacityProfile, CapacityProfileId, Channel, Email, EmailList, Language, Name, QueueId,
            QueueKind, QueueNode, QueueTree, Role, RoleKey, RoleScope, SiteId, Team, TeamId, User, UserId, Username,
        };

        const USER_COLUMNS: &str = "id, username, display_name, email, role_key, capacity_profile_id, languages, \
             emergency_contacts, site_id, totp_enabled, disabled, presence, presence_since, presence_forced_from, created_at";
        const QUEUE_COLUMNS: &str = "id, channel, parent_id, name, kind, position, priority, languages";
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

        fn api_key_from_row(row: &$row) -> StoreResult<ApiKey> {
            Ok(ApiKey {
                key_id: row.try_get("key_id")?,
                name: row.try_get("name")?,
                secret_hash: row.try_get("secret_hash")?,
                created_at: codec::time(row.try_get("created_at")?)?,
                scopes: codec::split(&row.try_get::<String, _>("scopes")?).map(str::to_owned).collect(),
            })
        }

        fn hours_from_row(row: &$row) -> StoreResult<HoursRecord> {
            let columns = ScheduleColumns {
                time_zone: row.try_get("time_zone")?,
                periods: row.try_get("periods")?,
                holidays: row.try_get("holidays")?,
                closures: row.try_get("closures")?,
            };
            Ok(HoursRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                scope: scope(
                    row.try_get::<Option<String>, _>("queue_id")?.as_deref(),
                    row.try_get::<Option<String>, _>("channel")?.as_deref(),
                    row.try_get::<Option<String>, _>("language")?.as_deref(),
                )?,
                schedule: schedule(&columns)?,
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
            let site: Option<String> = row.try_get("site_id")?;
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
                site: site.as_deref().map(|s| codec::id(s, SiteId::parse)).transpose()?,
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
                for (table, column) in [("team_members", "team_id"), ("team_managers", "team_id"), ("queue_agents", "queue_id")] {
                    // One user's rows through the index on user_id (migration 0015); everyone's
                    // in one scan.
                    let rows = match user {
                        Some(user) => sqlx::query(&format!("SELECT user_id, {column} AS target FROM {table} WHERE user_id = $1"))
                            .bind(user.to_string())
                            .fetch_all(self.reader())
                            .await?,
                        None => sqlx::query(&format!("SELECT user_id, {column} AS target FROM {table}"))
                            .fetch_all(self.reader())
                            .await?,
                    };
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

            /// Brings the built-in roles up to date with this version's definitions.
            pub(super) async fn ensure_builtin_roles(&self) -> StoreResult<()> {
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

        fn parent_key(node: &QueueNode) -> String {
            node.parent.map(|p| p.to_string()).unwrap_or_default()
        }

        #[async_trait]
        impl DirectoryStore for $store {
            async fn center_settings(&self) -> StoreResult<CenterSettings> {
                let row = sqlx::query("SELECT name, time_zone, languages, country, callback_pool FROM center_settings WHERE id = 1")
                    .fetch_one(self.reader()).await?;
                Ok(CenterSettings {
                    name: row.try_get("name")?,
                    time_zone: row.try_get("time_zone")?,
                    languages: codec::languages(&row.try_get::<String, _>("languages")?)?,
                    country: row.try_get("country")?,
                    callback_pool: row.try_get("callback_pool")?,
                })
            }

            async fn update_center_settings(&self, settings: &CenterSettings) -> StoreResult<()> {
                sqlx::query("UPDATE center_settings SET name = $1, time_zone = $2, languages = $3, country = $4, callback_pool = $5 WHERE id = 1")
                    .bind(&settings.name)
                    .bind(&settings.time_zone)
                    .bind(codec::language_texts(&settings.languages))
                    .bind(&settings.country)
                    .bind(&settings.callback_pool)
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
                     presence_since, presence_forced_from, created_at, site_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, 0, $11, $12, $13, $14, $15, $16)",
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
                .bind(user.site.map(|s| s.to_string()))
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("that username is taken, or the role, capacity profile or site does not exist"))?;
                write_user_links(&mut tx, user).await
                    .map_err(|e| e.conflict_as("a team or queue given does not exist"))?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_user(&self, user: &User) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query(
                    "UPDATE users SET username = $2, display_name = $3, email = $4, role_key = $5, capacity_profile_id = $6, \
                     languages = $7, emergency_contacts = $8, disabled = $9, site_id = $10 WHERE id = $1",
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
                .bind(user.site.map(|s| s.to_string()))
                .execute(&mut *tx).await
                .map_err(|e| StoreError::from(e).conflict_as("that username is taken, or the role, capacity profile or site does not exist"))?;
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
                    totp_secret: self.secrets().open_opt("totp_secret", row.try_get("totp_secret")?)?,
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
                    .bind(id.to_string()).bind(self.secrets().seal_opt("totp_secret", secret)?).bind(enabled && secret.is_some())
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "user")
            }

            async fn use_totp_step(&self, id: UserId, step: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
                    .bind(id.to_string()).bind(step).execute(self.writer()).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_presence(&self, id: UserId, presence: &PresenceState) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query("UPDATE users SET presence = $2, presence_since = $3, presence_forced_from = $4 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(presence.current().to_string())
                    .bind(millis(presence.since()))
                    .bind(presence.forced_from().map(ToString::to_string))
                    .execute(&mut *tx).await?;
                not_found_unless_one(done.rows_affected(), "user")?;
                // The history dashboards draw agents by status from.
                sqlx::query("INSERT INTO presence_changes (user_id, presence, at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(presence.current().to_string())
                    .bind(millis(presence.since()))
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
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
                let columns = schedule_columns(&hours.schedule);
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
                sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, mfa, step_up_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&session.token_hash)
                    .bind(session.user_id.to_string())
                    .bind(millis(session.created_at))
                    .bind(millis(session.expires_at))
                    .bind(session.mfa)
                    .bind(session.step_up_at.map(millis))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn get_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Session>> {
                let row = sqlx::query("SELECT token_hash, user_id, created_at, expires_at, mfa, step_up_at FROM sessions WHERE token_hash = $1 AND expires_at > $2")
                    .bind(token_hash).bind(millis(now)).fetch_optional(self.reader()).await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(Session {
                    token_hash: row.try_get("token_hash")?,
                    user_id: codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?,
                    created_at: codec::time(row.try_get("created_at")?)?,
                    expires_at: codec::time(row.try_get("expires_at")?)?,
                    mfa: row.try_get("mfa")?,
                    step_up_at: codec::opt_time(row.try_get("step_up_at")?)?,
                }))
            }

            async fn step_up_session(&self, token_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
                let done = sqlx::query("UPDATE sessions SET step_up_at = $1 WHERE token_hash = $2")
                    .bind(millis(at)).bind(token_hash).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "session")
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
                sqlx::query("INSERT INTO api_keys (key_id, name, secret_hash, created_at, scopes) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&key.key_id).bind(&key.name).bind(&key.secret_hash).bind(millis(key.created_at))
                    .bind(codec::join(&key.scopes))
                    .execute(self.writer()).await?;
                Ok(())
            }

            async fn get_api_key(&self, key_id: &str) -> StoreResult<Option<ApiKey>> {
                let row = sqlx::query("SELECT key_id, name, secret_hash, created_at, scopes FROM api_keys WHERE key_id = $1")
                    .bind(key_id).fetch_optional(self.reader()).await?;
                row.as_ref().map(api_key_from_row).transpose()
            }

            async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
                let rows = sqlx::query("SELECT key_id, name, secret_hash, created_at, scopes FROM api_keys ORDER BY created_at")
                    .fetch_all(self.reader()).await?;
                rows.iter().map(api_key_from_row).collect()
            }

            async fn delete_api_key(&self, key_id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM api_keys WHERE key_id = $1").bind(key_id).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "API key")
            }

            async fn integration_settings(&self, new_identity_secret: &str) -> StoreResult<IntegrationSettings> {
                sqlx::query("INSERT INTO integration_settings (id, identity_secret, crm_connector) VALUES (1, $1, 'builtin') ON CONFLICT (id) DO NOTHING")
                    .bind(self.secrets().seal("identity_secret", new_identity_secret)?).execute(self.writer()).await?;
                let row = sqlx::query("SELECT identity_secret, crm_connector, crm_webhook_url, crm_webhook_secret, crm_record_url, zendesk_url, zendesk_email, zendesk_token FROM integration_settings WHERE id = 1")
                    .fetch_one(self.writer()).await?;
                Ok(IntegrationSettings {
                    identity_secret: self.secrets().open("identity_secret", &row.try_get::<String, _>("identity_secret")?)?,
                    crm_connector: row.try_get("crm_connector")?,
                    crm_webhook_url: row.try_get("crm_webhook_url")?,
                    crm_webhook_secret: self.secrets().open_opt("crm_webhook_secret", row.try_get("crm_webhook_secret")?)?,
                    crm_record_url: row.try_get("crm_record_url")?,
                    zendesk_url: row.try_get("zendesk_url")?,
                    zendesk_email: row.try_get("zendesk_email")?,
                    zendesk_token: self.secrets().open_opt("zendesk_token", row.try_get("zendesk_token")?)?,
                })
            }

            async fn update_integration_settings(&self, settings: &IntegrationSettings) -> StoreResult<()> {
                let done = sqlx::query("UPDATE integration_settings SET identity_secret = $1, crm_connector = $2, crm_webhook_url = $3, crm_webhook_secret = $4, crm_record_url = $5, zendesk_url = $6, zendesk_email = $7, zendesk_token = $8 WHERE id = 1")
                    .bind(self.secrets().seal("identity_secret", &settings.identity_secret)?)
                    .bind(&settings.crm_connector)
                    .bind(&settings.crm_webhook_url)
                    .bind(self.secrets().seal_opt("crm_webhook_secret", settings.crm_webhook_secret.as_deref())?)
                    .bind(&settings.crm_record_url)
                    .bind(&settings.zendesk_url)
                    .bind(&settings.zendesk_email)
                    .bind(self.secrets().seal_opt("zendesk_token", settings.zendesk_token.as_deref())?)
                    .execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "integration settings")
            }
        }
    };
}

pub(crate) use directory_sql;
