//! Switchboard's media plane, sans-IO in the way str0m's `Rtc` is: datagrams and time go in,
//! datagrams to send and events come out. No sockets, no tasks, no clock: `now` is always an
//! argument, and the only randomness is a seed.
//!
//! A [`Room`] holds one call's participants (caller, agent, consult, monitors) and a mix
//! matrix: per listener, the sources it hears. All audio is G.711 (PCMU or PCMA) at 8 kHz
//! mono, in 20 ms frames of 160 samples.
//!
//! **Routes.** From the matrix, playbacks and recording the room derives one route per
//! listener, recomputed only when one of those changes:
//! - *forward*: it hears exactly one source and has no playback. That source's packets are
//!   handed back from [`Room::receive`] as they arrive, rewritten in place: the listener's
//!   payload type, the G.711 law converted byte by byte when the laws differ, telephone-events
//!   renumbered to the listener's type (dropped if it has none). The source's SSRC, sequence
//!   numbers and timestamps pass through untouched.
//! - *mix*: it hears two or more sources or has a playback. On every tick it gets one packet
//!   of its own stream (own SSRC, sequence, timestamp; marker on the first after a (re)start)
//!   carrying the saturating sum of a frame of each source it hears and of its playback.
//!   Telephone-events are never mixed: a mix listener gets none (the engine gets every one
//!   as [`Event::Dtmf`] and can play a tone if it wants the listener to hear it).
//! - *silent*: it hears nobody and has no playback; it gets nothing.
//!
//! **Fast path.** Two participants hearing each other, with no playback or monitor, cost
//! what a plain relay costs: `receive` parses the header, counts, notes the
//! arrival time, checks the telephone-event type, rewrites in place and returns the target.
//! Nothing is decoded or allocated (a recorded call adds a decode into the recorder), and
//! the clock does not tick. A monitor (listen) hears the
//! parties on the mix route without changing their forward routes, so what they get is
//! byte-for-byte what they got without it.
//!
//! **Ticks.** The room's clock ticks at its start + k·20 ms, but only while a mix listener
//! needs it; otherwise [`Room::poll_timeout`] gives only the earliest media-timeout deadline.
//! A shell that falls more than ten ticks behind is not made to catch up: the clock
//! re-anchors on `now`.
//!
//! **Decoding and jitter.** Only sources that a mix listener needs are decoded into a
//! [`jitter::JitterBuffer`] each: ordered by RTP timestamp, play-out after two frames, a frame
//! pulled per tick with silence for gaps, a jump forward past eight.
//!
//! **Recorder.** Stereo: left is what one participant said, right what the other said. It
//! has no clock: each packet of the two parties is decoded as it is forwarded and placed in
//! the recording by its RTP timestamp (anchored on its stream's first arrival), so the two
//! directions line up, jitter and bursts change nothing in the file, and a recorded call costs
//! a decode per packet rather than a wake-up every 20 ms. Chunks of `recorder_chunk_frames`
//! frames keep the writer's writes few; a pause is written as silence and reported with its
//! offsets; the recording is as long as the time it ran. The forward route is unchanged while
//! recording: recording adds no latency and changes no forwarded byte.
//!
//! Modules: [`rtp`] (packets, RFC 4733 events, RTCP SR, G.711), [`codec`], [`jitter`],
//! [`player`], [`recorder`], [`room`].

pub mod codec;
pub mod jitter;
pub mod player;
pub mod recorder;
pub mod room;
pub mod rtp;

pub use codec::{Codec, PCMA, PCMU};
pub use player::Playback;
pub use room::{Event, Output, ParticipantId, Room, RoomConfig, Route, Stats, FRAME_DURATION};

/// Linear PCM at 8 kHz, mono, shared between the rooms that play it.
pub type Samples = std::sync::Arc<[i16]>;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
