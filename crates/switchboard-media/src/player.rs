//! Playback to one participant: a list of parts played in order, then an optional loop
//! played forever (a greeting, then hold music), one frame per tick.

use crate::Samples;
use std::collections::VecDeque;

/// What to play to a participant. `token` comes back in `Event::PlaybackDone` so the caller
/// can tell which of its playbacks finished (an old one that was replaced never reports).
#[derive(Clone, Debug, Default)]
pub struct Playback {
    pub parts: Vec<Samples>,
    /// Played over and over once the parts are done; a looping playback never finishes.
    pub then_loop: Option<Samples>,
    pub token: u64,
}

/// A playback in progress.
pub struct Player {
    parts: VecDeque<Samples>,
    then_loop: Option<Samples>,
    /// Position in the front part (or in the loop once the parts are done).
    position: usize,
    token: u64,
}

impl Player {
    pub fn new(playback: Playback) -> Player {
        Player {
            parts: playback
                .parts
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect(),
            then_loop: playback.then_loop,
            position: 0,
            token: playback.token,
        }
    }

    pub fn token(&self) -> u64 {
        self.token
    }

    /// Fills `out` with the next samples (silence after the end). Returns `false` when the
    /// playback has finished: this frame held its last samples, or it had none left.
    pub fn next(&mut self, out: &mut [i16]) -> bool {
        let mut filled = 0;
        while filled < out.len() {
            let Some(current) = self.parts.front().or(self.then_loop.as_ref()) else {
                break;
            };
            if current.is_empty() {
                // An empty loop is silence forever: still a loop, so never finished.
                break;
            }
            let take = (current.len() - self.position).min(out.len() - filled);
            out[filled..filled + take]
                .copy_from_slice(&current[self.position..self.position + take]);
            filled += take;
            self.position += take;
            if self.position == current.len() {
                self.position = 0;
                // The loop is never popped; only a part is used up.
                self.parts.pop_front();
            }
        }
        out[filled..].fill(0);
        !self.parts.is_empty() || self.then_loop.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: std::ops::Range<i16>) -> Samples {
        values.collect::<Vec<_>>().into()
    }

    #[test]
    fn parts_play_in_order_across_frame_boundaries_then_finish() {
        let mut player = Player::new(Playback {
            parts: vec![samples(1..101), samples(101..251)],
            then_loop: None,
            token: 5,
        });
        let mut out = [0i16; 160];
        assert!(player.next(&mut out));
        assert_eq!(out.to_vec(), (1..161).collect::<Vec<i16>>());
        assert!(!player.next(&mut out), "the last samples finish it");
        assert_eq!(out[..90].to_vec(), (161..251).collect::<Vec<i16>>());
        assert_eq!(out[90..], [0; 70]);
        assert_eq!(player.token(), 5);
    }

    #[test]
    fn a_loop_follows_the_parts_and_never_finishes() {
        let mut player = Player::new(Playback {
            parts: vec![samples(1..11)],
            then_loop: Some(samples(100..103)),
            token: 1,
        });
        let mut out = [0i16; 16];
        assert!(player.next(&mut out));
        assert_eq!(
            out,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100, 101, 102, 100, 101, 102]
        );
        for _ in 0..100 {
            assert!(player.next(&mut out));
        }
        let mut silent = Player::new(Playback {
            parts: vec![],
            then_loop: Some(samples(0..0)),
            token: 2,
        });
        assert!(silent.next(&mut out));
        assert_eq!(out, [0; 16]);
    }

    #[test]
    fn an_empty_playback_finishes_at_once() {
        let mut player = Player::new(Playback::default());
        let mut out = [7i16; 160];
        assert!(!player.next(&mut out));
        assert_eq!(out, [0; 160]);
    }
}
