//! The Switchboard server: the IO shell around the domain core. It owns the HTTP API, the live
//! event stream, the contact service that drives routing, and the demo center.

pub mod app;
pub mod blobs;
pub mod chat;
pub mod config;
pub mod contacts;
pub mod crm;
pub mod demo;
pub mod events;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod secret;
pub mod tones;
pub mod voice;

pub use app::{launch, App, AppState, LaunchError};
pub use config::Config;
