//! The call recorder: what the left and the right participant said, placed in the recording
//! by the RTP timestamps of their packets as the room forwards them, and handed out in large
//! chunks so the writer does few writes.
//!
//! No clock of its own and no decoding: a recorded call costs a copy of each packet's G.711
//! bytes into its channel (µ-law; A-law is converted by table), not a wake-up every 20 ms.
//! Decoding and interleaving into stereo happen off the media path, where the chunk is
//! written (`Chunk::decode_into`).
//! Each channel's stream is anchored on its first packet (placed where its arrival puts it) and
//! every later packet of that SSRC lands at the anchor plus its timestamp's distance, so jitter,
//! bursts and reordering change nothing in the file and the two directions line up on arrival
//! time. A new SSRC, or a timestamp that would place a packet well before or after its arrival
//! (a sender that restarted its clock), anchors the stream again.
//!
//! Positions are samples (8 kHz) from the recording's start. A position is final once both
//! channels have gone past it (less a margin for reordering), or once it is `WINDOW` behind
//! the latest arrival, so a party who holds or leaves never holds the recording up. Chunks are
//! handed out from final positions; what nobody said is silence. A paused span is written as
//! silence of the same length when its chunk is handed out, so its offsets are exact positions
//! in the file and nothing said during it ever leaves the recorder.

use crate::codec::Codec;
use crate::rtp;
use std::time::Instant;

/// Samples per second.
const RATE: i64 = 8000;
/// Samples per millisecond.
const MS: i64 = RATE / 1000;
/// A packet that its timestamp would place further ahead of its arrival than this anchors
/// its stream again.
const AHEAD_LIMIT: i64 = RATE / 5;
/// Positions this far behind the latest arrival are final whatever the channels have sent;
/// a packet placed further back than this anchors its stream again.
const WINDOW: i64 = 2 * RATE;
/// The end of a channel's furthest packet less this is final: room for reordering.
const REORDER: i64 = 3 * 160;
/// µ-law's code for zero: what nobody said.
const SILENCE: u8 = 0xff;

/// Which channel a participant's audio goes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Left,
    Right,
}

/// Where a stream's timestamps sit in the recording.
#[derive(Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: i64,
}

#[derive(Clone, Copy, Default)]
struct Channel {
    anchor: Option<Anchor>,
    /// The end of the furthest packet placed.
    head: i64,
}

/// A piece of a recording: each channel's audio as G.711 µ-law, a byte a sample, both the
/// same length.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Chunk {
    pub left: Vec<u8>,
    pub right: Vec<u8>,
}

impl Chunk {
    /// Samples per channel.
    pub fn len(&self) -> usize {
        self.left.len()
    }

    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    /// The chunk as interleaved 16-bit stereo samples (left, right, left, right…).
    pub fn stereo(&self) -> impl ExactSizeIterator<Item = i16> + '_ {
        let table = linear_table();
        Stereo {
            left: self.left.iter(),
            right: self.right.iter(),
            table,
            next: None,
        }
    }

    /// The chunk as interleaved 16-bit stereo.
    pub fn decode(&self) -> Vec<i16> {
        self.stereo().collect()
    }

    /// Appends the chunk to `out` as interleaved 16-bit stereo.
    pub fn decode_into(&self, out: &mut Vec<i16>) {
        out.extend(self.stereo());
    }
}

/// A chunk's samples, interleaved.
struct Stereo<'a> {
    left: std::slice::Iter<'a, u8>,
    right: std::slice::Iter<'a, u8>,
    table: &'static [i16; 256],
    /// The right sample of the pair whose left was just handed out.
    next: Option<i16>,
}

impl Iterator for Stereo<'_> {
    type Item = i16;

    fn next(&mut self) -> Option<i16> {
        if let Some(right) = self.next.take() {
            return Some(right);
        }
        let (left, right) = (self.left.next()?, self.right.next()?);
        self.next = Some(self.table[usize::from(*right)]);
        Some(self.table[usize::from(*left)])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let length = 2 * self.left.len().min(self.right.len()) + usize::from(self.next.is_some());
        (length, Some(length))
    }
}

impl ExactSizeIterator for Stereo<'_> {}

/// µ-law code to linear sample.
fn linear_table() -> &'static [i16; 256] {
    static TABLE: std::sync::OnceLock<[i16; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|code| rtp::ulaw_to_linear(code as u8)))
}

/// A recording in progress.
pub struct Recorder {
    origin: Instant,
    /// Samples per channel in a chunk.
    chunk_samples: usize,
    /// Each channel's µ-law samples from `flushed` on, not yet handed out.
    pending: [Vec<u8>; 2],
    flushed: i64,
    /// Positions before this are final.
    ready: i64,
    channels: [Channel; 2],
    /// Position at which the open pause began.
    paused_at: Option<i64>,
    /// Closed pauses as (start, end) positions.
    paused: Vec<(i64, i64)>,
}

/// What a finished recording reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finished {
    /// The samples not yet handed out (possibly empty).
    pub last_chunk: Chunk,
    pub duration_ms: u64,
    pub paused: Vec<(u64, u64)>,
}

impl Recorder {
    /// A recording that starts at `origin` and hands out chunks of `chunk_frames` stereo
    /// frames of 20 ms (at least one).
    pub fn new(origin: Instant, chunk_frames: usize) -> Recorder {
        let chunk_samples = chunk_frames.max(1) * crate::FRAME_SAMPLES;
        Recorder {
            origin,
            chunk_samples,
            pending: std::array::from_fn(|_| {
                Vec::with_capacity(chunk_samples + 2 * REORDER as usize)
            }),
            flushed: 0,
            ready: 0,
            channels: [Channel::default(); 2],
            paused_at: None,
            paused: Vec::new(),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Places one packet's G.711 `payload` (in `law`), from the stream `ssrc` at RTP
    /// `timestamp`, on `side`, as it arrives at `now`. Chunks that became final come out of
    /// `next_chunk`.
    pub fn write(
        &mut self,
        now: Instant,
        side: Side,
        ssrc: u32,
        timestamp: u32,
        law: Codec,
        payload: &[u8],
    ) {
        let arrival = self.position_at(now);
        let length = payload.len() as i64;
        let channel = &mut self.channels[side as usize];
        let placed = channel.anchor.filter(|a| a.ssrc == ssrc).and_then(|a| {
            let start = a.position + i64::from(timestamp.wrapping_sub(a.timestamp) as i32);
            (start + length <= arrival + AHEAD_LIMIT && start + length >= arrival - WINDOW)
                .then_some(start)
        });
        let start = placed.unwrap_or_else(|| {
            // What a packet carries was said in the time before it arrived.
            let position = arrival - length;
            channel.anchor = Some(Anchor {
                ssrc,
                timestamp,
                position,
            });
            position
        });
        channel.head = channel.head.max(start + length);
        // A part already handed out (or before the start) is too late and left out.
        let from = start.max(self.flushed);
        if from < start + length {
            let pending = &mut self.pending[side as usize];
            let offset = (from - self.flushed) as usize;
            let said = &payload[(from - start) as usize..];
            // Usually the packet follows the last one: appended. Otherwise a gap before it is
            // silence, and a packet that arrived late overwrites its place.
            if pending.len() < offset {
                pending.resize(offset, SILENCE);
            }
            let overlap = (pending.len() - offset).min(said.len());
            pending[offset..offset + overlap].copy_from_slice(&said[..overlap]);
            pending.extend_from_slice(&said[overlap..]);
            if law == Codec::Pcma {
                let end = offset + said.len();
                rtp::transcode(
                    crate::codec::PCMA,
                    crate::codec::PCMU,
                    &mut pending[offset..end],
                );
            }
        }
        let both = self.channels[0].head.min(self.channels[1].head) - REORDER;
        self.ready = self.ready.max(both.max(arrival - WINDOW));
    }

    /// The next chunk whose positions are all final, if one is.
    pub fn next_chunk(&mut self) -> Option<Chunk> {
        if self.ready - self.flushed < self.chunk_samples as i64 {
            return None;
        }
        let mut chunk = self.take(self.chunk_samples);
        self.silence_pauses(&mut chunk);
        self.flushed += self.chunk_samples as i64;
        Some(chunk)
    }

    /// The first `length` samples of each channel, silence where nothing was placed.
    fn take(&mut self, length: usize) -> Chunk {
        let [left, right] = self.pending.each_mut().map(|pending| {
            if pending.len() < length {
                pending.resize(length, SILENCE);
            }
            // The rest (at most a few packets) stays in a new buffer; the full one leaves.
            let mut next = Vec::with_capacity(pending.capacity());
            next.extend_from_slice(&pending[length..]);
            pending.truncate(length);
            std::mem::replace(pending, next)
        });
        Chunk { left, right }
    }

    /// Pauses at `now`; returns the offset in ms, or `None` when already paused.
    pub fn pause(&mut self, now: Instant) -> Option<u64> {
        if self.paused_at.is_some() {
            return None;
        }
        let at = self.position_at(now).max(self.flushed);
        self.paused_at = Some(at);
        Some(ms(at))
    }

    /// Resumes at `now`; returns the offset in ms, or `None` when not paused.
    pub fn resume(&mut self, now: Instant) -> Option<u64> {
        let start = self.paused_at.take()?;
        let end = self.position_at(now).max(start);
        self.paused.push((start, end));
        Some(ms(end))
    }

    /// Ends the recording at `now`; a pause still open ends here. The recording is as long as
    /// the time it ran.
    pub fn stop(mut self, now: Instant) -> Finished {
        self.resume(now);
        // Whole milliseconds, so the file's length is its duration exactly.
        let end = (self.position_at(now) / MS * MS).max(self.flushed);
        let length = (end - self.flushed) as usize;
        for pending in &mut self.pending {
            pending.resize(length, SILENCE);
        }
        let mut last_chunk = self.take(length);
        self.silence_pauses(&mut last_chunk);
        Finished {
            last_chunk,
            duration_ms: ms(end),
            paused: self
                .paused
                .iter()
                .map(|(start, end)| (ms(*start), ms(*end)))
                .collect(),
        }
    }

    fn position_at(&self, now: Instant) -> i64 {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        (nanos * RATE as u128 / 1_000_000_000) as i64
    }

    /// Silences the parts of `chunk` (starting at `flushed`) that lie in a pause.
    fn silence_pauses(&self, chunk: &mut Chunk) {
        let first = self.flushed;
        let last = first + chunk.len() as i64;
        let open = self.paused_at.map(|start| (start, i64::MAX));
        for (start, end) in self.paused.iter().copied().chain(open) {
            let (from, to) = (start.max(first), end.min(last));
            if from < to {
                let span = (from - first) as usize..(to - first) as usize;
                chunk.left[span.clone()].fill(SILENCE);
                chunk.right[span].fill(SILENCE);
            }
        }
    }
}

fn ms(position: i64) -> u64 {
    (position.max(0) / MS) as u64
}
