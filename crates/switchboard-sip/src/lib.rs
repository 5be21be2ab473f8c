//! Switchboard's SIP core, sans-IO. This first layer turns bytes into SIP messages and back,
//! per RFC 3261 §7 and §18, and says how to answer what cannot be taken (§18.3 and the RFC 4475
//! cases): 400 for a malformed request, 505 for another SIP version, 416 for a URI scheme we do
//! not serve. It never panics on any input; transactions, dialogs and transports build on it.

pub mod message;

pub use message::{
    frame, parse, Headers, Message, Method, Rejection, Request, Response, Transport,
};
