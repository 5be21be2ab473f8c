//! The server end to end over real HTTP and WebSocket, on SQLite and on PostgreSQL.

mod support;

mod bad_input;
mod center;
mod chat;
mod phone;
mod security;
mod voice;

pub use support::*;
