//! The server end to end over real HTTP and WebSocket, on SQLite and on PostgreSQL.

mod support;

mod after_hours;
mod bad_input;
mod callbacks;
mod center;
mod chat;
mod chat_monitor;
mod crm_calls;
mod dashboards;
mod emergency;
mod emergency_calls;
mod emergency_notice;
mod limits;
mod monitor;
mod offers;
mod openapi;
mod phone;
mod presence;
mod recording;
mod security;
mod sip_hardening;
mod sms;
mod vault;
mod voice;
mod voicemail;
// Public only because `support::zendesk` (the fake it uses) has the same name.
pub mod zendesk;

pub use support::*;
