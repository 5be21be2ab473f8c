//! Voicemail (AHD-7): a caller who reaches a closed queue whose rule is `voicemail` hears the
//! greeting (the rule's message: the recording uploaded as the queue's after-hours audio, else
//! its text spoken) and a tone, then only the caller is recorded, on the room's recorder,
//! until they press `#` (RFC 4733 or SIP INFO, as every digit), hang up, or the rule's longest
//! length passes. A caller who spoke then hears a goodbye and is hung up; the shell is told
//! with `Output::Voicemail` and delivers the message. Hanging up during the greeting leaves
//! nothing.

use crate::call::{CallState, EndReason};
use crate::engine::{Engine, Timer};
use crate::interface::{MediaOp, Output, RecordingOp, Sound, VoicemailLeft};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use switchboard_core::{CallId, QueueId, RecordingId};

/// What the caller hears once their message is in.
pub const GOODBYE: &str = "Thank you, your message has been recorded. Goodbye.";

/// A call's voicemail, from the greeting to the goodbye.
#[derive(Clone, Debug)]
pub(crate) struct Voicemail {
    pub queue: QueueId,
    pub max: Duration,
    pub phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The greeting and the tone play (as the call's `play_token`).
    Greeting,
    /// The caller is recorded.
    Recording {
        recording: RecordingId,
        started: Instant,
        started_at: DateTime<Utc>,
    },
    /// The goodbye plays; then the call ends.
    Goodbye,
}

impl Engine {
    /// A closed queue takes a voicemail: the greeting and the tone, then the recording.
    pub(crate) fn start_voicemail(
        &mut self,
        call: CallId,
        queue: QueueId,
        greeting: String,
        max_seconds: u32,
    ) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Voicemail;
        state.voicemail = Some(Voicemail {
            queue,
            max: Duration::from_secs(u64::from(max_seconds)),
            phase: Phase::Greeting,
        });
        let language = state.language.clone();
        self.save(call);
        self.play(
            call,
            vec![
                Sound::AfterHours {
                    queue,
                    language,
                    text: greeting,
                },
                Sound::Beep,
            ],
            None,
            false,
        );
    }

    /// What the caller heard as `token` has played: after the tone the recording starts;
    /// after the goodbye the call ends.
    pub(crate) fn voicemail_played(&mut self, now: Instant, call: CallId, token: u64) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        if state.state != CallState::Voicemail || state.play_token != token {
            return;
        }
        match state.voicemail.as_ref().map(|v| v.phase) {
            Some(Phase::Greeting) => self.record_voicemail(now, call),
            Some(Phase::Goodbye) => self.end_call(now, call, EndReason::VoicemailLeft),
            Some(Phase::Recording { .. }) | None => {}
        }
    }

    fn record_voicemail(&mut self, now: Instant, call: CallId) {
        let recording = RecordingId::from_uuid(self.random.uuid_v7(self.wall(now)));
        let started_at = self.wall(now);
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(voicemail) = state.voicemail.as_mut() else {
            return;
        };
        voicemail.phase = Phase::Recording {
            recording,
            started: now,
            started_at,
        };
        let max = voicemail.max;
        let customer = state.customer;
        // The caller on both sides of the recorder: the room writes them on the left channel
        // only, so the file holds the caller and silence.
        self.media(MediaOp::Recording {
            call,
            op: RecordingOp::Start {
                recording,
                left: customer,
                right: customer,
                agent: None,
                started_at,
            },
        });
        self.schedule(now + max, Timer::Voicemail { call, recording });
    }

    /// The caller pressed a key: `#` ends the message.
    pub(crate) fn voicemail_digit(&mut self, now: Instant, call: CallId, digit: char) {
        if digit == '#' {
            self.finish_voicemail(now, call, true);
        }
    }

    /// The longest length of `recording` has passed.
    pub(crate) fn voicemail_limit(&mut self, now: Instant, call: CallId, recording: RecordingId) {
        let current = self
            .calls
            .get(&call)
            .and_then(|c| c.voicemail.as_ref())
            .is_some_and(
                |v| matches!(v.phase, Phase::Recording { recording: r, .. } if r == recording),
            );
        if current {
            self.finish_voicemail(now, call, true);
        }
    }

    /// Ends the recording and tells the shell of the message; with `goodbye`, the caller
    /// hears the goodbye (they hung up otherwise). Nothing while no recording runs.
    pub(crate) fn finish_voicemail(&mut self, now: Instant, call: CallId, goodbye: bool) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(voicemail) = state.voicemail.as_mut() else {
            return;
        };
        let Phase::Recording {
            recording,
            started,
            started_at,
        } = voicemail.phase
        else {
            return;
        };
        voicemail.phase = Phase::Goodbye;
        let left = VoicemailLeft {
            call,
            recording,
            queue: voicemail.queue,
            caller: state.record.caller.clone(),
            language: state.language.clone(),
            started_at,
            duration_ms: u64::try_from(now.saturating_duration_since(started).as_millis())
                .unwrap_or(u64::MAX),
        };
        self.media(MediaOp::Recording {
            call,
            op: RecordingOp::Stop { discard: false },
        });
        self.output(Output::Voicemail(left));
        if goodbye {
            self.play(
                call,
                vec![Sound::Speak {
                    text: GOODBYE.into(),
                    speed: 100,
                }],
                None,
                false,
            );
        }
    }
}
