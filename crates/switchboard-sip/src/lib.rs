//! Switchboard's voice signalling, sans-IO: SIP messages (RFC 3261), transactions, digest
//! authentication and SDP offer/answer for G.711. RTP and the codecs live in
//! `switchboard-media`. Nothing here reads a clock or a socket: time and bytes are inputs.

pub mod dialog;
pub mod digest;
pub mod fields;
pub mod message;
pub mod sdp;
pub mod transaction;

pub use message::{
    frame, parse, Headers, Message, Method, Rejection, Request, Response, Transport,
};
