//! Wire types: what the HTTP API and the event stream send and accept. Only this module (and the
//! few views kept next to their handlers in `http/`) derives Serialize/Deserialize for the
//! outside world; domain types convert explicitly. The event stream's JSON is made here, from
//! the services' `DomainEvent`, once per event (`event_json`).
//! Requests deny unknown fields, so a misspelt field is a clear 400, not silently ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use switchboard_core::hours::{HoursScope, Schedule};
use switchboard_core::{CapacityProfile, Contact, Language, QueueNode, Role, Team, User};
use switchboard_services::events::DomainEvent;
use switchboard_store::{ApiKey, CenterSettings, HoursRecord};
use utoipa::ToSchema;

/// Deserialises a field that may be absent (keep), `null` (clear) or a value (set).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn languages(list: &[Language]) -> Vec<String> {
    list.iter().map(|l| l.to_string()).collect()
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// Role key, such as `agent` or a custom role's key.
    pub role: String,
    pub teams: Vec<String>,
    pub managed_teams: Vec<String>,
    /// Leaf queues the user takes contacts from.
    pub queues: Vec<String>,
    pub languages: Vec<String>,
    pub capacity_profile_id: Option<String>,
    /// Semicolon-separated emails to notify when the user dials an emergency number.
    pub emergency_contacts: String,
    /// The site the user works at (their location for emergency calls unless they have an
    /// address of their own).
    pub site_id: Option<String>,
    /// `available`, `busy`, `break`, `do_not_disturb`, `offline` or `custom:<name>`.
    pub presence: String,
    pub presence_since: DateTime<Utc>,
    pub disabled: bool,
    pub totp_enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.to_string(),
            display_name: user.display_name.to_string(),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
            role: user.role.to_string(),
            teams: user.teams.iter().map(ToString::to_string).collect(),
            managed_teams: user.managed_teams.iter().map(ToString::to_string).collect(),
            queues: user.queues.iter().map(ToString::to_string).collect(),
            languages: languages(&user.languages),
            capacity_profile_id: user.capacity_profile.map(|p| p.to_string()),
            emergency_contacts: user.emergency_contacts.joined(),
            site_id: user.site.map(|s| s.to_string()),
            presence: user.presence.current().to_string(),
            presence_since: user.presence.since(),
            disabled: user.disabled,
            totp_enabled: user.totp_enabled,
            created_at: user.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub role: String,
    /// At least 8 characters; without one the user cannot sign in until a password is set.
    pub password: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub managed_teams: Vec<String>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    pub capacity_profile_id: Option<String>,
    pub emergency_contacts: Option<String>,
    /// The site the user works at.
    pub site_id: Option<String>,
}

/// Fields to change; absent fields stay as they are, `null` clears a nullable one.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub username: Option<String>,
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub role: Option<String>,
    pub teams: Option<Vec<String>>,
    pub managed_teams: Option<Vec<String>>,
    pub queues: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub capacity_profile_id: Option<Option<String>>,
    pub emergency_contacts: Option<String>,
    /// The site the user works at; `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub site_id: Option<Option<String>>,
    pub disabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Team> for TeamView {
    fn from(team: &Team) -> Self {
        Self {
            id: team.id.to_string(),
            name: team.name.to_string(),
            created_at: team.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    pub key: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// `center` or `assigned_teams`.
    pub scope: String,
    pub builtin: bool,
}

impl From<&Role> for RoleView {
    fn from(role: &Role) -> Self {
        Self {
            key: role.key.to_string(),
            name: role.name.clone(),
            permissions: role
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            scope: role.scope.as_str().to_owned(),
            builtin: role.builtin,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub key: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// `center` (default) or `assigned_teams`.
    pub scope: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChanges {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueView {
    pub id: String,
    /// `voice`, `web`, `mobile` or `sms`.
    pub channel: String,
    pub parent_id: Option<String>,
    pub name: String,
    /// `menu` or `leaf`.
    pub kind: String,
    pub position: i32,
    pub priority: i32,
    pub languages: Vec<String>,
    /// The path from the top of the menu ("Billing > Refunds"): a contact's issue.
    pub path: String,
}

impl QueueView {
    pub fn new(node: &QueueNode, path: String) -> Self {
        Self {
            id: node.id.to_string(),
            channel: node.channel.as_str().to_owned(),
            parent_id: node.parent.map(|p| p.to_string()),
            name: node.name.to_string(),
            kind: node.kind.as_str().to_owned(),
            position: node.position,
            priority: node.priority,
            languages: languages(&node.languages),
            path,
        }
    }
}

/// A menu node with its children, as the consumer SDKs show it.
#[derive(Serialize, ToSchema)]
pub struct MenuNode {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub path: String,
    #[schema(no_recursion)]
    pub children: Vec<MenuNode>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    pub channel: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub position: Option<i32>,
    pub priority: Option<i32>,
    #[serde(default)]
    pub languages: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueChanges {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub position: Option<i32>,
    pub priority: Option<i32>,
    pub languages: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct CapacityProfileView {
    pub id: String,
    pub name: String,
    pub max_chats: u16,
    pub max_calls: u16,
    pub voice_outbound: bool,
}

impl From<&CapacityProfile> for CapacityProfileView {
    fn from(p: &CapacityProfile) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.to_string(),
            max_chats: p.max_chats(),
            max_calls: p.max_calls(),
            voice_outbound: p.voice_outbound,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityProfileInput {
    pub name: String,
    pub max_chats: u16,
    pub max_calls: u16,
    #[serde(default)]
    pub voice_outbound: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScopeView {
    pub queue_id: Option<String>,
    pub channel: Option<String>,
    pub language: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HoursView {
    pub id: String,
    pub name: String,
    /// What the schedule applies to; all empty is the global schedule.
    pub scope: ScopeView,
    /// IANA time zone, such as `America/New_York`.
    pub time_zone: String,
    /// Weekly periods such as `mon 08:00-18:00`; an end before the start crosses midnight.
    pub periods: Vec<String>,
    /// `2026-12-25` (one date) or `12-25` (every year).
    pub holidays: Vec<String>,
    /// `start/end` RFC 3339 instants.
    pub closures: Vec<String>,
}

pub fn scope_view(scope: &HoursScope) -> ScopeView {
    ScopeView {
        queue_id: scope.queue.map(|q| q.to_string()),
        channel: scope.channel.map(|c| c.as_str().to_owned()),
        language: scope.language.as_ref().map(ToString::to_string),
    }
}

fn texts<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(T::to_string).collect()
}

impl From<&HoursRecord> for HoursView {
    fn from(record: &HoursRecord) -> Self {
        let schedule: &Schedule = &record.schedule;
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            scope: scope_view(&record.scope),
            time_zone: schedule.time_zone().name().to_owned(),
            periods: texts(schedule.periods()),
            holidays: texts(schedule.holidays()),
            closures: texts(schedule.closures()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursInput {
    pub name: String,
    #[serde(default)]
    pub scope: ScopeView,
    /// Defaults to the center's time zone.
    pub time_zone: Option<String>,
    pub periods: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub closures: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenStatus {
    pub open: bool,
    /// The schedule that decided, if any (none means always open).
    pub schedule_id: Option<String>,
    pub at: DateTime<Utc>,
    /// The next free slot starts, when asked for.
    pub next_slots: Vec<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsView {
    pub name: String,
    pub time_zone: String,
    pub languages: Vec<String>,
    /// The center's country, `US`, `CA`, `PR`, `GB` or `DK` (its numbering plan and emergency
    /// numbers); when changing settings, absent keeps the current one.
    #[serde(default)]
    pub country: Option<String>,
    /// The callback numbers leased to agents who dial an emergency number (EMG-3): numbers
    /// and ranges separated by commas, semicolons or new lines, such as `15550190-15550199`
    /// (at most 1,000 numbers); when changing settings, absent keeps the current pool.
    #[serde(default)]
    pub callback_pool: Option<String>,
}

impl From<&CenterSettings> for SettingsView {
    fn from(s: &CenterSettings) -> Self {
        Self {
            name: s.name.clone(),
            time_zone: s.time_zone.clone(),
            languages: languages(&s.languages),
            country: Some(s.country.clone()),
            callback_pool: Some(s.callback_pool.clone()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub presence: String,
    pub presence_since: DateTime<Utc>,
    pub teams: Vec<String>,
    pub calls: u16,
    pub chats: u16,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceInput {
    /// `available`, `busy`, `break`, `do_not_disturb`, `offline` or `custom:<name>`.
    pub presence: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomStatusInput {
    pub name: String,
}

/// A call's record (call history), live or ended.
#[derive(Serialize, ToSchema, Clone)]
pub struct CallView {
    pub id: String,
    /// The caller's number or SIP user.
    pub caller: String,
    /// The number dialled.
    pub did: String,
    /// Digits chosen in the IVR, in order.
    pub ivr_path: String,
    pub queue_id: Option<String>,
    pub agent_id: Option<String>,
    pub contact_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub ringing_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Milliseconds in queue until answered (or until the caller left).
    pub wait_ms: Option<i64>,
    /// Milliseconds from the answer to the end.
    pub talk_ms: Option<i64>,
    /// `in_progress`, `answered`, `abandoned`, `left_in_menu`, `transferred_out`, `failed`,
    /// `interrupted`, or `unanswered` (an agent's outbound call nobody answered).
    pub disposition: String,
    /// `inbound`, or `outbound` for an agent's own call (then `caller` is the caller id
    /// presented and `did` the number called).
    pub direction: String,
    /// Milliseconds the agent heard the whisper before the caller was connected (part of the
    /// wait).
    pub whisper_ms: Option<u32>,
    /// `caller`, `agent`, `number` or `system`.
    pub ended_by: Option<String>,
    /// Transfers in order: `queue:<id>`, `agent:<id>` or `number:<digits>`.
    pub transfers: Vec<String>,
    /// RTP packets: `from_caller`, `to_caller`, `from_agent`, `to_agent`.
    pub rtp: RtpView,
    /// The caller's profile flags (RDP-2): from the trunk's header flags, or set over the Apps
    /// API during the call.
    pub properties: crate::chat::protocol::Flags,
    /// The recording running now (live calls only): its id and whether the agent paused it.
    pub recording: Option<LiveRecordingView>,
    /// `outgoing` for an emergency call the agent dialled, `callback` for the emergency
    /// service calling back on their leased number (EMG-4..6); only the agent ever sees one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency: Option<&'static str>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct LiveRecordingView {
    pub id: String,
    /// `recording`, or `paused` while the agent redacts.
    pub state: String,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct RtpView {
    pub from_caller: u32,
    pub to_caller: u32,
    pub from_agent: u32,
    pub to_agent: u32,
}

impl From<&switchboard_core::voice::CallRecord> for CallView {
    fn from(c: &switchboard_core::voice::CallRecord) -> Self {
        Self {
            id: c.id.to_string(),
            caller: c.caller.clone(),
            did: c.did.clone(),
            ivr_path: c.ivr_path.clone(),
            queue_id: c.queue.map(|q| q.to_string()),
            agent_id: c.agent.map(|a| a.to_string()),
            contact_id: c.contact.map(|x| x.to_string()),
            started_at: c.started_at,
            queued_at: c.queued_at,
            ringing_at: c.ringing_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            wait_ms: c.wait_ms(),
            talk_ms: c.talk_ms(),
            disposition: c.disposition.as_str().to_owned(),
            direction: c.direction.as_str().to_owned(),
            whisper_ms: c.whisper_ms,
            ended_by: c.ended_by.clone(),
            transfers: c.transfers.clone(),
            rtp: RtpView {
                from_caller: c.rtp.from_caller,
                to_caller: c.rtp.to_caller,
                from_agent: c.rtp.from_agent,
                to_agent: c.rtp.to_agent,
            },
            properties: crate::chat::flags(&c.properties),
            recording: c.recording.map(|r| LiveRecordingView {
                id: r.id.to_string(),
                state: if r.paused { "paused" } else { "recording" }.to_owned(),
            }),
            emergency: c.emergency.map(|e| e.as_str()),
        }
    }
}

#[derive(Serialize, ToSchema, Clone)]
pub struct ContactView {
    pub id: String,
    pub channel: String,
    pub queue_id: Option<String>,
    /// The queue path when the contact arrived.
    pub issue: String,
    pub priority: i32,
    pub language: Option<String>,
    /// `queued`, `assigned`, `ended` or `abandoned`.
    pub status: String,
    pub agent_id: Option<String>,
    pub customer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    /// The user who ended it when it was not theirs (MON-7), named as they were then.
    pub ended_by: Option<EndedByView>,
    /// Milliseconds waited for an agent (so far, for a queued contact: not filled).
    pub wait_ms: Option<i64>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct EndedByView {
    pub user_id: String,
    pub name: String,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        Self {
            id: c.id.to_string(),
            channel: c.channel.as_str().to_owned(),
            queue_id: c.queue.map(|q| q.to_string()),
            issue: c.issue.clone(),
            priority: c.priority,
            language: c.language.as_ref().map(ToString::to_string),
            status: c.status.as_str().to_owned(),
            agent_id: c.agent.map(|a| a.to_string()),
            customer: c.customer.clone(),
            created_at: c.created_at,
            assigned_at: c.assigned_at,
            ended_at: c.ended_at,
            end_reason: c.end_reason.clone(),
            ended_by: c.ended_by.as_ref().map(|by| EndedByView {
                user_id: by.user.to_string(),
                name: by.name.clone(),
            }),
            wait_ms: c.wait_millis(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactInput {
    /// A leaf queue.
    pub queue_id: String,
    /// Defaults to the queue's priority.
    pub priority: Option<i32>,
    pub language: Option<String>,
    /// Who the contact is from (a name, number or visitor id), at most 200 characters.
    pub customer: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// What the key may do beyond the Apps API: `recordings` (download call recordings).
    pub scopes: Vec<String>,
    /// Present only in the answer that creates the key; store it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            key_id: k.key_id.clone(),
            name: k.name.clone(),
            created_at: k.created_at,
            scopes: k.scopes.clone(),
            secret: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    pub name: String,
    /// Optional scopes: `recordings` lets the key download call recordings (REC-5).
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
    /// The 6-digit code, required once two-factor sign-in is enabled.
    pub totp_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub user: UserView,
    /// Whether this session signed in with a second factor.
    pub mfa: bool,
    pub permissions: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// The `otpauth://` URI to show as a QR code.
    pub otpauth_uri: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what failed in words.
    pub status: String,
    /// The store's backend: `sqlite` or `postgres`.
    pub database: String,
    /// The parts that failed: `database_read` (the database does not answer),
    /// `database_write` (it answers but does not take writes in time). Empty when healthy.
    pub failing: Vec<String>,
}

/// An emergency call in progress, as supervisors are alerted to it.
#[derive(Serialize, ToSchema)]
pub struct EmergencyAlertView {
    pub call_id: String,
    pub agent_id: String,
    pub agent_name: String,
    /// The emergency number called (`911`).
    pub number: String,
    /// A carriers' test number (933).
    pub test: bool,
    /// When the agent dialled.
    pub at: DateTime<Utc>,
}

impl From<&switchboard_services::events::EmergencyAlert> for EmergencyAlertView {
    fn from(alert: &switchboard_services::events::EmergencyAlert) -> Self {
        EmergencyAlertView {
            call_id: alert.call.to_string(),
            agent_id: alert.agent.to_string(),
            agent_name: alert.agent_name.clone(),
            number: alert.number.clone(),
            test: alert.test,
            at: alert.at,
        }
    }
}

/// Messages on the live event stream (`/api/v1/events`), one JSON object per text frame.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    /// Sent first on every stream.
    Hello {
        user_id: String,
        permissions: Vec<String>,
    },
    PresenceChanged {
        user_id: String,
        presence: String,
        since: DateTime<Utc>,
    },
    /// A contact started waiting in a queue.
    ContactQueued { contact: ContactView },
    /// A contact reached an agent.
    ContactAssigned { contact: ContactView },
    /// A contact ended (or was abandoned, per its status).
    ContactEnded { contact: ContactView },
    /// A call started, moved (menu, queue, ringing, answered, transferred) or ended.
    CallUpdated { call: CallView },
    /// An agent dialled an emergency number (the supervisors' live alert). Not a call for the
    /// live call lists: emergency calls are never shown there.
    EmergencyStarted { emergency: EmergencyAlertView },
    /// The emergency call ended.
    EmergencyEnded {
        call_id: String,
        agent_id: String,
        at: DateTime<Utc>,
    },
    /// The stream fell behind and this many events were skipped.
    Lagged { missed: u64 },
}

impl From<&DomainEvent> for EventPayload {
    fn from(event: &DomainEvent) -> Self {
        match event {
            DomainEvent::PresenceChanged {
                user,
                presence,
                since,
            } => EventPayload::PresenceChanged {
                user_id: user.to_string(),
                presence: presence.to_string(),
                since: *since,
            },
            DomainEvent::ContactQueued(contact) => EventPayload::ContactQueued {
                contact: ContactView::from(contact),
            },
            DomainEvent::ContactAssigned(contact) => EventPayload::ContactAssigned {
                contact: ContactView::from(contact),
            },
            DomainEvent::ContactEnded(contact) => EventPayload::ContactEnded {
                contact: ContactView::from(contact),
            },
            DomainEvent::CallUpdated(call) => EventPayload::CallUpdated {
                call: CallView::from(call),
            },
            DomainEvent::EmergencyStarted(alert) => EventPayload::EmergencyStarted {
                emergency: EmergencyAlertView::from(alert),
            },
            DomainEvent::EmergencyEnded { call, agent, at } => EventPayload::EmergencyEnded {
                call_id: call.to_string(),
                agent_id: agent.to_string(),
                at: *at,
            },
        }
    }
}

/// A domain event as the event stream sends it: the encoder every watcher shares (see
/// `switchboard_services::events`), so each event is encoded once.
pub fn event_json(event: &DomainEvent) -> Option<String> {
    match serde_json::to_string(&EventPayload::from(event)) {
        Ok(json) => Some(json),
        Err(error) => {
            tracing::error!(%error, "event not serialisable");
            None
        }
    }
}
