//! Stored records that are not domain types of their own: settings, sessions, keys, schedules.

use chrono::{DateTime, Utc};
use switchboard_core::hours::{HoursScope, Schedule};
use switchboard_core::{Language, UserId};

/// Center-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CenterSettings {
    pub name: String,
    /// The default time zone (for ticket names and new schedules), an IANA name.
    pub time_zone: String,
    /// Languages the center serves.
    pub languages: Vec<Language>,
}

/// What a user signs in with.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub password_hash: Option<String>,
    /// Base32 TOTP secret; present while enrolment is pending or enabled.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
}

/// A portal session. Only the SHA-256 of its token is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether the sign-in included a second factor (needed for recordings, REC-5).
    pub mfa: bool,
}

/// An Apps API credential. Only the SHA-256 of the secret is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub key_id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A business-hours schedule and what it applies to.
#[derive(Clone, Debug, PartialEq)]
pub struct HoursRecord {
    pub id: String,
    pub name: String,
    pub scope: HoursScope,
    pub schedule: Schedule,
}
