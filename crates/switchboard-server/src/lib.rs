//! The Switchboard server: the IO shell around the domain core and the services. It owns the
//! HTTP API and the live event stream (the only place JSON is made, with chat's WebSocket
//! frames), the chat and voice carriers, the CRM connectors (built-in, webhook, Zendesk), and
//! the demo center. Routing, the buses, configuration events, jobs and metrics are
//! `switchboard-services`.

pub mod app;
pub mod attendance;
pub mod blobs;
pub mod callbacks;
pub mod chat;
pub mod config;
pub mod crm;
pub mod demo;
pub mod emergency;
pub mod http;
pub mod identity;
pub mod mail;
pub mod offers;
pub mod recordings;
pub mod secret;
pub mod sms;
pub mod tones;
pub mod uploads;
pub mod vault;
pub mod voice;
pub mod voicemail;
pub mod zendesk;

pub use app::{launch, App, AppState, LaunchError};
pub use config::Config;
