//! Switchboard's voice protocols, sans-IO: SIP messages (RFC 3261), transactions, digest
//! authentication, SDP offer/answer for G.711, and RTP with telephone-events and G.711 codecs.
//! Nothing here reads a clock or a socket: time and bytes are inputs.

pub mod dialog;
pub mod digest;
pub mod fields;
pub mod message;
pub mod rtp;
pub mod sdp;
pub mod transaction;

pub use message::{
    frame, parse, Headers, Message, Method, Rejection, Request, Response, Transport,
};
