//! A jitter buffer for one decoded source: packets in any order and of any length in, exactly
//! one frame of linear samples out per tick.
//!
//! Samples are kept in a ring indexed by RTP timestamp (8 kHz, so one slot per sample), which
//! makes packets of 10, 20 or 30 ms, reordering and partial overlaps the same case: a packet is
//! written at its timestamp and a pull reads the next frame from the play-out point, with
//! silence where nothing arrived.
//!
//! Policy:
//! - Timestamps are extended to 64 bits against the last packet seen, so the 32-bit wrap is
//!   invisible.
//! - A packet that ends at or before the play-out point is late and dropped; one whose first
//!   sample is already buffered is a duplicate and dropped; a late packet's part that is still
//!   ahead of the play-out point is kept.
//! - Play-out starts once `target_depth` samples are buffered (or after waiting that long with
//!   anything buffered, so a short burst is not held forever).
//! - When more than `max_depth` samples are buffered the play-out point jumps forward to leave
//!   `target_depth`, trading a glitch for bounded delay.
//! - When nothing is buffered ahead of the play-out point (an underrun: a pause in talk, a
//!   hold, a sender that restarted its timeline) the next packet re-anchors play-out on
//!   itself and buffering starts again, so no packet is refused for being "late" against a
//!   buffer that has nothing to play. A new SSRC does the same.

/// Slots in the ring: 512 ms at 8 kHz. Must hold `max_depth` plus the longest packet.
const CAPACITY: usize = 4096;
/// Packets longer than this are refused (a G.711 packet fits in an Ethernet frame: ≤ 1500).
const MAX_PACKET: usize = 2048;

/// What became of a pushed packet, for tests and statistics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pushed {
    Accepted,
    /// Entirely at or before the play-out point.
    Late,
    /// Its first sample was already buffered.
    Duplicate,
    /// Empty or longer than any real packet.
    Refused,
}

/// Counters since the buffer was made.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct JitterStats {
    pub accepted: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Times the play-out point jumped forward because too much was buffered.
    pub jumps: u64,
    /// Times play-out was re-anchored (first packet, new SSRC, after an underrun).
    pub anchors: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Nothing received since creation.
    Empty,
    /// Waiting for `target_depth` before playing; `pulls` counts the pulls spent waiting.
    Buffering {
        pulls: u32,
    },
    Playing,
}

/// The buffer of one source. Depths are in samples.
pub struct JitterBuffer {
    ring: Box<[i16]>,
    /// Whether a ring slot holds a received sample (to tell audio from a gap, and duplicates).
    present: Box<[bool]>,
    state: State,
    ssrc: u32,
    /// The last timestamp pushed and its extended value: the reference for extending the next.
    last_timestamp: u32,
    last_extended: i64,
    /// Extended timestamp of the next sample to play.
    playout: i64,
    /// One past the highest extended timestamp buffered. Invariant: every slot outside
    /// `playout..end` is zero and not present.
    end: i64,
    target_depth: i64,
    max_depth: i64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer that starts playing at `target_depth` samples buffered and never holds more
    /// than `max_depth` (clamped to what the ring can hold).
    pub fn new(target_depth: usize, max_depth: usize) -> JitterBuffer {
        let max_depth = max_depth.clamp(1, CAPACITY - MAX_PACKET);
        let target_depth = target_depth.clamp(1, max_depth);
        JitterBuffer {
            ring: vec![0; CAPACITY].into_boxed_slice(),
            present: vec![false; CAPACITY].into_boxed_slice(),
            state: State::Empty,
            ssrc: 0,
            last_timestamp: 0,
            last_extended: 0,
            playout: 0,
            end: 0,
            target_depth: target_depth as i64,
            max_depth: max_depth as i64,
            stats: JitterStats::default(),
        }
    }

    /// Samples buffered ahead of the play-out point.
    pub fn depth(&self) -> usize {
        (self.end - self.playout).max(0) as usize
    }

    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Adds a packet's decoded samples, the first at RTP `timestamp`.
    pub fn push(&mut self, ssrc: u32, timestamp: u32, samples: &[i16]) -> Pushed {
        if samples.is_empty() || samples.len() > MAX_PACKET {
            return Pushed::Refused;
        }
        let length = samples.len() as i64;
        // Far from where extended timestamps start only if a sender jumped by ~2^31 again and
        // again: start over rather than let the arithmetic overflow.
        let runaway = self.last_extended.unsigned_abs() > 1 << 60;
        let start = if self.state == State::Empty || ssrc != self.ssrc || runaway {
            self.clear();
            self.anchor(ssrc, timestamp, i64::from(timestamp));
            i64::from(timestamp)
        } else {
            let start =
                self.last_extended + i64::from(timestamp.wrapping_sub(self.last_timestamp) as i32);
            self.last_timestamp = timestamp;
            self.last_extended = start;
            if self.end <= self.playout {
                // Nothing to play ahead: this packet starts a new stretch.
                self.anchor(ssrc, timestamp, start);
            }
            start
        };
        if start + length <= self.playout {
            self.stats.late += 1;
            return Pushed::Late;
        }
        if start >= self.playout && self.present[slot(start)] {
            self.stats.duplicates += 1;
            return Pushed::Duplicate;
        }
        if start + length - self.playout > CAPACITY as i64 {
            // Far ahead of everything buffered: the ring cannot hold both, keep the new.
            self.jump_to(start + length - self.target_depth);
        }
        let first = start.max(self.playout);
        for t in first..start + length {
            let index = slot(t);
            self.ring[index] = samples[(t - start) as usize];
            self.present[index] = true;
        }
        self.end = self.end.max(start + length);
        if self.end - self.playout > self.max_depth {
            self.jump_to(self.end - self.target_depth);
        }
        self.stats.accepted += 1;
        Pushed::Accepted
    }

    /// Fills `out` with the next samples to play (silence for gaps and while buffering) and
    /// moves the play-out point on. Returns whether any received sample was in it.
    pub fn pull(&mut self, out: &mut [i16]) -> bool {
        if let State::Buffering { pulls } = self.state {
            let waited = i64::from(pulls + 1) * out.len() as i64 >= self.target_depth;
            if self.depth() as i64 >= self.target_depth || (waited && self.depth() > 0) {
                self.state = State::Playing;
            } else {
                self.state = State::Buffering { pulls: pulls + 1 };
            }
        }
        if self.state != State::Playing {
            out.fill(0);
            return false;
        }
        let mut heard = false;
        for (i, sample) in out.iter_mut().enumerate() {
            let index = slot(self.playout + i as i64);
            heard |= self.present[index];
            *sample = self.ring[index];
            self.ring[index] = 0;
            self.present[index] = false;
        }
        self.playout += out.len() as i64;
        if self.end <= self.playout {
            self.end = self.playout;
            self.state = State::Buffering { pulls: 0 };
        }
        heard
    }

    /// Starts a stretch at extended timestamp `start` (the buffer is empty ahead of play-out).
    fn anchor(&mut self, ssrc: u32, timestamp: u32, start: i64) {
        self.ssrc = ssrc;
        self.last_timestamp = timestamp;
        self.last_extended = start;
        self.playout = start;
        self.end = start;
        self.state = State::Buffering { pulls: 0 };
        self.stats.anchors += 1;
    }

    /// Moves the play-out point forward to `to`, dropping what lies before it.
    fn jump_to(&mut self, to: i64) {
        if to <= self.playout {
            return;
        }
        let stop = self.end.min(to);
        if stop - self.playout >= CAPACITY as i64 {
            self.clear();
        } else {
            for t in self.playout..stop {
                let index = slot(t);
                self.ring[index] = 0;
                self.present[index] = false;
            }
        }
        self.playout = to;
        self.end = self.end.max(to);
        self.stats.jumps += 1;
    }

    fn clear(&mut self) {
        self.ring.fill(0);
        self.present.fill(false);
    }
}

fn slot(timestamp: i64) -> usize {
    timestamp.rem_euclid(CAPACITY as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 160;

    /// A packet of `length` samples whose values are their own timestamps (mod 30000), so
    /// any misplacement shows.
    fn packet(start: u32, length: usize) -> Vec<i16> {
        (0..length as u32)
            .map(|i| (start.wrapping_add(i) % 30000) as i16 + 1)
            .collect()
    }

    fn pull(buffer: &mut JitterBuffer) -> Vec<i16> {
        let mut out = vec![0; FRAME];
        buffer.pull(&mut out);
        out
    }

    fn buffer() -> JitterBuffer {
        JitterBuffer::new(2 * FRAME, 8 * FRAME)
    }

    #[test]
    fn plays_out_after_the_target_depth_in_timestamp_order() {
        let mut jitter = buffer();
        jitter.push(1, 1000, &packet(1000, FRAME));
        assert_eq!(
            pull(&mut jitter),
            vec![0; FRAME],
            "one frame is below the target"
        );
        // Frames 2 and 1 arrive swapped.
        jitter.push(1, 1320, &packet(1320, FRAME));
        jitter.push(1, 1160, &packet(1160, FRAME));
        assert_eq!(jitter.depth(), 3 * FRAME);
        assert_eq!(pull(&mut jitter), packet(1000, FRAME));
        assert_eq!(pull(&mut jitter), packet(1160, FRAME));
        assert_eq!(pull(&mut jitter), packet(1320, FRAME));
    }

    #[test]
    fn a_lost_packet_is_silence_and_late_and_duplicate_packets_are_dropped() {
        let mut jitter = buffer();
        for k in [0u32, 1, 3, 4] {
            assert_eq!(
                jitter.push(7, k * 160, &packet(k * 160, FRAME)),
                Pushed::Accepted
            );
        }
        assert_eq!(jitter.push(7, 160, &packet(160, FRAME)), Pushed::Duplicate);
        assert_eq!(pull(&mut jitter), packet(0, FRAME));
        assert_eq!(pull(&mut jitter), packet(160, FRAME));
        let mut out = vec![1; FRAME];
        assert!(!jitter.pull(&mut out), "frame 2 was lost");
        assert_eq!(out, vec![0; FRAME]);
        // Frame 2 turns up after its play-out time: too late.
        assert_eq!(jitter.push(7, 320, &packet(320, FRAME)), Pushed::Late);
        assert_eq!(pull(&mut jitter), packet(480, FRAME));
        assert_eq!(pull(&mut jitter), packet(640, FRAME));
        let stats = jitter.stats();
        assert_eq!((stats.late, stats.duplicates), (1, 1));
    }

    #[test]
    fn packets_of_10_and_30_ms_are_cut_into_20_ms_frames() {
        for length in [80usize, 240] {
            let mut jitter = buffer();
            let mut sent = Vec::new();
            let mut played = Vec::new();
            let mut timestamp = 50_000u32;
            for _ in 0..24 {
                let p = packet(timestamp, length);
                sent.extend_from_slice(&p);
                jitter.push(3, timestamp, &p);
                timestamp += length as u32;
                // Pull at the rate packets come: a frame per 160 samples sent.
                while played.len() + 2 * FRAME <= sent.len() {
                    played.extend(pull(&mut jitter));
                }
            }
            assert!(played.len() >= 10 * FRAME);
            assert_eq!(played[..], sent[..played.len()], "{length}-sample packets");
        }
    }

    #[test]
    fn timestamps_wrap_without_a_glitch() {
        let mut jitter = buffer();
        let mut timestamp = u32::MAX - 400;
        let mut sent = Vec::new();
        let mut played = Vec::new();
        for _ in 0..10 {
            let p = packet(timestamp, FRAME);
            sent.extend_from_slice(&p);
            jitter.push(9, timestamp, &p);
            timestamp = timestamp.wrapping_add(FRAME as u32);
            if sent.len() >= 2 * FRAME {
                played.extend(pull(&mut jitter));
            }
        }
        assert_eq!(played[..], sent[..played.len()]);
        assert_eq!(jitter.stats().anchors, 1);
    }

    #[test]
    fn too_much_buffered_jumps_forward_to_the_target_depth() {
        let mut jitter = buffer();
        for k in 0..8u32 {
            jitter.push(1, k * 160, &packet(k * 160, FRAME));
        }
        assert_eq!(jitter.depth(), 8 * FRAME, "the maximum is still allowed");
        // The ninth frame makes it too deep: keep the newest two.
        jitter.push(1, 8 * 160, &packet(8 * 160, FRAME));
        assert_eq!(jitter.depth(), 2 * FRAME, "kept only the target depth");
        assert_eq!(jitter.stats().jumps, 1);
        assert_eq!(pull(&mut jitter), packet(7 * 160, FRAME));
        assert_eq!(pull(&mut jitter), packet(8 * 160, FRAME));
    }

    #[test]
    fn after_an_underrun_or_a_new_ssrc_play_out_re_anchors() {
        let mut jitter = buffer();
        jitter.push(1, 0, &packet(0, FRAME));
        jitter.push(1, 160, &packet(160, FRAME));
        pull(&mut jitter);
        pull(&mut jitter);
        assert_eq!(pull(&mut jitter), vec![0; FRAME], "underrun");
        // The sender went quiet and came back with timestamps behind our play-out point.
        jitter.push(1, 100, &packet(100, FRAME));
        jitter.push(1, 260, &packet(260, FRAME));
        assert_eq!(pull(&mut jitter), packet(100, FRAME));
        // Another SSRC (a re-INVITE, a transfer) starts afresh.
        jitter.push(2, 9_000_000, &packet(9_000_000, FRAME));
        jitter.push(2, 9_000_160, &packet(9_000_160, FRAME));
        assert_eq!(pull(&mut jitter), packet(9_000_000, FRAME));
        assert_eq!(jitter.stats().anchors, 3);
    }

    #[test]
    fn a_lone_packet_is_played_after_waiting_the_target_depth() {
        let mut jitter = buffer();
        jitter.push(1, 0, &packet(0, FRAME));
        assert_eq!(pull(&mut jitter), vec![0; FRAME]);
        assert_eq!(pull(&mut jitter), packet(0, FRAME));
    }

    #[test]
    fn nonsense_is_refused() {
        let mut jitter = buffer();
        assert_eq!(jitter.push(1, 0, &[]), Pushed::Refused);
        assert_eq!(jitter.push(1, 0, &vec![0; 5000]), Pushed::Refused);
        assert_eq!(pull(&mut jitter), vec![0; FRAME]);
    }
}
