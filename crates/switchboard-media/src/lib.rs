//! Switchboard's media plane, sans-IO: RTP packets, RFC 4733 telephone-events, RTCP sender
//! reports and G.711 µ-law and A-law, and the parts of a call's media room: a jitter buffer
//! per decoded source, a player per listener, a stereo recorder. No sockets, no tasks, no
//! clock.

pub mod codec;
pub mod jitter;
pub mod player;
pub mod recorder;
pub mod rtp;

pub use codec::{Codec, PCMA, PCMU};
pub use player::Playback;

/// Linear PCM at 8 kHz, mono, shared between the rooms that play it.
pub type Samples = std::sync::Arc<[i16]>;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
