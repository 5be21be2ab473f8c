//! Switchboard's call engine, sans-IO: the back-to-back user agent as a state machine.
//!
//! An [`Engine`] owns every SIP transaction (from `switchboard-sip`), phone registration, call
//! and leg of a node. The IO shell feeds it [`Input`]s (SIP messages, media events, routing and
//! prompt answers, API commands), calls [`Engine::handle_timeout`] when
//! [`Engine::poll_timeout`] says, and carries out every [`Output`] drained with
//! [`Engine::poll_output`]: bytes to send, media-room operations, audio to render, requests to
//! the contact service, records to store, metrics, API answers. Time is always an argument and
//! randomness comes from a seed, so a test runs a day of calls in milliseconds and the same way
//! every time.
//!
//! A call has legs with a role (the customer, the agent, a consult target) carried by a
//! signalling kind (a SIP dialog today). The call's state alone decides who hears whom in its
//! media room. Anything slow leaves as an output and comes back as an input; an answer about a
//! call that has moved on is dropped.
//!
//! Layout: `engine` (the state, inputs, timers, SIP dispatch), `call` (the call's life: menu,
//! queue, ringing, talking, hold, the end), `devices` (placing legs on phones, numbers and
//! browser sessions; hanging them up), `sip` (SIP legs), `browser` (browser legs), `control`
//! (API commands and transfers), `dial` (agents' outbound calls), `recording` (when a call is
//! recorded, paused, stopped), `monitor` (supervisors on a call), `voicemail` (a closed queue's voicemail), `details` (what the call
//! details show: state, hold so far, participants), `registrar` (phones and trunk
//! admission), `legs` (legs and their indices), `directory` (the configuration snapshot),
//! `interface` (the types that cross the boundary).

mod browser;
mod call;
mod callback;
mod control;
mod details;
mod devices;
mod dial;
mod directory;
mod engine;
mod ids;
mod interface;
mod legs;
mod monitor;
mod recording;
mod registrar;
mod sip;
mod voicemail;

pub use call::{CallState, EndReason};
pub use callback::{CALLBACK_CONFIRMATION, CALLBACK_KEY};
pub use details::{CallDetails, Participant};
pub use directory::Directory;
pub use engine::{reason, Engine, EngineConfig};
pub use ids::{LegId, Random, ReplyToken, SessionId};
pub use interface::{
    BrowserEvent, BrowserOp, CallControl, CallError, CallMetric, ContactEvent, EmergencyDial,
    Input, MediaEvent, MediaKind, MediaOp, Output, PhoneRefusal, RecordingOp, RoutingRefusal,
    RoutingRequest, RoutingResult, RoutingTarget, Samples, Sound, TransferTo, VoicemailLeft,
};
pub use legs::{LegRole, Party};
pub use registrar::REALM;
pub use voicemail::GOODBYE;
