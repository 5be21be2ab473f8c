//! Recordings reach the CRM and leave the platform (REC-1..REC-6), as jobs.
//!
//! When a recording is complete, `enqueue` stores a job for its first part. The job waits for
//! the call's ticket, then starts the recording's upload row: the connector it goes to, its
//! size and its parts (at most 50 MB each, `switchboard_core::crm`). Each part is a job of its
//! own, retried on its own by the upload policy (backoff with jitter, the CRM's Retry-After
//! honoured, given up after six days so the seven-day cap never deletes a file still on its
//! way): a part is read from the blob store as a stream, sent, and only once the CRM
//! acknowledges it is it counted, with the CRM's receipt, and the next part's job stored. So a
//! restart resumes with the next part and sends no acknowledged part again. Once every part is
//! acknowledged the file and its row are deleted from the platform; the upload row stays and
//! says where it went.
//!
//! The built-in CRM is the platform: its tickets list the recording, which stays until the
//! retention cap like any other (state `attached`). A CRM that refuses a part as too large gets
//! smaller parts (halved, down to 1 MB); one that refuses the file for good (a 4xx) fails the
//! upload, which the portal and the audit log show.

use crate::blobs::{BlobError, BlobReader, BlobStore};
use crate::http::webhook;
use crate::zendesk::{DeliveryError, ZendeskCrm, ZendeskError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_core::crm::{next_part, parts_total, smaller_part, Part, PART_MAX_BYTES};
use switchboard_core::voice::Recording;
use switchboard_core::{JobId, RecordingId};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, Jobs};
use switchboard_store::{AuditEntry, Job, RecordingUpload, Store, StoreError, Ticket, UploadState};
use tokio::io::AsyncReadExt;

/// The job's payload: which recording, which part (from 1).
#[derive(Serialize, Deserialize)]
struct Payload {
    recording: String,
    part: u32,
}

/// The job of one part: its id is made from the recording and the part, so however often it
/// is stored (a retry of the part before, the start-up sweep) it exists once.
fn part_job(recording: RecordingId, part: u32) -> JobId {
    // The recording's bytes with the part mixed into its last four, as a custom (v8) UUID.
    let mut bytes = *recording.uuid().as_bytes();
    for (slot, b) in bytes[12..].iter_mut().zip(part.to_be_bytes()) {
        *slot ^= b;
    }
    JobId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// Stores the job that sends `part` of a recording, due at `at`.
async fn store_part_job(
    jobs: &Jobs,
    recording: RecordingId,
    part: u32,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(&Payload {
        recording: recording.to_string(),
        part,
    })
    .unwrap_or_default();
    jobs.enqueue_once(
        part_job(recording, part),
        JobKind::RecordingUpload,
        payload,
        at,
        now,
    )
    .await?;
    Ok(())
}

/// Starts a finished recording on its way to the CRM.
pub async fn enqueue(jobs: &Jobs, recording: RecordingId, now: DateTime<Utc>) {
    if let Err(error) = store_part_job(jobs, recording, 1, now, now).await {
        tracing::error!(%error, %recording, "recording upload not stored");
    }
}

/// Stores the next part's job for every upload still sending (a restart between a part's
/// acknowledgement and the next part's job loses nothing); returns how many.
pub async fn resume(store: &Arc<dyn Store>, jobs: &Jobs, now: DateTime<Utc>) -> usize {
    let mut resumed = 0;
    match store.list_uploads(true, 10_000).await {
        Ok(uploads) => {
            for upload in uploads.iter().filter(|u| u.state == UploadState::Sending) {
                if store_part_job(jobs, upload.recording, upload.parts_done + 1, now, now)
                    .await
                    .is_ok()
                {
                    resumed += 1;
                }
            }
        }
        Err(error) => tracing::error!(%error, "recording uploads not resumed"),
    }
    resumed
}

/// How a part's sending went, as the connector saw it.
#[derive(Debug)]
pub enum SendError {
    /// Try again later: no answer, a timeout, a 5xx, an answer we cannot read.
    Transient(String),
    /// The CRM asked us to wait (429, or 503 with Retry-After).
    RateLimited {
        wait: chrono::Duration,
        message: String,
    },
    /// The part is larger than the CRM takes in one request.
    TooLarge(String),
    /// The CRM refused it for good (a 4xx other than those).
    Refused(String),
}

impl SendError {
    /// Sorts an HTTP answer that was not a success.
    pub fn from_status(status: reqwest::StatusCode, retry_after: Option<&str>, what: &str) -> Self {
        let message = format!("{what} answered {status}");
        let wait = retry_after
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| *s >= 0)
            .map(|s| chrono::Duration::seconds(s.min(86_400)));
        match (status.as_u16(), wait) {
            (429, wait) | (503, wait @ Some(_)) => SendError::RateLimited {
                wait: wait.unwrap_or(chrono::Duration::zero()),
                message,
            },
            (413, _) => SendError::TooLarge(message),
            (408, _) | (500..=599, _) => SendError::Transient(message),
            _ => SendError::Refused(message),
        }
    }
}

/// Reads `part` of a blob as a stream: from its offset, its bytes alone.
async fn part_reader(
    blobs: &Arc<dyn BlobStore>,
    key: &str,
    part: Part,
) -> Result<BlobReader, BlobError> {
    let (_, reader) = blobs.open_reader_at(key, part.offset).await?;
    Ok(Box::pin(reader.take(part.len)))
}

/// A reader as a stream of 64 KiB chunks, for a request body that is never in memory whole.
pub fn chunks(
    reader: BlobReader,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut chunk = vec![0_u8; 64 * 1024];
        match reader.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(chunk), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// The file name a part goes by in a CRM.
fn part_name(recording: &Recording, part: Part) -> String {
    let stamp = recording.started_at.format("%Y%m%d-%H%M%S");
    if part.of == 1 {
        format!("call-{stamp}-{}.wav", recording.id)
    } else {
        format!(
            "call-{stamp}-{}.part{}of{}.wav",
            recording.id, part.number, part.of
        )
    }
}

/// Runs recording uploads.
pub struct Uploader {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    jobs: Jobs,
    http: reqwest::Client,
    zendesk: ZendeskCrm,
}

impl Uploader {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        jobs: Jobs,
        http: reqwest::Client,
        zendesk: ZendeskCrm,
    ) -> Self {
        Uploader {
            store,
            blobs,
            jobs,
            http,
            zendesk,
        }
    }

    /// The recording's upload row, made on its first run once the call's ticket exists.
    async fn upload_of(
        &self,
        recording: RecordingId,
        now: DateTime<Utc>,
    ) -> Result<(RecordingUpload, Ticket), JobOutcome> {
        let store = &self.store;
        let retry = |e: &dyn std::fmt::Display| JobOutcome::Retry {
            error: e.to_string(),
        };
        if let Some(upload) = store.get_upload(recording).await.map_err(|e| retry(&e))? {
            let ticket = store
                .get_ticket(upload.ticket)
                .await
                .map_err(|e| retry(&e))?;
            return Ok((upload, ticket));
        }
        let stored = match store.get_recording(recording).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound(_)) => {
                return Err(JobOutcome::GiveUp {
                    error: "the recording was deleted before its upload started".into(),
                })
            }
            Err(e) => return Err(retry(&e)),
        };
        let Some(ticket) = store
            .ticket_of_call(stored.call)
            .await
            .map_err(|e| retry(&e))?
        else {
            return Err(JobOutcome::Retry {
                error: "the call's ticket is not created yet".into(),
            });
        };
        let settings = store
            .integration_settings(&crate::secret::random_token(32))
            .await
            .map_err(|e| retry(&e))?;
        let upload = RecordingUpload {
            recording,
            call: stored.call,
            ticket: ticket.id,
            connector: settings.crm_connector,
            state: UploadState::Sending,
            size_bytes: stored.size_bytes,
            parts_total: parts_total(stored.size_bytes, 0, 0, PART_MAX_BYTES),
            parts_done: 0,
            bytes_done: 0,
            part_bytes: PART_MAX_BYTES,
            receipts: Vec::new(),
            last_error: None,
            queued_at: now,
            updated_at: now,
        };
        store.put_upload(&upload).await.map_err(|e| retry(&e))?;
        Ok((upload, ticket))
    }

    async fn run_part(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        let payload: Payload = match serde_json::from_str(&job.payload) {
            Ok(payload) => payload,
            Err(e) => {
                return JobOutcome::GiveUp {
                    error: format!("unreadable job: {e}"),
                }
            }
        };
        let Ok(recording) = RecordingId::parse(&payload.recording) else {
            return JobOutcome::GiveUp {
                error: "unreadable job: bad recording id".into(),
            };
        };
        let (mut upload, ticket) = match self.upload_of(recording, now).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        // An acknowledged part, or a part after one still missing, is nothing to do: its job
        // is a duplicate, and the part it follows stores the right one.
        if upload.state.is_final() || payload.part != upload.parts_done + 1 {
            return JobOutcome::Done;
        }
        let policy = JobKind::RecordingUpload.policy();
        if policy
            .max_age
            .is_some_and(|age| now > upload.queued_at + age)
        {
            return self
                .give_up(&mut upload, "not uploaded in time".into(), now)
                .await;
        }
        let Some(part) = next_part(
            upload.size_bytes,
            upload.parts_done,
            upload.bytes_done,
            upload.part_bytes,
        ) else {
            return self.finish(&mut upload, now).await;
        };
        let stored = match self.store.get_recording(recording).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound(_)) => {
                return self
                    .lose(
                        &mut upload,
                        "the recording was deleted before it was uploaded",
                        now,
                    )
                    .await
            }
            Err(e) => {
                return JobOutcome::Retry {
                    error: e.to_string(),
                }
            }
        };
        let sent = match upload.connector.as_str() {
            "webhook" => self.send_webhook(&upload, &ticket, &stored, part).await,
            "zendesk" => self.send_zendesk(&ticket, &stored, part).await,
            _ => {
                // The built-in CRM keeps the recording where it is, listed on the ticket.
                upload.state = UploadState::Attached;
                upload.parts_done = upload.parts_total;
                upload.bytes_done = upload.size_bytes;
                upload.updated_at = now;
                return match self.store.put_upload(&upload).await {
                    Ok(()) => JobOutcome::Done,
                    Err(e) => JobOutcome::Retry {
                        error: e.to_string(),
                    },
                };
            }
        };
        match sent {
            Ok(receipt) => {
                upload.parts_done += 1;
                upload.bytes_done += part.len;
                upload.receipts.push(receipt);
                upload.last_error = None;
                upload.updated_at = now;
                upload.parts_total = parts_total(
                    upload.size_bytes,
                    upload.parts_done,
                    upload.bytes_done,
                    upload.part_bytes,
                );
                if let Err(e) = self.store.put_upload(&upload).await {
                    return JobOutcome::Retry {
                        error: e.to_string(),
                    };
                }
                if upload.parts_done < upload.parts_total {
                    match store_part_job(&self.jobs, recording, upload.parts_done + 1, now, now)
                        .await
                    {
                        Ok(()) => JobOutcome::Done,
                        // The part is counted; the start-up sweep stores the next one.
                        Err(e) => JobOutcome::GiveUp {
                            error: format!("next part not stored: {e}"),
                        },
                    }
                } else {
                    self.finish(&mut upload, now).await
                }
            }
            Err(error) => self.failed(&mut upload, job, error, now).await,
        }
    }

    /// A part that did not go: rescheduled, resized, or given up.
    async fn failed(
        &self,
        upload: &mut RecordingUpload,
        job: &Job,
        error: SendError,
        now: DateTime<Utc>,
    ) -> JobOutcome {
        let policy = JobKind::RecordingUpload.policy();
        let (message, wait) = match error {
            SendError::Refused(message) => return self.give_up(upload, message, now).await,
            SendError::TooLarge(message) => match smaller_part(upload.part_bytes) {
                Some(smaller) => {
                    upload.part_bytes = smaller;
                    upload.parts_total = parts_total(
                        upload.size_bytes,
                        upload.parts_done,
                        upload.bytes_done,
                        smaller,
                    );
                    (format!("{message}; parts of {smaller} bytes next"), None)
                }
                None => return self.give_up(upload, message, now).await,
            },
            SendError::RateLimited { wait, message } => (message, Some(wait)),
            SendError::Transient(message) => (message, None),
        };
        // Give up now if even the shortest wait would pass the upload's age limit, so that the
        // row says so rather than a job failing quietly.
        if policy
            .next_attempt(job.attempts, upload.queued_at, now, wait, 1.0)
            .is_none()
        {
            return self.give_up(upload, message, now).await;
        }
        upload.last_error = Some(message.clone());
        upload.updated_at = now;
        if let Err(e) = self.store.put_upload(upload).await {
            tracing::warn!(error = %e, "upload error not stored");
        }
        match wait {
            Some(wait) => JobOutcome::RetryAfter {
                error: message,
                wait,
            },
            None => JobOutcome::Retry { error: message },
        }
    }

    /// Every part is acknowledged: the recording leaves the platform (REC-2).
    async fn finish(&self, upload: &mut RecordingUpload, now: DateTime<Utc>) -> JobOutcome {
        if let Ok(stored) = self.store.get_recording(upload.recording).await {
            match self.blobs.delete(&stored.blob_key).await {
                Ok(()) | Err(BlobError::NotFound) => {}
                Err(e) => {
                    return JobOutcome::Retry {
                        error: e.to_string(),
                    }
                }
            }
            match self.store.delete_recording(upload.recording).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => {
                    return JobOutcome::Retry {
                        error: e.to_string(),
                    }
                }
            }
        }
        upload.state = UploadState::Uploaded;
        upload.updated_at = now;
        if let Err(e) = self.store.put_upload(upload).await {
            return JobOutcome::Retry {
                error: e.to_string(),
            };
        }
        self.audit(
            "recording_uploaded",
            upload,
            format!("{} part(s) to {}", upload.parts_done, upload.connector),
            now,
        )
        .await;
        JobOutcome::Done
    }

    async fn give_up(
        &self,
        upload: &mut RecordingUpload,
        error: String,
        now: DateTime<Utc>,
    ) -> JobOutcome {
        upload.state = UploadState::Failed;
        upload.last_error = Some(error.clone());
        upload.updated_at = now;
        if let Err(e) = self.store.put_upload(upload).await {
            return JobOutcome::Retry {
                error: e.to_string(),
            };
        }
        self.audit("recording_upload_failed", upload, error.clone(), now)
            .await;
        JobOutcome::GiveUp { error }
    }

    async fn lose(
        &self,
        upload: &mut RecordingUpload,
        why: &str,
        now: DateTime<Utc>,
    ) -> JobOutcome {
        mark_lost(&self.store, upload, why, now).await;
        JobOutcome::GiveUp { error: why.into() }
    }

    async fn audit(
        &self,
        action: &str,
        upload: &RecordingUpload,
        detail: String,
        now: DateTime<Utc>,
    ) {
        audit(&self.store, action, upload, detail, now).await;
    }

    /// Attaches a part to the call's Zendesk ticket as an internal note naming the part (the
    /// note's text is how a retry knows the part is there already, so none goes twice).
    async fn send_zendesk(
        &self,
        ticket: &Ticket,
        recording: &Recording,
        part: Part,
    ) -> Result<String, SendError> {
        // The CRM lane makes the ticket in Zendesk (it runs beside this one): until it has, a
        // part waits, so that the two never both create it.
        if ticket.external_id.is_none() {
            return Err(SendError::Transient(
                "the call's ticket is not in Zendesk yet".into(),
            ));
        }
        let settings = self
            .store
            .integration_settings(&crate::secret::random_token(32))
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let reader = part_reader(&self.blobs, &recording.blob_key, part)
            .await
            .map_err(|e| SendError::Transient(format!("recording unreadable: {e}")))?;
        let name = part_name(recording, part);
        let note = if part.of == 1 {
            format!("Call recording {} ({} bytes)", recording.id, part.len)
        } else {
            format!(
                "Call recording {}, part {} of {} (bytes {} to {}; join the parts in order)",
                recording.id,
                part.number,
                part.of,
                part.offset,
                part.offset + part.len
            )
        };
        let file = (name, "audio/wav".to_owned(), part.len, reader);
        match self
            .zendesk
            .attach_file(&settings, ticket, &note, file)
            .await
        {
            Ok(id) => Ok(format!("zendesk ticket {id} part {}", part.number)),
            Err(DeliveryError::Zendesk(ZendeskError::RateLimited { retry_after })) => {
                Err(SendError::RateLimited {
                    wait: chrono::Duration::from_std(retry_after)
                        .unwrap_or(chrono::Duration::seconds(60)),
                    message: "Zendesk's rate limit was reached".into(),
                })
            }
            Err(DeliveryError::Zendesk(ZendeskError::TooLarge)) => Err(SendError::TooLarge(
                "Zendesk refused the part as too large".into(),
            )),
            Err(error @ DeliveryError::Zendesk(ZendeskError::Refused { .. }))
            | Err(error @ DeliveryError::NotConfigured(_)) => {
                Err(SendError::Refused(error.to_string()))
            }
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }

    /// Sends a part to the webhook CRM: the bytes as the body, signed as every event is (the
    /// signature is computed over the part read once, then the part is read again to send, so
    /// neither read holds it in memory), with the ticket and part in headers.
    async fn send_webhook(
        &self,
        upload: &RecordingUpload,
        ticket: &Ticket,
        recording: &Recording,
        part: Part,
    ) -> Result<String, SendError> {
        let settings = self
            .store
            .integration_settings(&crate::secret::random_token(32))
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let url = settings
            .crm_webhook_url
            .ok_or_else(|| SendError::Refused("the webhook CRM has no URL".into()))?;
        let secret = settings.crm_webhook_secret.unwrap_or_default();
        let blob_error = |e: BlobError| SendError::Transient(format!("recording unreadable: {e}"));
        let mut signer = webhook::Signer::new(&secret);
        let mut reader = part_reader(&self.blobs, &recording.blob_key, part)
            .await
            .map_err(blob_error)?;
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buffer)
                .await
                .map_err(|e| SendError::Transient(format!("recording unreadable: {e}")))?;
            if n == 0 {
                break;
            }
            signer.update(&buffer[..n]);
        }
        let body = part_reader(&self.blobs, &recording.blob_key, part)
            .await
            .map_err(blob_error)?;
        let body = reqwest::Body::wrap_stream(chunks(body));
        let response = self
            .http
            .post(&url)
            // A part of 50 MB takes a while on a slow link; the client's default is for events.
            .timeout(std::time::Duration::from_secs(600))
            .header("content-type", "audio/wav")
            .header("content-length", part.len)
            .header("x-switchboard-event", "recording_part")
            .header(
                "x-switchboard-delivery",
                format!("{}-{}", upload.recording, part.number),
            )
            .header(
                "x-switchboard-signature",
                format!("sha256={}", signer.finish()),
            )
            .header("x-switchboard-ticket", ticket.id.to_string())
            .header(
                "x-switchboard-ticket-external-id",
                ticket.external_id.clone().unwrap_or_default(),
            )
            .header("x-switchboard-call", upload.call.to_string())
            .header("x-switchboard-recording", upload.recording.to_string())
            .header("x-switchboard-part", format!("{}/{}", part.number, part.of))
            .header("x-switchboard-part-offset", part.offset)
            .header("x-switchboard-size", upload.size_bytes)
            .header("x-switchboard-file-name", part_name(recording, part))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("webhook unreachable: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Err(SendError::from_status(
                status,
                retry_after.as_deref(),
                "webhook",
            ));
        }
        // An acknowledgement names what the CRM made of the part; a plain 2xx is one too.
        let answer = response
            .json::<serde_json::Value>()
            .await
            .unwrap_or(serde_json::Value::Null);
        Ok(answer
            .get("id")
            .or_else(|| answer.get("external_id"))
            .and_then(|v| v.as_str())
            .map(|v| v.chars().take(200).collect())
            .unwrap_or_else(|| format!("part {}", part.number)))
    }
}

/// Records that the retention cap (or a deletion) took a recording before its upload finished.
pub async fn mark_lost(
    store: &Arc<dyn Store>,
    upload: &mut RecordingUpload,
    why: &str,
    now: DateTime<Utc>,
) {
    upload.state = UploadState::Lost;
    upload.last_error = Some(why.into());
    upload.updated_at = now;
    if let Err(error) = store.put_upload(upload).await {
        tracing::error!(%error, recording = %upload.recording, "lost upload not recorded");
    }
    audit(store, "recording_lost", upload, why.into(), now).await;
}

/// Records that the retention cap deleted a recording whose upload never started (its call
/// never got a ticket).
pub async fn lost_unsent(store: &Arc<dyn Store>, recording: &Recording, now: DateTime<Utc>) {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        at: now,
        actor: None,
        action: "recording_lost".into(),
        subject: Some(recording.id.to_string()),
        detail: format!(
            "call {}: deleted by the seven-day retention cap before its upload started",
            recording.call
        ),
    };
    if let Err(error) = store.record_audit(&entry).await {
        tracing::error!(%error, "audit entry not stored");
    }
}

async fn audit(
    store: &Arc<dyn Store>,
    action: &str,
    upload: &RecordingUpload,
    detail: String,
    now: DateTime<Utc>,
) {
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        at: now,
        actor: None,
        action: action.into(),
        subject: Some(upload.recording.to_string()),
        detail: format!("call {}, ticket {}: {detail}", upload.call, upload.ticket),
    };
    if let Err(error) = store.record_audit(&entry).await {
        tracing::error!(%error, action, "audit entry not stored");
    }
}

#[async_trait]
impl JobHandler for Uploader {
    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        self.run_part(job, now).await
    }
}
