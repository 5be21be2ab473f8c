//! When a call is recorded. Every answered call is recorded (REC-7 and its neighbours), one
//! recording per agent the caller talks to: the caller on the left channel, the agent on the
//! right. What is recorded follows from the call alone, like the mix matrix does: whenever
//! `sync_media` looks at a call it is marked, and after each input the engine compares what
//! each marked call should record with what its room records (`sync_recordings`), so no
//! transition has to remember to start or stop the recorder.
//!
//! A call is recordable unless its queue's `record_calls` is off, and the Apps API may say
//! otherwise for one call (`CallControl::SetRecordable`). The agent pauses and resumes the
//! recording (redact); the room writes the paused span as silence and keeps its offsets. The
//! record shows the recording's state (`CallRecord::recording`) for the agent's card.

use crate::call::CallState;
use crate::engine::Engine;
use crate::ids::LegId;
use crate::interface::{CallError, MediaOp, RecordingOp};
use crate::legs::Party;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;
use switchboard_core::voice::LiveRecording;
use switchboard_core::{CallId, RecordingId};

/// The recordings of every live call, and the calls to look at after this input.
#[derive(Default)]
pub(crate) struct Recordings {
    /// Per call: the Apps API's word on whether it is recorded, and the recording running.
    calls: HashMap<CallId, CallRecording>,
    /// Calls whose media changed since the last `sync_recordings` (ordered, so a run is the
    /// same every time).
    touched: BTreeSet<CallId>,
}

#[derive(Default)]
struct CallRecording {
    /// `Some` when the Apps API set it for this call; otherwise the queue decides.
    recordable: Option<bool>,
    running: Option<Running>,
}

#[derive(Clone, Copy)]
struct Running {
    id: RecordingId,
    /// The agent leg on the right channel.
    right: LegId,
    paused: bool,
}

impl Recordings {
    /// The call's media may have changed: look at its recording after this input.
    pub(crate) fn touch(&mut self, call: CallId) {
        self.touched.insert(call);
    }
}

impl Engine {
    /// Brings every touched call's recording in line with the call.
    pub(crate) fn sync_recordings(&mut self, now: Instant) {
        while let Some(call) = self.recordings.touched.pop_first() {
            // The hold clock follows the call's state the same way (see `details.rs`).
            self.sync_hold(now, call);
            self.sync_recording(now, call);
        }
    }

    /// The agent leg whose conversation with the caller should be recorded now, if any.
    fn recorded_leg(&self, call: CallId) -> Option<LegId> {
        let state = self.calls.get(&call)?;
        if !matches!(
            state.state,
            CallState::Talking | CallState::Held | CallState::Consulting
        ) {
            return None;
        }
        let leg = state.agent?;
        let is_agent = self
            .legs
            .get(leg)
            .is_some_and(|l| l.answered && matches!(l.party, Party::Agent(_)));
        let by_queue = state
            .record
            .queue
            .is_none_or(|q| !self.directory.unrecorded_queues.contains(&q));
        let recordable = self
            .recordings
            .calls
            .get(&call)
            .and_then(|c| c.recordable)
            .unwrap_or(by_queue);
        // Emergency calls are never recorded, whatever the Apps API asked (EMG-6).
        (is_agent && recordable && state.record.emergency.is_none()).then_some(leg)
    }

    /// Starts, stops or restarts the call's recording to match what it should record.
    fn sync_recording(&mut self, now: Instant, call: CallId) {
        let wanted = self.recorded_leg(call);
        let entry = self.recordings.calls.get(&call);
        let running = entry.and_then(|c| c.running);
        if running.map(|r| r.right) == wanted {
            if !self.calls.contains_key(&call) {
                self.recordings.calls.remove(&call);
            }
            return;
        }
        if running.is_some() {
            // Refused by the Apps API for this call: what was recorded goes too.
            let discard = entry.and_then(|c| c.recordable) == Some(false);
            self.media(MediaOp::Recording {
                call,
                op: RecordingOp::Stop { discard },
            });
        }
        let Some(state) = self.calls.get(&call) else {
            self.recordings.calls.remove(&call);
            return;
        };
        let started = match wanted {
            Some(right) => {
                let id = RecordingId::from_uuid(self.random.uuid_v7(self.wall(now)));
                let agent = state.record.agent;
                let left = state.customer;
                let started_at = self.wall(now);
                self.media(MediaOp::Recording {
                    call,
                    op: RecordingOp::Start {
                        recording: id,
                        left,
                        right,
                        agent,
                        started_at,
                    },
                });
                Some(Running {
                    id,
                    right,
                    paused: false,
                })
            }
            None => None,
        };
        self.recordings.calls.entry(call).or_default().running = started;
        self.show_recording(call);
    }

    /// Puts the recording's state on the call's record and announces it.
    fn show_recording(&mut self, call: CallId) {
        let running = self
            .recordings
            .calls
            .get(&call)
            .and_then(|c| c.running)
            .map(|r| LiveRecording {
                id: r.id,
                paused: r.paused,
            });
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if state.record.recording != running {
            state.record.recording = running;
            self.save(call);
        }
    }

    /// Pauses (`pause`) or resumes the call's recording, for the agent.
    pub(crate) fn pause_recording(
        &mut self,
        now: Instant,
        call: CallId,
        pause: bool,
    ) -> Result<(), CallError> {
        // A change not yet looked at (the agent answered in this same input) counts.
        self.sync_recordings(now);
        let Some(running) = self
            .recordings
            .calls
            .get_mut(&call)
            .and_then(|c| c.running.as_mut())
        else {
            return Err(CallError::State("the call is not being recorded"));
        };
        match (pause, running.paused) {
            (true, true) => return Err(CallError::State("the recording is already paused")),
            (false, false) => return Err(CallError::State("the recording is not paused")),
            _ => {}
        }
        running.paused = pause;
        let op = if pause {
            RecordingOp::Pause
        } else {
            RecordingOp::Resume
        };
        self.media(MediaOp::Recording { call, op });
        self.show_recording(call);
        Ok(())
    }

    /// The Apps API says whether this call is recorded.
    pub(crate) fn set_recordable(&mut self, now: Instant, call: CallId, recordable: bool) {
        self.recordings.calls.entry(call).or_default().recordable = Some(recordable);
        self.recordings.touch(call);
        self.sync_recordings(now);
    }
}
