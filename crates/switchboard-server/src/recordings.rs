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
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_core::voice::{Recording, RecordingStatus, RECORDING_RETENTION_DAYS};
use switchboard_core::{CallId, JobId, RecordingId, UserId};
use switchboard_media::recorder::Chunk;
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{Job, Store, UploadState};
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
    /// The next piece of audio, each channel as G.711 µ-law: the writer decodes it.
    Audio {
        id: RecordingId,
        chunk: Chunk,
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
    /// A finished recording's upload to the CRM is stored as a job through `jobs`.
    pub fn start(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        jobs: Jobs,
    ) -> std::io::Result<Self> {
        let (pieces, receiver) = std::sync::mpsc::channel();
        let (rows, row_changes) = mpsc::unbounded_channel();
        tokio::spawn(store_rows(store, blobs.clone(), jobs, row_changes));
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
    jobs: Jobs,
    mut changes: mpsc::UnboundedReceiver<RowChange>,
) {
    while let Some(change) = changes.recv().await {
        match change {
            RowChange::Put(recording) => {
                if let Err(error) = store.put_recording(&recording).await {
                    tracing::error!(%error, recording = %recording.id, "could not store a recording's metadata");
                } else if recording.ended_at.is_some()
                    && recording.status != RecordingStatus::Recording
                {
                    // Its last row: the file is whole (or as whole as it got), so it goes to
                    // the CRM (REC-1).
                    crate::uploads::enqueue(&jobs, recording.id, Utc::now()).await;
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

/// A stereo WAV file (8 kHz, 16-bit PCM) being written: the canonical 44-byte header, then
/// the samples. After each chunk the header's sizes are rewritten, so the file is a valid WAV
/// of everything written so far.
struct Wav {
    blob: Box<dyn BlobWriter>,
    data_bytes: u32,
}

/// Bytes of the header before the samples.
const HEADER_BYTES: u32 = 44;

impl Wav {
    fn create(mut blob: Box<dyn BlobWriter>) -> std::io::Result<Wav> {
        const CHANNELS: u16 = 2;
        const RATE: u32 = 8000;
        const BITS: u16 = 16;
        let block = CHANNELS * BITS / 8;
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&(HEADER_BYTES - 8).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes()); // PCM
        header.extend_from_slice(&CHANNELS.to_le_bytes());
        header.extend_from_slice(&RATE.to_le_bytes());
        header.extend_from_slice(&(RATE * u32::from(block)).to_le_bytes());
        header.extend_from_slice(&block.to_le_bytes());
        header.extend_from_slice(&BITS.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&0u32.to_le_bytes());
        blob.write_all(&header)?;
        blob.flush()?;
        Ok(Wav {
            blob,
            data_bytes: 0,
        })
    }

    /// Appends a chunk, decoded into `scratch` (one buffer for every file, so it stays in
    /// cache) and written in one piece, then rewrites the sizes.
    fn append(&mut self, chunk: &Chunk, scratch: &mut Vec<u8>) -> std::io::Result<()> {
        scratch.resize(2 * chunk.stereo().len(), 0);
        for (bytes, sample) in scratch.chunks_exact_mut(2).zip(chunk.stereo()) {
            bytes.copy_from_slice(&sample.to_le_bytes());
        }
        let bytes = u32::try_from(scratch.len())
            .ok()
            .and_then(|n| self.data_bytes.checked_add(n))
            .filter(|total| total.checked_add(HEADER_BYTES).is_some())
            .ok_or_else(|| std::io::Error::other("a recording over 4 GiB"))?;
        self.blob.write_all(scratch)?;
        self.data_bytes = bytes;
        use std::io::SeekFrom;
        self.blob.seek(SeekFrom::Start(4))?;
        self.blob
            .write_all(&(HEADER_BYTES - 8 + bytes).to_le_bytes())?;
        self.blob.seek(SeekFrom::Start(40))?;
        self.blob.write_all(&bytes.to_le_bytes())?;
        self.blob.seek(SeekFrom::End(0))?;
        self.blob.flush()
    }

    /// Makes the file durable; returns its size in bytes.
    fn finish(mut self) -> Result<u64, BlobError> {
        self.blob.finish()
    }
}

/// A recording being written.
struct Open {
    row: Recording,
    /// `None` once writing failed (the rest of its pieces are dropped).
    wav: Option<Wav>,
    /// Where the open pause began.
    paused_at: Option<u64>,
}

/// The writer's pause between batches of pieces.
const BATCH: std::time::Duration = std::time::Duration::from_millis(50);

/// The writer thread: one file per recording, written as its chunks arrive.
fn write_files(
    pieces: std::sync::mpsc::Receiver<Piece>,
    blobs: Arc<dyn BlobStore>,
    rows: mpsc::UnboundedSender<RowChange>,
) {
    let mut open: HashMap<RecordingId, Open> = HashMap::new();
    let mut batch = Vec::new();
    let mut scratch = Vec::new();
    // A room's send wakes the writer only when it waits; between batches it sleeps, so a
    // thousand recordings cost a few wake-ups a second, not one a chunk.
    while let Ok(first) = pieces.recv() {
        batch.push(first);
        batch.extend(pieces.try_iter());
        for piece in batch.drain(..) {
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
                        .and_then(|blob| Wav::create(blob).map_err(|e| e.to_string()));
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
                Piece::Audio { id, chunk } => {
                    let Some(recording) = open.get_mut(&id) else {
                        continue;
                    };
                    if let Some(wav) = recording.wav.as_mut() {
                        if let Err(error) = wav.append(&chunk, &mut scratch) {
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
                    let size = recording.wav.take().map(Wav::finish);
                    if discard {
                        let _ = rows.send(RowChange::Discard { id, key });
                        continue;
                    }
                    let row = &mut recording.row;
                    row.duration_ms = duration_ms;
                    row.paused = paused;
                    row.ended_at = Some(
                        row.started_at
                            + Duration::milliseconds(
                                i64::try_from(duration_ms).unwrap_or(i64::MAX),
                            ),
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
        std::thread::sleep(BATCH);
    }
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
                // The cap wins over an upload still on its way, which says so (REC-4).
                match self.store.get_upload(recording.id).await {
                    Ok(Some(mut upload)) if upload.state == UploadState::Sending => {
                        let why =
                            "deleted by the seven-day retention cap before its upload finished";
                        crate::uploads::mark_lost(&self.store, &mut upload, why, now).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => crate::uploads::lost_unsent(&self.store, &recording, now).await,
                    Err(error) => return Err(error.to_string()),
                }
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
