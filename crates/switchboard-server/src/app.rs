//! The running server: shared state, start-up and the HTTP listener.

use crate::blobs::{BlobStore, LocalBlobs};
use crate::chat::ChatService;
use crate::config::Config;
use crate::contacts::{ContactChange, ContactService};
use crate::events::EventBus;
use crate::metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use switchboard_core::login::LoginThrottle;
use switchboard_store::{Store, StoreError};
use tokio::net::TcpListener;

/// Everything handlers share. Cloned per request as an `Arc`.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    pub contacts: ContactService,
    pub metrics: Arc<Metrics>,
    /// Failed sign-ins per username (in memory: a restart forgets them).
    pub login_throttle: std::sync::Mutex<LoginThrottle>,
    pub chat: ChatService,
    pub voice: crate::voice::VoiceService,
    /// Attachment and tone bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Wakes the job worker when a job is stored.
    pub jobs_wake: tokio::sync::Notify,
    /// For outgoing calls (the webhook CRM).
    pub http: reqwest::Client,
    /// Routing's change stream, until `launch` starts the chat service listening to it.
    changes: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ContactChange>>>,
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
        let store = switchboard_store::open(&config.database_url).await?;
        Self::with_store(config, store).await
    }

    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<AppState, LaunchError> {
        let events = EventBus::default();
        let metrics = Arc::new(Metrics::default());
        let contacts =
            ContactService::start(store.clone(), events.clone(), metrics.clone()).await?;
        let changes = std::sync::Mutex::new(Some(contacts.subscribe_changes()));
        // Makes the identity secret on first start, so identity tokens can be verified.
        store
            .integration_settings(&crate::secret::random_token(32))
            .await?;
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobs::new(config.data_dir.join("blobs")));
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| LaunchError::Serve(std::io::Error::other(e)))?;
        let chat = ChatService::new(store.clone());
        Ok(Arc::new(App {
            config,
            store,
            events,
            contacts,
            metrics,
            login_throttle: Default::default(),
            chat,
            voice: Default::default(),
            blobs,
            jobs_wake: tokio::sync::Notify::new(),
            http,
            changes,
        }))
    }
}

/// Serves the HTTP API on `listener` until `shutdown` resolves. Tests pass a listener bound to
/// port 0; `serve` binds the configured address.
pub async fn launch(
    app: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let mut background = vec![
        tokio::spawn(sweep_sessions(app.clone())),
        crate::crm::spawn_worker(app.clone()),
    ];
    if let Some(changes) = app.changes.lock().ok().and_then(|mut slot| slot.take()) {
        background.push(spawn_contact_listener(app.clone(), changes));
    }
    background.extend(crate::voice::VoiceService::start(&app).await?);
    let router = crate::http::router(app);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    for task in background {
        task.abort();
    }
    Ok(result?)
}

/// Hands routing's changes to the service that carries the contact: voice or chat.
fn spawn_contact_listener(
    app: AppState,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<ContactChange>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let contact = match &change {
                ContactChange::Assigned(c) | ContactChange::Ended(c) => c,
                ContactChange::Requeued { contact, .. } | ContactChange::Handed { contact, .. } => {
                    contact
                }
            };
            if contact.channel.is_call() {
                app.voice.contact_changed(change);
            } else {
                app.chat.on_change(&app, change).await;
            }
        }
    })
}

/// Removes expired sessions every hour.
async fn sweep_sessions(app: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match app.store.purge_sessions(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "expired sessions removed"),
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
    }
}
