//! Call recordings on disk and in the store: the writer that turns what rooms record into
//! stereo WAV files (8 kHz, 16-bit, the caller left and the agent right) in the recordings'
//! blob store, and the retention job that deletes every recording older than seven days
//! (REC-4), whatever else happens to it.
//!
//! Failure policy: media rooms never wait for the disk. A room hands each filled chunk (two
//! seconds of audio) to the writer over an unbounded channel and goes on; the writer is one
//! thread of its own doing blocking file IO, and the metadata rows go through one async task in
//! the order the writer produced them. Each chunk is followed by a header update and a flush,
//! so a file is a valid WAV of everything written so far even if the server dies: its row then
//! says `recording`, and the next start marks it `interrupted`. A recording whose file cannot
//! be created or written is logged and marked `interrupted`; the call goes on regardless.

use crate::blobs::{BlobError, BlobStore, BlobWriter};
use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use switchboard_core::voice::{Recording, RecordingStatus, RECORDING_RETENTION_DAYS};
use switchboard_core::{CallId, JobId, RecordingId, UserId};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{Job, Store};
use tokio::sync::mpsc;

/// What a room hands the writer about its recording, in the order it happened.
#[derive(Debug)]
pub enum Piece {
    Start {
        id: RecordingId,
        call: CallId,
        agent: Option<UserId>,
        started_at: DateTime<Utc>,
    },
    /// Interleaved stereo samples (left, right, left, right…).
    Samples {
        id: RecordingId,
        samples: Vec<i16>,
    },
    Paused {
        id: RecordingId,
        at_ms: u64,
    },
    Resumed {
        id: RecordingId,
        at_ms: u64,
    },
    /// The end: its length and paused spans as the room counted them; `discard` deletes it.
    Stopped {
        id: RecordingId,
        duration_ms: u64,
        paused: Vec<(u64, u64)>,
        discard: bool,
    },
}

/// The handle rooms send their pieces to. Sending never blocks.
#[derive(Clone)]
pub struct RecordingWriter {
    pieces: std::sync::mpsc::Sender<Piece>,
}

impl RecordingWriter {
    /// Starts the writer thread and the task that stores the rows.
    pub fn start(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> std::io::Result<Self> {
        let (pieces, receiver) = std::sync::mpsc::channel();
        let (rows, row_changes) = mpsc::unbounded_channel();
        tokio::spawn(store_rows(store, blobs.clone(), row_changes));
        std::thread::Builder::new()
            .name("recordings".into())
            .spawn(move || write_files(receiver, blobs, rows))?;
        Ok(RecordingWriter { pieces })
    }

    pub fn send(&self, piece: Piece) {
        // The writer thread lives as long as the process; a send can only fail at exit.
        let _ = self.pieces.send(piece);
    }
}

/// What the row task does, in order.
enum RowChange {
    Put(Recording),
    /// Deletes the recording's bytes, then its row.
    Discard {
        id: RecordingId,
        key: String,
    },
}

async fn store_rows(
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    mut changes: mpsc::UnboundedReceiver<RowChange>,
) {
    while let Some(change) = changes.recv().await {
        match change {
            RowChange::Put(recording) => {
                if let Err(error) = store.put_recording(&recording).await {
                    tracing::error!(%error, recording = %recording.id, "could not store a recording's metadata");
                }
            }
            RowChange::Discard { id, key } => {
                if let Err(error) = blobs.delete(&key).await {
                    tracing::error!(%error, recording = %id, "could not delete a discarded recording");
                }
                match store.delete_recording(id).await {
                    Ok(()) | Err(switchboard_store::StoreError::NotFound(_)) => {}
                    Err(error) => {
                        tracing::error!(%error, recording = %id, "could not delete a discarded recording's row")
                    }
                }
            }
        }
    }
}

/// The blob key of a recording's file.
pub fn blob_key(id: RecordingId) -> String {
    format!("rec-{id}")
}

/// A blob writer shared between hound (which owns what it writes to) and the writer, which
/// finishes the blob once hound has written the final header.
#[derive(Clone)]
struct Shared(Rc<RefCell<Box<dyn BlobWriter>>>);

impl std::io::Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl std::io::Seek for Shared {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.borrow_mut().seek(to)
    }
}

/// A recording being written.
struct Open {
    row: Recording,
    /// `None` once writing failed (the rest of its pieces are dropped).
    wav: Option<(hound::WavWriter<Shared>, Shared)>,
    /// Where the open pause began.
    paused_at: Option<u64>,
}

const SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// The writer thread: one file per recording, written as its chunks arrive.
fn write_files(
    pieces: std::sync::mpsc::Receiver<Piece>,
    blobs: Arc<dyn BlobStore>,
    rows: mpsc::UnboundedSender<RowChange>,
) {
    let mut open: HashMap<RecordingId, Open> = HashMap::new();
    while let Ok(piece) = pieces.recv() {
        match piece {
            Piece::Start {
                id,
                call,
                agent,
                started_at,
            } => {
                let key = blob_key(id);
                let mut row = Recording {
                    id,
                    call,
                    agent,
                    started_at,
                    ended_at: None,
                    duration_ms: 0,
                    size_bytes: 0,
                    paused: Vec::new(),
                    status: RecordingStatus::Recording,
                    blob_key: key.clone(),
                };
                let wav = blobs
                    .create_writer(&key)
                    .map_err(|e| e.to_string())
                    .and_then(|writer| {
                        let shared = Shared(Rc::new(RefCell::new(writer)));
                        hound::WavWriter::new(shared.clone(), SPEC)
                            .map(|wav| (wav, shared))
                            .map_err(|e| e.to_string())
                    });
                let wav = match wav {
                    Ok(wav) => Some(wav),
                    Err(error) => {
                        tracing::error!(%error, recording = %id, "could not create a recording's file");
                        row.status = RecordingStatus::Interrupted;
                        None
                    }
                };
                let _ = rows.send(RowChange::Put(row.clone()));
                open.insert(
                    id,
                    Open {
                        row,
                        wav,
                        paused_at: None,
                    },
                );
            }
            Piece::Samples { id, samples } => {
                let Some(recording) = open.get_mut(&id) else {
                    continue;
                };
                if let Some((wav, _)) = recording.wav.as_mut() {
                    if let Err(error) = append(wav, &samples) {
                        tracing::error!(%error, recording = %id, "could not write a recording");
                        recording.wav = None;
                        recording.row.status = RecordingStatus::Interrupted;
                        let _ = rows.send(RowChange::Put(recording.row.clone()));
                    }
                }
            }
            Piece::Paused { id, at_ms } => {
                if let Some(recording) = open.get_mut(&id) {
                    recording.paused_at = Some(at_ms);
                }
            }
            Piece::Resumed { id, at_ms } => {
                if let Some(recording) = open.get_mut(&id) {
                    if let Some(start) = recording.paused_at.take() {
                        recording.row.paused.push((start, at_ms));
                        let _ = rows.send(RowChange::Put(recording.row.clone()));
                    }
                }
            }
            Piece::Stopped {
                id,
                duration_ms,
                paused,
                discard,
            } => {
                let Some(mut recording) = open.remove(&id) else {
                    continue;
                };
                let key = recording.row.blob_key.clone();
                let size = recording.wav.take().map(|(wav, shared)| {
                    wav.finalize()
                        .map_err(|e| e.to_string())
                        .and_then(|()| shared.0.borrow_mut().finish().map_err(|e| e.to_string()))
                });
                if discard {
                    let _ = rows.send(RowChange::Discard { id, key });
                    continue;
                }
                let row = &mut recording.row;
                row.duration_ms = duration_ms;
                row.paused = paused;
                row.ended_at = Some(
                    row.started_at
                        + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(i64::MAX)),
                );
                match size {
                    Some(Ok(size)) => {
                        row.size_bytes = size;
                        if row.status == RecordingStatus::Recording {
                            row.status = RecordingStatus::Complete;
                        }
                    }
                    Some(Err(error)) => {
                        tracing::error!(%error, recording = %id, "could not finish a recording's file");
                        row.status = RecordingStatus::Interrupted;
                    }
                    None => row.status = RecordingStatus::Interrupted,
                }
                let _ = rows.send(RowChange::Put(recording.row));
            }
        }
    }
}

/// Appends samples and rewrites the header, so the file is valid up to here.
fn append(wav: &mut hound::WavWriter<Shared>, samples: &[i16]) -> Result<(), hound::Error> {
    let length = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let mut writer = wav.get_i16_writer(length);
    for sample in samples.iter().take(length as usize) {
        writer.write_sample(*sample);
    }
    writer.flush()?;
    wav.flush()
}

/// Deletes recordings older than the retention period, files first, then rows.
pub struct Retention {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    jobs: Jobs,
}

/// How often the retention job runs.
const RETENTION_EVERY: Duration = Duration::hours(1);

impl Retention {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, jobs: Jobs) -> Self {
        Retention { store, blobs, jobs }
    }

    /// Schedules the run after `now` (on the hour) unless it is scheduled already; a server
    /// start calls it, and so does every run, first thing.
    pub async fn schedule_next(
        jobs: &Jobs,
        now: DateTime<Utc>,
    ) -> switchboard_store::StoreResult<()> {
        let at = now
            .duration_trunc(RETENTION_EVERY)
            .unwrap_or(now)
            .checked_add_signed(RETENTION_EVERY)
            .unwrap_or(now);
        // The run's id is its time: every server and restart names the same run the same.
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let id = uuid::Builder::from_unix_timestamp_millis(millis, b"recording\0").into_uuid();
        jobs.schedule_once(JobId::from_uuid(id), JobKind::RecordingRetention, at, now)
            .await?;
        Ok(())
    }

    /// Deletes every recording started before `now` less the retention period; returns how
    /// many.
    pub async fn delete_expired(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let cutoff = now - Duration::days(RECORDING_RETENTION_DAYS);
        let mut deleted = 0;
        loop {
            let expired = self
                .store
                .recordings_started_before(cutoff, 200)
                .await
                .map_err(|e| e.to_string())?;
            if expired.is_empty() {
                return Ok(deleted);
            }
            for recording in expired {
                match self.blobs.delete(&recording.blob_key).await {
                    Ok(()) | Err(BlobError::NotFound) => {}
                    Err(error) => return Err(error.to_string()),
                }
                match self.store.delete_recording(recording.id).await {
                    Ok(()) | Err(switchboard_store::StoreError::NotFound(_)) => {}
                    Err(error) => return Err(error.to_string()),
                }
                deleted += 1;
            }
        }
    }
}

#[async_trait]
impl JobHandler for Retention {
    async fn run(&self, _job: &Job, now: DateTime<Utc>) -> JobOutcome {
        // The next run is stored before this one works, so a run that fails for good never
        // ends the chain.
        if let Err(error) = Self::schedule_next(&self.jobs, now).await {
            return JobOutcome::Retry {
                error: error.to_string(),
            };
        }
        match self.delete_expired(now).await {
            Ok(0) => JobOutcome::Done,
            Ok(count) => {
                tracing::info!(count, "recordings past their retention deleted");
                JobOutcome::Done
            }
            Err(error) => JobOutcome::Retry { error },
        }
    }
}
