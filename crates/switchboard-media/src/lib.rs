//! Switchboard's media plane, sans-IO: RTP packets, RFC 4733 telephone-events, RTCP sender
//! reports and G.711 µ-law and A-law. No sockets, no tasks, no clock.

pub mod codec;
pub mod rtp;

pub use codec::{Codec, PCMA, PCMU};
