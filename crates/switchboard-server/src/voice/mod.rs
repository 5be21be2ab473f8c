//! Voice: SIP trunks and phones, RTP media, the IVR, call queues and bridging to agents.
//!
//! `transport` moves SIP messages over UDP and TCP; `engine` is the one task that owns the
//! SIP transactions (from `switchboard-sip`), registrations and calls; `media` runs the RTP
//! legs; `prompts` and `audio` make what callers hear. The rest of the server talks to the
//! engine through `VoiceService`, which sends it commands.
//!
//! Configuration changes reach voice through the configuration events: the engine compares
//! the generation it loaded trunks, numbers and voice queues at with the current one before
//! each new call, and `VoiceService` forgets cached uploaded prompts when audio or queues
//! change.

pub mod audio;
mod engine;
mod media;
pub mod prompts;
mod transport;

use crate::app::AppState;
use engine::{Command, Engine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, QueueId, UserId};
use switchboard_services::bus::ContactChange;
use switchboard_services::config::ConfigArea;
use switchboard_services::contacts::ContactError;
use tokio::sync::{mpsc, oneshot};

pub use engine::REALM;

/// Where a transfer sends a call.
#[derive(Clone, Debug)]
pub enum TransferTo {
    Queue(QueueId),
    Agent(UserId),
    Number(String),
}

/// What the API may do to a live call.
#[derive(Clone, Debug)]
pub enum CallControl {
    HangUp,
    Hold,
    Resume,
    /// Blind (`attended: false`) or attended: the agent first talks to the target.
    Transfer {
        to: TransferTo,
        attended: bool,
    },
    CompleteTransfer,
    CancelTransfer,
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("call not found (it may have ended)")]
    NotFound,
    #[error("{0}")]
    State(&'static str),
    #[error(transparent)]
    Contact(#[from] ContactError),
    #[error("voice is not running")]
    Off,
}

/// The handle the rest of the server holds.
#[derive(Default)]
pub struct VoiceService {
    commands: OnceLock<mpsc::UnboundedSender<Command>>,
    local: OnceLock<SocketAddr>,
}

impl VoiceService {
    /// Binds SIP (UDP and TCP) and starts the engine. Returns the tasks to stop on shutdown.
    pub async fn start(app: &AppState) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
        let Some(addr) = app.config.voice.sip else {
            tracing::info!("voice is off (SWITCHBOARD_SIP=off)");
            return Ok(Vec::new());
        };
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let (transport, listener) = transport::Transport::bind(addr, inbound_tx).await?;
        let local = transport.local_addr()?;
        let ip = app
            .config
            .voice
            .public_ip
            .unwrap_or(if local.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                local.ip()
            });
        let advertised = SocketAddr::new(ip, local.port());
        let (media_tx, media) = mpsc::unbounded_channel();
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (records_tx, records) = mpsc::unbounded_channel();
        let speech = audio::Speech::new(&app.config.voice.tts, app.config.data_dir.join("prompts"));
        if let Some(engine) = speech.engine() {
            tracing::info!(engine, "voice prompts by text-to-speech");
        }
        let prompts = std::sync::Arc::new(prompts::Prompts::new(
            speech,
            app.services.store.clone(),
            app.blobs.clone(),
        ));
        let config_changes = app.services.config.subscribe();
        let prompts_for_changes = prompts.clone();
        let engine = Engine::new(
            app.clone(),
            transport.clone(),
            advertised,
            ip,
            prompts,
            media_tx,
            commands_tx.clone(),
            records_tx,
        );
        let _ = app.voice.commands.set(commands_tx);
        let _ = app.voice.local.set(local);
        tracing::info!(%local, "SIP listening on UDP and TCP");
        Ok(vec![
            tokio::spawn(transport.clone().run_udp()),
            tokio::spawn(transport.run_tcp(listener)),
            tokio::spawn(engine.run(inbound, media, commands)),
            tokio::spawn(write_records(app.clone(), records)),
            tokio::spawn(forget_changed_audio(prompts_for_changes, config_changes)),
        ])
    }

    /// The SIP address (UDP and TCP), once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local.get().copied()
    }

    fn send(&self, command: Command) -> Result<(), VoiceError> {
        self.commands
            .get()
            .ok_or(VoiceError::Off)?
            .send(command)
            .map_err(|_| VoiceError::Off)
    }

    /// Routing changed a call's contact.
    pub fn contact_changed(&self, change: ContactChange) {
        let _ = self.send(Command::Contact(change));
    }

    pub async fn control(
        &self,
        call: CallId,
        control: CallControl,
    ) -> Result<CallRecord, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Control {
            call,
            control,
            reply,
        })?;
        answer.await.map_err(|_| VoiceError::Off)?
    }

    /// Calls in progress, oldest first.
    pub async fn live(&self) -> Result<Vec<CallRecord>, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Live(reply))?;
        answer.await.map_err(|_| VoiceError::Off)
    }

    /// Registered phones: user, contact URI, source address.
    pub async fn registrations(&self) -> Result<Vec<(UserId, String, SocketAddr)>, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Registrations(reply))?;
        answer.await.map_err(|_| VoiceError::Off)
    }
}

/// Forgets cached uploaded prompts and hold music when uploads or the queues they belong to
/// change (the engine checks trunks, numbers and queues itself, by generation).
async fn forget_changed_audio(
    prompts: std::sync::Arc<prompts::Prompts>,
    mut changes: mpsc::UnboundedReceiver<ConfigArea>,
) {
    while let Some(area) = changes.recv().await {
        if matches!(area, ConfigArea::VoiceAudio | ConfigArea::Queues) {
            prompts.forget_uploads();
        }
    }
}

/// Writes call records in the order the engine produced them, in batches, keeping only the
/// newest state of each call when several wait.
async fn write_records(app: AppState, mut records: mpsc::UnboundedReceiver<CallRecord>) {
    let mut batch = Vec::new();
    while records.recv_many(&mut batch, 256).await > 0 {
        let mut newest: Vec<CallRecord> = Vec::with_capacity(batch.len());
        for record in batch.drain(..) {
            match newest.iter_mut().find(|r| r.id == record.id) {
                Some(slot) => *slot = record,
                None => newest.push(record),
            }
        }
        // One transaction for the batch: a busy center writes thousands of changes a second.
        if let Err(error) = app.services.store.put_calls(&newest).await {
            tracing::error!(%error, count = newest.len(), "could not store call records");
        }
    }
}
