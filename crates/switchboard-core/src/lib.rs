//! Switchboard's domain core: the contact-center rules as plain data and state machines.
//!
//! Nothing in this crate does IO, spawns tasks, takes locks or reads a clock: `now` is always
//! an argument and ids come from the caller. The server feeds it and carries out what it says.

pub mod after_hours;
pub mod attendance;
pub mod audio;
pub mod callback;
pub mod capacity;
pub mod chat;
pub mod contact;
pub mod crm;
pub mod dashboard;
pub mod dialing;
pub mod emergency;
pub mod hours;
pub mod ids;
pub mod jobs;
pub mod offer;
pub mod permission;
pub mod presence;
pub mod queue;
pub mod rate;
pub mod routing;
pub mod sms;
pub mod text;
pub mod throttle;
pub mod user;
pub mod voice;
pub mod voicemail;
pub mod wait;
pub mod whisper;

pub use capacity::CapacityProfile;
pub use contact::{Contact, ContactStatus, EndedBy, WrapUp};
pub use ids::{
    AttachmentId, CallId, CallbackId, CapacityProfileId, ContactId, IdError, IdentityId, JobId,
    MessageId, QueueId, RecordingId, SiteId, TeamId, TicketId, TrunkId, UserId, VisitorId,
};
pub use permission::{
    Actor, BuiltinRole, MonitorMode, Permission, PermissionSet, Role, RoleKey, RoleScope, Target,
    Watched,
};
pub use presence::{Presence, PresenceState};
pub use queue::{Channel, QueueKind, QueueNode, QueueTree, TreeError};
pub use text::{Email, EmailList, Language, Name, TextError, Username};
pub use user::{Team, User};
