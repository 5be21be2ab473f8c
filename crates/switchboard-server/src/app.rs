//! The running server: what handlers share, start-up, and the HTTP listener.

use crate::blobs::{BlobStore, LocalBlobs};
use crate::chat::{AgentNames, ChatService};
use crate::config::Config;
use crate::crm::CrmConnector;
use crate::recordings::Retention;
use crate::vault::Vault;
use std::future::Future;
use std::sync::Arc;
use switchboard_core::rate::RateLimit;
use switchboard_core::throttle::Throttle;
use switchboard_core::Channel;
use switchboard_services::bus::ContactChange;
use switchboard_services::jobs::{JobKind, JobWorker};
use switchboard_services::Services;
use switchboard_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Everything handlers share. Cloned per request as an `Arc`.
pub struct App {
    pub config: Config,
    /// The services' handles: store, routing, the buses, configuration events, jobs, metrics.
    pub services: Services,
    /// Failed sign-ins by source address and by account (in memory: a restart forgets them).
    pub login_throttle: std::sync::Mutex<Throttle>,
    /// Password hashing slots: argon2 takes about 19 MiB and a core's worth of time per
    /// hash, so at most this many run at once and sign-ins beyond them are refused with 503
    /// instead of queueing memory without bound.
    pub password_hashing: Arc<tokio::sync::Semaphore>,
    /// Argon2's working memory, one buffer per slot in use, reused by every check (see
    /// `secret::verify_password_in`). Holds at most as many buffers as there are slots.
    pub hashing_memory: Arc<std::sync::Mutex<Vec<Vec<argon2::Block>>>>,
    /// Visitors created per source address.
    pub visitor_creation: std::sync::Mutex<RateLimit<std::net::IpAddr>>,
    /// Attachments uploaded per visitor.
    pub attachment_uploads: std::sync::Mutex<RateLimit<switchboard_core::VisitorId>>,
    pub chat: Arc<ChatService>,
    /// The SMS channel: inbound messages and the connector (`crate::sms`).
    pub sms: Arc<crate::sms::SmsService>,
    pub voice: crate::voice::VoiceService,
    /// Attachment and tone bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Call recordings' bytes (a folder of their own under the data directory by default).
    pub recordings: Arc<dyn BlobStore>,
    /// Runs background jobs (CRM deliveries, emergency notifications) once `launch` starts it; tests may drive it.
    pub jobs: Arc<JobWorker>,
    /// Which contacts carry a voicemail rather than a call (AHD-7).
    pub voicemails: crate::voicemail::Shared,
    /// Scheduled callbacks: booking and the scheduler.
    pub callbacks: Arc<crate::callbacks::Callbacks>,
    /// Routing's changes, subscribed at start so none is missed, until `launch` hands them to
    /// the carriers.
    changes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<ContactChange>>>,
}

pub type AppState = Arc<App>;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Keys(#[from] crate::vault::KeyError),
    #[error("{0}")]
    Mail(#[from] crate::mail::MailConfigError),
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

impl App {
    /// Opens the store (migrating it) and starts the services.
    pub async fn start(config: Config) -> Result<AppState, LaunchError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| LaunchError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let vault = Arc::new(Vault::load(&config)?);
        let store =
            switchboard_store::open_sealed(&config.database_url, vault.secret_keys()).await?;
        Self::with_store(config, store, vault).await
    }

    /// Starts the services on an opened store, with the master keys that seal its blobs.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
    ) -> Result<AppState, LaunchError> {
        // Calls do not survive a restart (their media and signalling lived in the last
        // process): close what it left open before routing is built, so no ghost call keeps
        // an agent busy or is handed to one. Chats survive and are left as they are.
        let (calls, contacts) = store.close_interrupted_calls(chrono::Utc::now()).await?;
        if calls + contacts > 0 {
            tracing::warn!(calls, contacts, "closed calls a previous run left open");
        }
        // Secrets stored in clear by an older version, or sealed under an older key, are sealed
        // with the current key before anything reads them.
        let resealed = store.reseal_secrets().await?;
        if resealed > 0 {
            tracing::info!(resealed, "sealed stored secrets with the current key");
        }
        let services = Services::start(store.clone()).await?;
        let changes = std::sync::Mutex::new(Some(services.bus.subscribe()));
        // Makes the identity secret on first start, so identity tokens can be verified.
        store
            .integration_settings(&crate::secret::random_token(32))
            .await?;
        let [blobs_folder, recordings_folder] = crate::blobs::folders(&config.data_dir);
        let blobs = LocalBlobs::new(blobs_folder, vault.clone());
        let recordings = LocalBlobs::new(recordings_folder, vault);
        // Files a crash left half-written are made readable, with what they hold, before
        // anything reads them.
        let (blobs, recordings) = tokio::task::spawn_blocking(move || {
            for store in [&blobs, &recordings] {
                match store.recover_unfinished() {
                    Ok(done) => {
                        if done.recovered > 0 {
                            tracing::warn!(count = done.recovered, "files a previous run left unfinished made readable");
                        }
                        for (path, error) in done.failed {
                            tracing::error!(path = %path.display(), %error, "a file a previous run left unfinished does not open");
                        }
                    }
                    Err(error) => tracing::error!(%error, "could not look for unfinished files"),
                }
            }
            (blobs, recordings)
        })
        .await
        .map_err(|e| LaunchError::Serve(std::io::Error::other(e)))?;
        let blobs: Arc<dyn BlobStore> = Arc::new(blobs);
        let recordings: Arc<dyn BlobStore> = Arc::new(recordings);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| LaunchError::Serve(std::io::Error::other(e)))?;
        let zendesk = crate::zendesk::ZendeskCrm::new(store.clone(), blobs.clone())
            .map_err(|e| LaunchError::Serve(std::io::Error::other(e)))?;
        let names = Arc::new(AgentNames::new(store.clone()));
        let chat = Arc::new(ChatService::new(
            store.clone(),
            services.contacts.clone(),
            services.jobs.clone(),
            names.clone(),
            config.wall_clock,
        ));
        // Recordings a previous process was writing stopped with it.
        let interrupted = store.interrupt_recordings().await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "recordings a previous run left unfinished");
        }
        let retention = Retention::new(store.clone(), recordings.clone(), services.jobs.clone());
        // Uploads a previous process left between two parts go on with the next.
        crate::uploads::resume(&store, &services.jobs, chrono::Utc::now()).await;
        let uploader = crate::uploads::Uploader::new(
            store.clone(),
            recordings.clone(),
            services.jobs.clone(),
            http.clone(),
            crate::zendesk::ZendeskCrm::new(store.clone(), blobs.clone())
                .map_err(|e| LaunchError::Serve(std::io::Error::other(e)))?,
        );
        let sms = Arc::new(crate::sms::SmsService::new(
            store.clone(),
            services.jobs.clone(),
            chat.clone(),
            http.clone(),
            &config.data_dir,
            config.wall_clock,
            services.config.clone(),
        ));
        let mailer = Arc::new(crate::mail::Mailer::new(&config.mail, &config.data_dir)?);
        let store_for_voicemails = store.clone();
        let emergency_mail = crate::mail::EmergencyMailer::new(store.clone(), mailer.clone());
        let offer_mail =
            crate::offers::OfferMailer::new(store.clone(), mailer, services.jobs.clone());
        let jobs = Arc::new(
            JobWorker::new(&services.jobs)
                .register(
                    JobKind::CrmDelivery,
                    Arc::new(CrmConnector::new(store, http, names, zendesk)),
                )
                .register(JobKind::RecordingRetention, Arc::new(retention))
                .register(JobKind::EmergencyMail, Arc::new(emergency_mail))
                .register(JobKind::RecordingUpload, Arc::new(uploader))
                .register(JobKind::OfferEmail, Arc::new(offer_mail))
                .register(JobKind::SmsSend, sms.clone()),
        );
        let voicemails =
            Arc::new(crate::voicemail::Voicemails::load(store_for_voicemails.as_ref()).await?);
        let security = config.security.clone();
        Ok(Arc::new(App {
            voicemails,
            config,
            services,
            login_throttle: std::sync::Mutex::new(Throttle::new(security.login_throttle)),
            password_hashing: Arc::new(tokio::sync::Semaphore::new(
                security.password_hash_slots.max(1),
            )),
            hashing_memory: Arc::default(),
            visitor_creation: std::sync::Mutex::new(RateLimit::new(
                security.visitors_per_minute,
                chrono::Duration::minutes(1),
                100_000,
            )),
            attachment_uploads: std::sync::Mutex::new(RateLimit::new(
                security.attachments_per_minute,
                chrono::Duration::minutes(1),
                100_000,
            )),
            chat,
            sms,
            voice: Default::default(),
            blobs,
            recordings,
            jobs,
            callbacks: crate::callbacks::Callbacks::new(),
            changes,
        }))
    }
}

/// The blob store call recordings are kept in (a benchmark writes recordings through it as
/// the server would).
pub fn recording_blobs(config: &Config) -> Result<Arc<dyn BlobStore>, LaunchError> {
    let vault = Arc::new(Vault::load(config)?);
    let [_, recordings] = crate::blobs::folders(&config.data_dir);
    Ok(Arc::new(LocalBlobs::new(recordings, vault)))
}

/// Serves the HTTP API on `listener` until `shutdown` resolves. Tests pass a listener bound to
/// port 0; `serve` binds the configured address.
pub async fn launch(
    app: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    // Recordings are deleted after seven days: the hourly retention run is always scheduled.
    Retention::schedule_next(&app.services.jobs, chrono::Utc::now())
        .await
        .map_err(LaunchError::Store)?;

    let mut background = vec![
        tokio::spawn(sweep_sessions(app.clone())),
        app.jobs.clone().spawn(),
        app.callbacks.clone().spawn(
            app.services.store.clone(),
            app.services.contacts.clone(),
            app.config.wall_clock,
        ),
        tokio::spawn(app.chat.clone().refresh_standings()),
        spawn_presence_relay(app.clone()),
    ];
    background.extend(crate::attendance::AttendanceWatch::spawn(&app).await);
    if let Some(changes) = app.changes.lock().ok().and_then(|mut slot| slot.take()) {
        background.push(spawn_carriers(app.clone(), changes));
    }
    background.extend(crate::voice::VoiceService::start(&app).await?);
    let router = crate::http::router(app);
    // Handlers see the peer's address (sign-in throttling, visitor rate limits).
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    for task in background {
        task.abort();
    }
    Ok(result?)
}

/// Hands each of routing's changes to the service that carries its contact. This is the one
/// place where a channel meets its carrier.
fn spawn_carriers(
    app: AppState,
    mut changes: mpsc::UnboundedReceiver<ContactChange>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            match change.contact().channel {
                // A voicemail's contact is a voice contact that is no call (AHD-7).
                Channel::Voice if app.voicemails.carries(change.contact().id) => {
                    crate::voicemail::on_change(&app, change).await
                }
                Channel::Voice => {
                    // A scheduled callback's contact is dialled once routing gives it an agent.
                    crate::callbacks::contact_changed(&app, &change);
                    // NTF-4: a call offered to an agent may also text them; started beside
                    // the call (a job), never in its way.
                    app.sms.call_offered(&change);
                    app.voice.contact_changed(change)
                }
                Channel::Web | Channel::Mobile => app.chat.on_change(change).await,
                // An SMS conversation is a chat whose channel is SMS (`crate::sms`).
                Channel::Sms => app.chat.on_change(change).await,
            }
        }
    })
}

/// Tells each agent's adapters their presence whenever it changes, whoever changed it (the
/// agent, a supervisor, a missed call, the grace of a gone adapter, sign-out). An adapter
/// that misses one (the event bus lagged) has it again in the `welcome` of its next
/// connection.
fn spawn_presence_relay(app: AppState) -> tokio::task::JoinHandle<()> {
    use switchboard_services::events::DomainEvent;
    let mut events = app.services.events.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let DomainEvent::PresenceChanged {
                        user,
                        presence,
                        since,
                    } = &event.event
                    {
                        let frame = crate::chat::protocol::ServerEvent::Presence {
                            presence: presence.to_string(),
                            since: *since,
                        }
                        .to_json();
                        app.chat.hub.to_agent(*user, &frame, None);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "presence relay fell behind the event bus");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// Removes expired sessions every hour.
async fn sweep_sessions(app: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match app.services.store.purge_sessions(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "expired sessions removed"),
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
    }
}
