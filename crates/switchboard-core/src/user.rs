//! Users and teams as the core sees them.

use crate::ids::{CapacityProfileId, QueueId, SiteId, TeamId, UserId};
use crate::permission::RoleKey;
use crate::presence::PresenceState;
use crate::text::{Email, EmailList, Language, Name, Username};
use chrono::{DateTime, Utc};

/// A portal user. Agents are users whose role lets them handle contacts.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: Name,
    pub email: Option<Email>,
    pub role: RoleKey,
    /// Teams the user is a member of.
    pub teams: Vec<TeamId>,
    /// Teams the user manages (meaningful for team-scoped roles such as manager).
    pub managed_teams: Vec<TeamId>,
    /// Leaf queues the user takes contacts from.
    pub queues: Vec<QueueId>,
    /// Languages the user serves contacts in; empty means every language.
    pub languages: Vec<Language>,
    pub capacity_profile: Option<CapacityProfileId>,
    /// People to mail when this user dials an emergency number (EMG-7).
    pub emergency_contacts: EmailList,
    /// The site the user works at, whose civic address is their location for emergency calls
    /// unless they have an address of their own.
    pub site: Option<SiteId>,
    pub presence: PresenceState,
    /// A disabled user cannot sign in and is routed nothing; their history stays.
    pub disabled: bool,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A team of users.
#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub id: TeamId,
    pub name: Name,
    pub created_at: DateTime<Utc>,
}
