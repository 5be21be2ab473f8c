//! The call recorder: two mono frames per tick (what the left and the right participant
//! said) interleaved into stereo, handed out in large chunks so the writer does few writes.
//!
//! Time in a recording is counted in frames, so a paused span is written as silence of the
//! same length and its offsets are exact positions in the file. The room feeds a frame for
//! every tick of its clock (silence for ticks it skipped), so the length of a recording is
//! the time it ran.

use crate::FRAME_SAMPLES;

/// Milliseconds per frame.
const FRAME_MS: u64 = 20;

/// A recording in progress.
pub struct Recorder {
    /// Interleaved samples not yet handed out; at most one chunk.
    chunk: Vec<i16>,
    chunk_frames: usize,
    frames: u64,
    /// Frame at which the open pause began.
    paused_at: Option<u64>,
    /// Closed pauses as (start, end) in ms from the start.
    paused: Vec<(u64, u64)>,
}

/// What a finished recording reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finished {
    /// The samples not yet handed out (possibly empty).
    pub last_chunk: Vec<i16>,
    pub duration_ms: u64,
    pub paused: Vec<(u64, u64)>,
}

impl Recorder {
    /// A recorder that hands out chunks of `chunk_frames` stereo frames (at least one).
    pub fn new(chunk_frames: usize) -> Recorder {
        let chunk_frames = chunk_frames.max(1);
        Recorder {
            chunk: Vec::with_capacity(chunk_frames * FRAME_SAMPLES * 2),
            chunk_frames,
            frames: 0,
            paused_at: None,
            paused: Vec::new(),
        }
    }

    /// Position in the recording, in ms.
    pub fn position_ms(&self) -> u64 {
        self.frames * FRAME_MS
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Adds one tick: `left` and `right` are one frame each (shorter ones are padded with
    /// silence). While paused, silence is written instead. Returns a chunk when one is full.
    pub fn write(&mut self, left: &[i16], right: &[i16]) -> Option<Vec<i16>> {
        if self.paused_at.is_some() {
            self.chunk.resize(self.chunk.len() + 2 * FRAME_SAMPLES, 0);
        } else {
            for i in 0..FRAME_SAMPLES {
                self.chunk.push(left.get(i).copied().unwrap_or(0));
                self.chunk.push(right.get(i).copied().unwrap_or(0));
            }
        }
        self.frames += 1;
        if self.chunk.len() >= self.chunk_frames * FRAME_SAMPLES * 2 {
            let next = Vec::with_capacity(self.chunk.capacity());
            Some(std::mem::replace(&mut self.chunk, next))
        } else {
            None
        }
    }

    /// Adds one tick of silence on both channels (a span the room's clock skipped).
    pub fn write_silence(&mut self) -> Option<Vec<i16>> {
        self.write(&[], &[])
    }

    /// Pauses; returns the offset in ms, or `None` when already paused.
    pub fn pause(&mut self) -> Option<u64> {
        if self.paused_at.is_some() {
            return None;
        }
        self.paused_at = Some(self.frames);
        Some(self.position_ms())
    }

    /// Resumes; returns the offset in ms, or `None` when not paused.
    pub fn resume(&mut self) -> Option<u64> {
        let start = self.paused_at.take()?;
        self.paused.push((start * FRAME_MS, self.position_ms()));
        Some(self.position_ms())
    }

    /// Ends the recording; a pause still open ends here.
    pub fn stop(mut self) -> Finished {
        self.resume();
        Finished {
            last_chunk: self.chunk,
            duration_ms: self.frames * FRAME_MS,
            paused: self.paused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_chunks_and_writes_pauses_as_silence() {
        let mut recorder = Recorder::new(2);
        let left = [1i16; FRAME_SAMPLES];
        let right = [2i16; FRAME_SAMPLES];
        assert_eq!(recorder.write(&left, &right), None);
        let chunk = recorder
            .write(&left, &right)
            .expect("two frames make a chunk");
        assert_eq!(chunk.len(), 2 * 2 * FRAME_SAMPLES);
        assert_eq!(chunk[..4], [1, 2, 1, 2]);
        assert_eq!(recorder.pause(), Some(40));
        assert_eq!(recorder.pause(), None);
        assert!(recorder.is_paused());
        assert_eq!(recorder.write(&left, &right), None);
        assert_eq!(recorder.resume(), Some(60));
        let chunk = recorder.write(&left, &right).expect("second chunk");
        assert!(chunk[..2 * FRAME_SAMPLES].iter().all(|s| *s == 0));
        assert_eq!(chunk[2 * FRAME_SAMPLES..][..2], [1, 2]);
        recorder.write(&left, &right);
        assert_eq!(recorder.pause(), Some(100));
        let chunk = recorder.write_silence().expect("third chunk");
        assert_eq!(chunk[..2], [1, 2]);
        assert!(chunk[2 * FRAME_SAMPLES..].iter().all(|s| *s == 0));
        // Paused: what the participants say is not written.
        assert_eq!(recorder.write(&left, &right), None);
        let finished = recorder.stop();
        assert_eq!(finished.duration_ms, 140);
        assert_eq!(finished.paused, vec![(40, 60), (100, 140)]);
        assert_eq!(finished.last_chunk, vec![0; 2 * FRAME_SAMPLES]);
    }
}
