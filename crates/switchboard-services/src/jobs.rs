//! Background work as rows: a generic job worker. A job is stored first (`Jobs::enqueue`, which
//! wakes the worker), then claimed with a lease, handed to the handler registered for its kind,
//! and completed or rescheduled with the core's retry policy (`switchboard_core::jobs`). Nothing
//! is lost to a restart or an outage: a job whose worker died is claimed again when its lease
//! expires.
//!
//! A new kind of work is a `JobKind` variant (its stored name) and a `JobHandler` registered
//! with the worker. A stored kind this server does not know, or has no handler for, fails its
//! job for good with a message saying so; it never panics the worker.
//!
//! The worker wakes when a job is enqueued and once a second for retries that fall due; tests
//! call `run_due(now)` themselves.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use switchboard_core::jobs::RetryPolicy;
use switchboard_core::JobId;
use switchboard_store::{Job, JobFilter, JobState, Store, StoreResult};
use tokio::sync::Notify;

/// How long a claimed job is ours before another worker may take it over.
pub const LEASE_SECONDS: i64 = 120;

/// The worker's lanes, each with how long a claimed job is its own: everything but recording
/// uploads, and the uploads on their own, which can take minutes a part (a part's request may
/// take ten), so their lease outlasts the longest request.
const LANES: [(JobFilter<'static>, i64); 2] = [
    (
        JobFilter::Except(JobKind::RecordingUpload.as_str()),
        LEASE_SECONDS,
    ),
    (
        JobFilter::Only(JobKind::RecordingUpload.as_str()),
        UPLOAD_LEASE_SECONDS,
    ),
];

/// How long a claimed upload part is ours.
pub const UPLOAD_LEASE_SECONDS: i64 = 900;

/// How often the worker looks for retries that fell due, when nothing wakes it.
const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a job does, stored as its `kind` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Tells the CRM about a ticket or an identity (the webhook CRM receives it as JSON).
    CrmDelivery,
    /// Deletes recordings older than the retention period (REC-4); runs every hour, each run
    /// scheduling the next one first.
    RecordingRetention,
    /// Mails an agent's emergency contacts that they dialled an emergency number (EMG-7); the
    /// payload is the call's id in the emergency log, which holds everything the mail says.
    EmergencyMail,
    /// Sends one part of a call's recording to the CRM (REC-1, REC-6); the payload names the
    /// recording and the part. Each part is a job of its own, retried on its own.
    RecordingUpload,
    /// Delivers a message a consumer left instead of chatting or waiting (AHD-4): mailed to the
    /// help-center address, or made a CRM ticket; the payload is the whole request.
    OfferEmail,
    /// Sends one SMS through the connector (the SMS channel, NTF-4); the payload is the
    /// message (to, body, purpose, conversation), the job's id is the message's.
    SmsSend,
}

/// How long a recording upload keeps trying: it must reach the CRM before the seven-day
/// retention cap deletes the file (REC-4), so it gives up a day before.
pub const UPLOAD_MAX_AGE_DAYS: i64 = 6;

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::CrmDelivery,
        JobKind::RecordingRetention,
        JobKind::EmergencyMail,
        JobKind::RecordingUpload,
        JobKind::OfferEmail,
        JobKind::SmsSend,
    ];

    /// How jobs of this kind are retried.
    pub const fn policy(self) -> RetryPolicy {
        match self {
            JobKind::RecordingUpload => RetryPolicy {
                first_delay: Duration::seconds(10),
                max_delay: Duration::seconds(1800),
                max_attempts: u32::MAX,
                max_age: Some(Duration::days(UPLOAD_MAX_AGE_DAYS)),
                jitter: true,
            },
            _ => RetryPolicy::STANDARD,
        }
    }

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::CrmDelivery => "crm",
            JobKind::RecordingRetention => "recording_retention",
            JobKind::EmergencyMail => "emergency_mail",
            JobKind::RecordingUpload => "recording_upload",
            JobKind::OfferEmail => "offer_email",
            JobKind::SmsSend => "sms_send",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownJobKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownJobKind(text.chars().take(60).collect()))
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored kind this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job kind `{0}`: this server cannot run it")]
pub struct UnknownJobKind(pub String);

/// How a run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Failed this time; try again per the retry policy (or give up once it says so).
    Retry {
        error: String,
    },
    /// Failed this time, and the other side said how long to wait (HTTP Retry-After): the
    /// retry comes no sooner than that, and no sooner than the policy says.
    RetryAfter {
        error: String,
        wait: Duration,
    },
    /// Failed for good: trying again would fail the same way.
    GiveUp {
        error: String,
    },
}

/// Runs jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs the job once; `now` is the time the worker counts from.
    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome;
}

/// The handle that stores jobs and wakes the worker. Cloning gives another handle.
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn Store>,
    /// One per lane, so that a job stored wakes whichever lane it is for.
    wake: Arc<[Notify; 2]>,
}

impl Jobs {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            wake: Arc::new([Notify::new(), Notify::new()]),
        }
    }

    fn wake_lanes(&self) {
        for lane in self.wake.iter() {
            lane.notify_one();
        }
    }

    /// Stores a job due at `now` and wakes the worker.
    pub async fn enqueue(
        &self,
        id: JobId,
        kind: JobKind,
        payload: String,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let job = Job {
            id,
            kind: kind.as_str().to_owned(),
            payload,
            state: JobState::Pending,
            run_at: now,
            attempts: 0,
            last_error: None,
            created_at: now,
        };
        self.store.enqueue_job(&job).await?;
        self.wake_lanes();
        Ok(())
    }

    /// Stores a job with a payload due at `run_at` unless a job with its id exists (work that
    /// names itself, such as one part of an upload); returns whether it was stored.
    pub async fn enqueue_once(
        &self,
        id: JobId,
        kind: JobKind,
        payload: String,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let job = Job {
            id,
            kind: kind.as_str().to_owned(),
            payload,
            state: JobState::Pending,
            run_at,
            attempts: 0,
            last_error: None,
            created_at: now,
        };
        let stored = self.store.enqueue_job_once(&job).await?;
        if stored {
            self.wake_lanes();
        }
        Ok(stored)
    }

    /// Stores a job due at `run_at` unless a job with its id exists (a recurring job names
    /// each run by its time, so however many servers and restarts schedule it, it runs once).
    pub async fn schedule_once(
        &self,
        id: JobId,
        kind: JobKind,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.enqueue_once(id, kind, String::new(), run_at, now)
            .await
    }
}

/// A number in [0, 1) for spreading retries.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1_u64 << 53) as f64
}

/// Claims due jobs and runs each with the handler of its kind.
pub struct JobWorker {
    jobs: Jobs,
    handlers: HashMap<JobKind, Arc<dyn JobHandler>>,
}

impl JobWorker {
    /// A worker for the jobs `jobs` stores, with no handlers yet.
    pub fn new(jobs: &Jobs) -> Self {
        Self {
            jobs: jobs.clone(),
            handlers: HashMap::new(),
        }
    }

    /// Registers the handler for a kind (replacing any before it).
    pub fn register(mut self, kind: JobKind, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// Runs every job due at `now` until none is left, uploads last; returns how many ran.
    /// `now` is also what the lease and the next attempt count from.
    pub async fn run_due(&self, now: DateTime<Utc>) -> usize {
        let mut ran = 0;
        for lane in LANES {
            ran += self.run_lane(lane, now).await;
        }
        ran
    }

    /// Runs every job of a lane due at `now` until none is left; returns how many ran.
    async fn run_lane(
        &self,
        (lane, lease): (JobFilter<'static>, i64),
        now: DateTime<Utc>,
    ) -> usize {
        let store = &self.jobs.store;
        let mut ran = 0;
        loop {
            let job = match store
                .claim_job(now, now + Duration::seconds(lease), lane)
                .await
            {
                Ok(Some(job)) => job,
                Ok(None) => return ran,
                Err(error) => {
                    tracing::warn!(%error, "claiming a job failed");
                    return ran;
                }
            };
            ran += 1;
            let stored = match self.run(&job, now).await {
                JobOutcome::Done => store.complete_job(job.id).await,
                JobOutcome::Retry { error } => self.retry(&job, error, None, now).await,
                JobOutcome::RetryAfter { error, wait } => {
                    self.retry(&job, error, Some(wait), now).await
                }
                JobOutcome::GiveUp { error } => {
                    tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts, %error, "job failed for good");
                    store.fail_job(job.id, &error, None).await
                }
            };
            if let Err(error) = stored {
                tracing::error!(%error, "job outcome not stored; the lease will expire and it runs again");
            }
        }
    }

    /// Reschedules a failed job by its kind's policy, or gives it up.
    async fn retry(
        &self,
        job: &Job,
        error: String,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let policy = JobKind::parse(&job.kind)
            .map(JobKind::policy)
            .unwrap_or(RetryPolicy::STANDARD);
        let retry = policy.next_attempt(job.attempts, job.created_at, now, retry_after, jitter());
        tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts, %error, retry = ?retry, "job failed");
        self.jobs.store.fail_job(job.id, &error, retry).await
    }

    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        match JobKind::parse(&job.kind) {
            Ok(kind) => match self.handlers.get(&kind) {
                Some(handler) => handler.run(job, now).await,
                None => JobOutcome::GiveUp {
                    error: format!("no handler for job kind `{kind}` on this server"),
                },
            },
            Err(unknown) => JobOutcome::GiveUp {
                error: unknown.to_string(),
            },
        }
    }

    /// Runs jobs as they are enqueued and as retries fall due, until the task is aborted: a
    /// task per lane, so a long upload never holds up a CRM delivery or an emergency mail.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // Both lanes in this one task (aborting it stops both); they take turns at each
            // await, and the work is waiting on the network and the store.
            let lane = |index: usize| {
                let worker = self.clone();
                async move {
                    loop {
                        worker.run_lane(LANES[index], Utc::now()).await;
                        tokio::select! {
                            _ = worker.jobs.wake[index].notified() => {}
                            _ = tokio::time::sleep(POLL) => {}
                        }
                    }
                }
            };
            tokio::join!(lane(0), lane(1));
        })
    }
}
