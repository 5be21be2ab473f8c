//! The running server: shared state, start-up and the HTTP listener.

use crate::config::Config;
use crate::contacts::ContactService;
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
        Ok(Arc::new(App {
            config,
            store,
            events,
            contacts,
            metrics,
            login_throttle: Default::default(),
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
    let sweeper = tokio::spawn(sweep_sessions(app.clone()));
    let router = crate::http::router(app);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    Ok(result?)
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
