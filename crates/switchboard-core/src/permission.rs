//! Roles and permissions: what a user may do, and on whom.
//!
//! A role is a set of permissions plus a scope. Center-scoped roles act on everyone; a role
//! scoped to assigned teams (the built-in manager) acts only on users who belong to one of the
//! teams the acting user manages.

use crate::ids::{QueueId, TeamId, UserId};
use crate::queue::Channel;
use crate::text::TextError;
use std::fmt;

/// One thing a role may allow.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Permission {
    /// Take contacts: be routed calls and chats, set one's own presence to available.
    HandleContacts,
    /// Listen to a live call without joining it (MON-1).
    MonitorCallsListen,
    /// Join a live call as a third party (MON-2).
    MonitorCallsBarge,
    /// Speak to the agent only during a live call (MON-2, beyond).
    MonitorCallsCoach,
    /// View a live chat transcript (MON-3).
    MonitorChatsView,
    /// End a queued or connected call or chat (MON-7; "Monitor-Chats-Edit").
    MonitorChatsEdit,
    /// Play or download stored recordings (REC-5).
    RecordingsAccess,
    /// Change center settings: queues, business hours, capacity profiles, roles, API keys.
    SettingsEdit,
    /// Create, change and remove users and teams.
    UsersEdit,
    /// Read the restricted emergency log (EMG-6): who dialled an emergency number, when, the
    /// callback number and location sent, whether the notification went.
    EmergencyLogView,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::HandleContacts,
        Permission::MonitorCallsListen,
        Permission::MonitorCallsBarge,
        Permission::MonitorCallsCoach,
        Permission::MonitorChatsView,
        Permission::MonitorChatsEdit,
        Permission::RecordingsAccess,
        Permission::SettingsEdit,
        Permission::UsersEdit,
        Permission::EmergencyLogView,
    ];

    /// The stable name used on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::HandleContacts => "handle_contacts",
            Permission::MonitorCallsListen => "monitor_calls_listen",
            Permission::MonitorCallsBarge => "monitor_calls_barge",
            Permission::MonitorCallsCoach => "monitor_calls_coach",
            Permission::MonitorChatsView => "monitor_chats_view",
            Permission::MonitorChatsEdit => "monitor_chats_edit",
            Permission::RecordingsAccess => "recordings_access",
            Permission::SettingsEdit => "settings_edit",
            Permission::UsersEdit => "users_edit",
            Permission::EmergencyLogView => "emergency_log_view",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| TextError::Invalid {
                field: "permission",
                detail: format!(
                    "unknown permission `{}`",
                    text.chars().take(64).collect::<String>()
                ),
            })
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Whether the permission acts on other users (and so is limited by a team scope).
    pub const fn acts_on_others(self) -> bool {
        !matches!(self, Permission::HandleContacts)
    }
}

/// How a monitor takes part in a call (MON-1, MON-2).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum MonitorMode {
    /// Hears the caller and the agent; heard by nobody.
    Listen,
    /// Hears both; heard by the agent only.
    Coach,
    /// Hears both; heard by both.
    Barge,
}

impl MonitorMode {
    pub const ALL: [MonitorMode; 3] = [MonitorMode::Listen, MonitorMode::Coach, MonitorMode::Barge];

    pub const fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Coach => "coach",
            MonitorMode::Barge => "barge",
        }
    }

    pub fn parse(text: &str) -> Option<MonitorMode> {
        MonitorMode::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// The permission each mode needs (each its own, MON-2).
    pub const fn permission(self) -> Permission {
        match self {
            MonitorMode::Listen => Permission::MonitorCallsListen,
            MonitorMode::Coach => Permission::MonitorCallsCoach,
            MonitorMode::Barge => Permission::MonitorCallsBarge,
        }
    }
}

/// A set of permissions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub fn of(permissions: &[Permission]) -> Self {
        Self(permissions.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn all() -> Self {
        Self::of(&Permission::ALL)
    }

    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub const fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    fn any_acting_on_others(self) -> bool {
        self.iter().any(Permission::acts_on_others)
    }
}

/// Whom a role's permissions reach.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RoleScope {
    /// Everyone in the center.
    Center,
    /// Only users in teams the acting user manages.
    AssignedTeams,
}

impl RoleScope {
    pub const fn as_str(self) -> &'static str {
        match self {
            RoleScope::Center => "center",
            RoleScope::AssignedTeams => "assigned_teams",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "center" => Ok(RoleScope::Center),
            "assigned_teams" => Ok(RoleScope::AssignedTeams),
            other => Err(TextError::Invalid {
                field: "scope",
                detail: format!(
                    "`{}` is not center or assigned_teams",
                    other.chars().take(40).collect::<String>()
                ),
            }),
        }
    }
}

/// The roles every center has. They cannot be changed or removed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BuiltinRole {
    Admin,
    Manager,
    Supervisor,
    Agent,
    Trainee,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 5] = [
        BuiltinRole::Admin,
        BuiltinRole::Manager,
        BuiltinRole::Supervisor,
        BuiltinRole::Agent,
        BuiltinRole::Trainee,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            BuiltinRole::Admin => "admin",
            BuiltinRole::Manager => "manager",
            BuiltinRole::Supervisor => "supervisor",
            BuiltinRole::Agent => "agent",
            BuiltinRole::Trainee => "trainee",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    /// The role as stored: its permissions and scope.
    pub fn role(self) -> Role {
        use Permission::*;
        let (name, permissions, scope) = match self {
            BuiltinRole::Admin => ("Admin", PermissionSet::all(), RoleScope::Center),
            BuiltinRole::Manager => (
                "Manager",
                PermissionSet::of(&[
                    HandleContacts,
                    MonitorCallsListen,
                    MonitorCallsBarge,
                    MonitorCallsCoach,
                    MonitorChatsView,
                    MonitorChatsEdit,
                    RecordingsAccess,
                    UsersEdit,
                ]),
                RoleScope::AssignedTeams,
            ),
            BuiltinRole::Supervisor => (
                "Supervisor",
                PermissionSet::of(&[
                    HandleContacts,
                    MonitorCallsListen,
                    MonitorCallsBarge,
                    MonitorCallsCoach,
                    MonitorChatsView,
                    RecordingsAccess,
                ]),
                RoleScope::Center,
            ),
            BuiltinRole::Agent => (
                "Agent",
                PermissionSet::of(&[HandleContacts]),
                RoleScope::Center,
            ),
            BuiltinRole::Trainee => (
                "Trainee",
                PermissionSet::of(&[HandleContacts, MonitorCallsListen, MonitorChatsView]),
                RoleScope::Center,
            ),
        };
        Role {
            key: RoleKey(self.key().to_owned()),
            name: name.to_owned(),
            permissions,
            scope,
            builtin: true,
        }
    }
}

/// A role's key: `admin`, `supervisor`, or a custom role's own key such as `team-lead`
/// (2 to 40 of `a-z 0-9 _ -`, starting with a letter).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RoleKey(String);

impl RoleKey {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let ok = (2..=40).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(TextError::Invalid {
                field: "role key",
                detail: "use 2 to 40 of a-z, 0-9, '_' and '-', starting with a letter".into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_builtin(&self) -> bool {
        BuiltinRole::from_key(&self.0).is_some()
    }
}

impl fmt::Display for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role: built-in or custom.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Role {
    pub key: RoleKey,
    pub name: String,
    pub permissions: PermissionSet,
    pub scope: RoleScope,
    pub builtin: bool,
}

impl Role {
    /// Whether a user holding this role may give `other` to someone. Nobody can hand out
    /// a permission they lack, and a team-scoped role cannot hand out a center-wide one.
    pub fn may_grant(&self, other: &Role) -> bool {
        other.permissions.is_subset_of(self.permissions)
            && !(self.scope == RoleScope::AssignedTeams
                && other.scope == RoleScope::Center
                && other.permissions.any_acting_on_others())
    }
}

/// Whom an action is aimed at.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The center as a whole: settings, queues, contacts not yet with an agent.
    Center,
    /// A user who is a member of these teams.
    User { id: UserId, teams: &'a [TeamId] },
}

/// A signed-in user as the rules see them.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
    /// Teams this user belongs to.
    pub teams: Vec<TeamId>,
    /// Teams this user manages (what a team-scoped role reaches).
    pub managed_teams: Vec<TeamId>,
    /// Leaf queues this user takes contacts from.
    pub queues: Vec<QueueId>,
}

/// Something live a user may be shown on the event stream.
#[derive(Clone, Copy, Debug)]
pub enum Watched<'a> {
    /// An agent's presence or the contacts they hold.
    Agent { id: UserId, teams: &'a [TeamId] },
    /// A contact waiting in a queue (not yet with an agent).
    Waiting {
        queue: Option<QueueId>,
        channel: Channel,
    },
}

impl Actor {
    /// `user` acting with their `role`.
    pub fn of(user: &crate::User, role: Role) -> Self {
        Actor {
            user_id: user.id,
            role,
            teams: user.teams.clone(),
            managed_teams: user.managed_teams.clone(),
            queues: user.queues.clone(),
        }
    }

    /// Whether the actor holds `permission` for `target`.
    pub fn can(&self, permission: Permission, target: Target<'_>) -> bool {
        if !self.role.permissions.contains(permission) {
            return false;
        }
        match (self.role.scope, target) {
            (RoleScope::Center, _) => true,
            (RoleScope::AssignedTeams, Target::Center) => !permission.acts_on_others(),
            (RoleScope::AssignedTeams, Target::User { id, teams }) => {
                (id == self.user_id && !permission.acts_on_others())
                    || teams.iter().any(|team| self.managed_teams.contains(team))
            }
        }
    }

    /// Whether the actor holds `permission` for anyone at all (their scope aside).
    pub fn holds(&self, permission: Permission) -> bool {
        self.role.permissions.contains(permission)
    }

    /// Whether the actor may see this on the live event stream. Users see themselves; monitors
    /// and user editors see the agents in their reach; contacts waiting in a queue are seen by
    /// the queue's agents and by anyone who monitors that kind of contact (waiting contacts
    /// belong to no team, so a team-scoped monitor sees them too).
    pub fn may_watch(&self, watched: Watched<'_>) -> bool {
        match watched {
            Watched::Agent { id, teams } => {
                id == self.user_id
                    || [
                        Permission::MonitorCallsListen,
                        Permission::MonitorChatsView,
                        Permission::UsersEdit,
                    ]
                    .into_iter()
                    .any(|p| self.can(p, Target::User { id, teams }))
            }
            Watched::Waiting { queue, channel } => {
                let monitor = if channel.is_call() {
                    Permission::MonitorCallsListen
                } else {
                    Permission::MonitorChatsView
                };
                queue.is_some_and(|q| self.queues.contains(&q))
                    || self.holds(monitor)
                    || self.holds(Permission::MonitorChatsEdit)
            }
        }
    }

    /// Whether the actor may see a call (its live state, its record in history, its events):
    /// a call with an agent is seen as that agent is (by the agent, and by those who watch
    /// agents in their reach, a manager only for their teams); a call without one (at the
    /// menu, waiting, abandoned) as a contact waiting in its queue.
    pub fn may_see_call(&self, agent: Option<(UserId, &[TeamId])>, queue: Option<QueueId>) -> bool {
        match agent {
            Some((id, teams)) => self.may_watch(Watched::Agent { id, teams }),
            None => self.may_watch(Watched::Waiting {
                queue,
                channel: Channel::Voice,
            }),
        }
    }

    /// Whether the actor may act on a live call (hold, transfer, hang up): its agent, or one
    /// who may barge into that agent's calls (in their scope); a call without an agent only
    /// with the permission center-wide.
    pub fn may_control_call(&self, agent: Option<(UserId, &[TeamId])>) -> bool {
        match agent {
            Some((id, teams)) => {
                id == self.user_id
                    || self.can(Permission::MonitorCallsBarge, Target::User { id, teams })
            }
            None => self.can(Permission::MonitorCallsBarge, Target::Center),
        }
    }

    /// Whether the actor may monitor, in `mode`, a call that `agent` (with their teams) is
    /// talking on: the mode's own permission for that agent, and never their own call.
    pub fn may_monitor_call(&self, mode: MonitorMode, agent: (UserId, &[TeamId])) -> bool {
        let (id, teams) = agent;
        id != self.user_id && self.can(mode.permission(), Target::User { id, teams })
    }

    /// Whether the actor may watch a chat's transcript live (MON-3): `monitor_chats_view` for the
    /// chat's agent (a manager only for their teams' agents), or center-wide for a chat still
    /// waiting in its queue (it belongs to no team yet); never their own chat, which they see on
    /// their desk.
    pub fn may_watch_chat(&self, agent: Option<(UserId, &[TeamId])>) -> bool {
        match agent {
            Some((id, teams)) => {
                id != self.user_id
                    && self.can(Permission::MonitorChatsView, Target::User { id, teams })
            }
            None => self.can(Permission::MonitorChatsView, Target::Center),
        }
    }

    /// Whether the actor may end a call or chat that is not theirs, a stuck one in the queued
    /// and connected lists (MON-7): `monitor_chats_edit` for the contact's agent (a manager
    /// only for their teams' agents), or center-wide for one that has no agent.
    pub fn may_end_contact(&self, agent: Option<(UserId, &[TeamId])>) -> bool {
        let target = match agent {
            Some((id, teams)) => Target::User { id, teams },
            None => Target::Center,
        };
        self.can(Permission::MonitorChatsEdit, target)
    }

    /// Whether the actor may place a user in exactly these teams: center-scoped user
    /// editors anywhere, team-scoped ones only within the teams they manage.
    pub fn may_assign_teams(&self, teams: &[TeamId]) -> bool {
        self.holds(Permission::UsersEdit)
            && match self.role.scope {
                RoleScope::Center => true,
                RoleScope::AssignedTeams => {
                    !teams.is_empty() && teams.iter().all(|t| self.managed_teams.contains(t))
                }
            }
    }
}
