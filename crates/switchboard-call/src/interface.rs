//! What goes into the engine and what comes out of it. The IO shell turns sockets, the media
//! plane, the contact service, the prompt renderer and the API into `Input`s, and carries out
//! every `Output`; nothing else crosses the boundary.

use crate::directory::Directory;
use crate::ids::{LegId, ReplyToken, SessionId};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::Arc;
use switchboard_core::voice::{CallRecord, Disposition};
use switchboard_core::{CallId, ContactId, Language, MonitorMode, QueueId, RecordingId, UserId};
use switchboard_sip::transaction::Peer;
use switchboard_sip::Message;

/// 8 kHz mono linear PCM, shared between calls.
pub type Samples = Arc<[i16]>;

/// What the engine is told: everything it reacts to, each with the time it happened.
pub enum Input {
    /// A parsed SIP message from a transport (malformed ones never get here).
    Sip { message: Message, peer: Peer },
    /// The voice configuration: on start and whenever it changed.
    Directory(Directory),
    /// What the media plane reports.
    Media(MediaEvent),
    /// Audio asked for with `Output::Render`, ready to play, if that request is still current.
    Rendered {
        leg: LegId,
        token: u64,
        parts: Vec<Samples>,
        then_loop: Option<Samples>,
    },
    /// The answer to a `RoutingRequest`.
    Routing(RoutingResult),
    /// What routing did to a contact (from the contact service's change bus).
    Contact(ContactEvent),
    /// What an agent's browser session did.
    Browser(BrowserEvent),
    /// An agent places a call to a number (the adapter's dialer, or the calls API); answered
    /// with `Output::Reply` and this token. The agent's device rings first (the browser
    /// session `from` alone, when given, else every device of theirs); once they answer, the
    /// number is called through the outbound trunk. The shell has checked the agent may dial
    /// out and the number is allowed.
    Dial {
        token: ReplyToken,
        agent: UserId,
        number: String,
        from: Option<SessionId>,
        /// An emergency call (EMG-1..9): how it leaves; `None` for any other number.
        emergency: Option<Box<EmergencyDial>>,
    },
    /// A scheduled callback's contact reached `agent`: their devices ring, they hear the
    /// whisper ("Callback from {queue}"), then `number` is called through the outbound trunk
    /// while they hear ringback. Answered with `Output::Reply` and this token.
    CallbackDial {
        token: ReplyToken,
        contact: ContactId,
        agent: UserId,
        number: String,
        queue: QueueId,
    },
    /// The shell's decision on a number an agent dialled from their SIP phone
    /// (`Output::PhoneDial`): place it (as an emergency call with `Some`), or refuse it.
    PhoneDialed {
        call: CallId,
        decision: Result<Option<Box<EmergencyDial>>, PhoneRefusal>,
    },
    /// The callback numbers leased now (EMG-4), all of them, replacing what was known: on
    /// start and after every lease.
    Callbacks(Vec<switchboard_core::emergency::Lease>),
    /// An API command about a live call; answered with `Output::Reply` and this token.
    Command {
        token: ReplyToken,
        call: CallId,
        control: CallControl,
    },
}

/// Why a number dialled from an agent's SIP phone is refused: the SIP status and the
/// Warning text the phone shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneRefusal {
    pub status: u16,
    pub warning: String,
}

/// How an emergency call leaves (the shell has recognised the number, checked the
/// prerequisites, leased the callback number and chosen the trunk). The number is called at
/// once, while the agent's device rings, so nothing waits before the INVITE leaves.
#[derive(Clone, Debug)]
pub struct EmergencyDial {
    /// The emergency number to call (`911`), sent as it is: no dial rule applies.
    pub number: String,
    /// The trunk allowed to carry it (the registry's direct route, or the emergency-capable
    /// outbound trunk).
    pub trunk: switchboard_core::TrunkId,
    /// The callback number, in From and P-Asserted-Identity; `None` when the pool is
    /// exhausted (the trunk's caller id is sent).
    pub callback: Option<String>,
    /// The PIDF-LO of the agent's civic address (RFC 6442), if one is known.
    pub location: Option<String>,
}

#[derive(Debug)]
pub enum Output {
    /// Bytes for a SIP peer.
    Transmit { peer: Peer, bytes: Vec<u8> },
    /// A caller waiting in `queue` pressed `*` to be called back on `number` instead: the
    /// shell stores the callback keeping the place of `contact` (which ends once the caller
    /// has heard the confirmation and is hung up).
    CallbackAsked {
        call: CallId,
        contact: ContactId,
        queue: QueueId,
        number: String,
    },
    /// Something for the media plane to do.
    Media(MediaOp),
    /// Something for an agent's browser session (through the shell's WebSocket to it).
    Browser(BrowserOp),
    /// Render these sounds for a leg and answer with `Input::Rendered` and the same token.
    /// With `repeat`, `sounds` and `then` play again and again as one loop.
    Render {
        leg: LegId,
        token: u64,
        sounds: Vec<Sound>,
        then: Option<Sound>,
        repeat: bool,
    },
    /// Ask the contact service; some requests are answered with `Input::Routing`.
    Routing(RoutingRequest),
    /// An agent dialled `number` from their registered SIP phone: is it an emergency number
    /// they may call, or a number they may dial? Answered with `Input::PhoneDialed`; the
    /// phone hears nothing until then.
    PhoneDial {
        call: CallId,
        agent: UserId,
        number: String,
    },
    /// A call's record changed: store it (in the order given) and announce it.
    Call(CallRecord),
    /// For the shell's metrics.
    Metric(CallMetric),
    /// The answer to an `Input::Command`.
    Reply {
        token: ReplyToken,
        result: Result<CallRecord, CallError>,
    },
    /// A caller left a voicemail at a closed queue (AHD-7): its recording is stopped (the
    /// room finishes the file); deliver it.
    Voicemail(VoicemailLeft),
}

/// A voicemail just left: the caller alone, recorded as `recording`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicemailLeft {
    pub call: CallId,
    pub recording: RecordingId,
    /// The closed queue the caller reached.
    pub queue: QueueId,
    /// The caller's number, as on the call's record.
    pub caller: String,
    pub language: Option<Language>,
    pub started_at: DateTime<Utc>,
    /// From the tone to `#`, the hang-up or the longest length.
    pub duration_ms: u64,
}

/// What the media plane is asked to do. A call's legs share one media room.
#[derive(Debug)]
pub enum MediaOp {
    /// Open media for a new leg in the call's room (an RTP/RTCP port pair, or a WebRTC
    /// session with a browser); answered with `MediaEvent::Ready` or `MediaEvent::Unavailable`.
    Open {
        call: CallId,
        leg: LegId,
        kind: MediaKind,
    },
    /// Where the leg's far end takes media, and its codec and telephone-event payload type.
    Remote {
        leg: LegId,
        addr: SocketAddr,
        payload_type: u8,
        dtmf: Option<u8>,
    },
    /// The legs this leg hears (its row of the room's mix matrix).
    Hears {
        leg: LegId,
        sources: Vec<LegId>,
    },
    /// Play to the leg (replacing what it played).
    Play {
        leg: LegId,
        token: u64,
        parts: Vec<Samples>,
        then_loop: Option<Samples>,
    },
    StopPlaying {
        leg: LegId,
    },
    /// Whether the far end is expected to send media (not while it holds the call), so that
    /// silence means it is gone.
    ExpectMedia {
        leg: LegId,
        expect: bool,
    },
    /// Close the leg's media; answered with `MediaEvent::Closed` and its packet counts.
    Close {
        leg: LegId,
    },
    /// Something for the call's recorder (a room records one recording at a time).
    Recording {
        call: CallId,
        op: RecordingOp,
    },
}

/// What a call's room does with its recording. The engine decides when a call is recorded,
/// paused and stopped; the room writes what its participants say and reports nothing back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordingOp {
    /// Records `left` (the caller) on the left channel and `right` (the agent) on the right,
    /// as the recording `recording`, from now on. A recording running is stopped first.
    Start {
        recording: RecordingId,
        left: LegId,
        right: LegId,
        agent: Option<UserId>,
        started_at: DateTime<Utc>,
    },
    /// Silence from now on, until `Resume` (redact); the span goes in the metadata.
    Pause,
    Resume,
    /// Ends the recording; with `discard`, it is deleted (the call was marked not recordable).
    Stop {
        discard: bool,
    },
}

/// How a leg's media travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// Plain RTP to a SIP endpoint.
    Rtp,
    /// DTLS-SRTP with the browser of this session, negotiated by the shell.
    Browser { session: SessionId },
}

/// What an agent's browser session reports (the shell turns its WebSocket messages and its
/// WebRTC connection's state into these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrowserEvent {
    /// An agent's adapter is open and can take calls.
    Online { session: SessionId, agent: UserId },
    /// A supervisor's portal phone is open: it takes the user's monitor legs only and never
    /// rings for a call routed to them.
    MonitorOnline { session: SessionId, user: UserId },
    /// It closed (or its connection was lost).
    Offline { session: SessionId },
    /// The agent answered the leg and its media is connected.
    Answered { leg: LegId },
    /// The agent declined the leg (or the browser could not set it up).
    Declined { leg: LegId },
    /// The agent hung up.
    HungUp { leg: LegId },
}

/// What an agent's browser session is told.
#[derive(Clone, Debug, PartialEq)]
pub enum BrowserOp {
    /// A call rings for the agent; answering starts the WebRTC negotiation for `leg`.
    Ring {
        session: SessionId,
        leg: LegId,
        call: Box<CallRecord>,
    },
    /// The leg is over (answered elsewhere, the caller left, hung up by the system).
    Stop { session: SessionId, leg: LegId },
}

#[derive(Debug)]
pub enum MediaEvent {
    Ready {
        leg: LegId,
        port: u16,
    },
    Unavailable {
        leg: LegId,
    },
    Dtmf {
        leg: LegId,
        digit: char,
    },
    /// No media from the leg's far end for the configured time while it was expected.
    Timeout {
        leg: LegId,
    },
    PlaybackDone {
        leg: LegId,
        token: u64,
    },
    Closed {
        leg: LegId,
        received: u32,
        sent: u32,
    },
}

/// What the engine asks of the contact service.
#[derive(Debug)]
pub enum RoutingRequest {
    /// Open a contact for an agent's outbound call, held by that agent (it takes their call
    /// capacity); answered with `RoutingResult::Enqueued`.
    Outbound {
        call: CallId,
        contact: ContactId,
        agent: UserId,
        number: String,
    },
    /// Queue the call's contact; answered with `RoutingResult::Enqueued`.
    Enqueue {
        call: CallId,
        contact: ContactId,
        queue: QueueId,
        language: Option<Language>,
        customer: String,
    },
    /// End the contact (its call ended); not answered.
    End {
        contact: ContactId,
        reason: &'static str,
    },
    /// Move the contact; answered with `RoutingResult::Transferred` and `op`.
    Transfer {
        op: u64,
        contact: ContactId,
        target: RoutingTarget,
    },
    /// The agent did not take the call: make them not ready, then return the contact to its
    /// queue keeping its place. Not answered (the change bus tells what happened).
    Missed { contact: ContactId, agent: UserId },
    /// How many wait ahead; answered with `RoutingResult::Position`.
    Position {
        call: CallId,
        contact: ContactId,
        token: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingTarget {
    Queue(QueueId),
    Agent(UserId),
}

#[derive(Debug)]
pub enum RoutingResult {
    Enqueued {
        call: CallId,
        result: Result<(), RoutingRefusal>,
    },
    Transferred {
        op: u64,
        result: Result<(), RoutingRefusal>,
    },
    Position {
        call: CallId,
        token: u64,
        position: Option<usize>,
    },
}

/// Why routing refused (the contact service's answers, by kind).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutingRefusal {
    #[error("queue not found")]
    UnknownQueue,
    #[error("queue is a menu; contacts wait in leaf queues")]
    NotALeaf,
    #[error("contact not found")]
    UnknownContact,
    #[error("contact has already ended")]
    AlreadyEnded,
    #[error("the contact is not with an agent")]
    NotAssigned,
    #[error("the agent is not available or has no room for it")]
    AgentUnavailable,
    #[error("contacts are transferred within their channel")]
    WrongChannel,
    /// The service could not answer (its store failed).
    #[error("routing is unavailable: {0}")]
    Unavailable(String),
}

/// What routing did to a call's contact.
#[derive(Clone, Debug)]
pub enum ContactEvent {
    Assigned {
        contact: ContactId,
        agent: UserId,
    },
    /// Back to waiting in `queue`; `from` held it until now.
    Requeued {
        contact: ContactId,
        queue: Option<QueueId>,
        from: UserId,
    },
    /// From one agent straight to another.
    Handed {
        contact: ContactId,
        agent: UserId,
        from: UserId,
    },
    /// The contact ended; `by_user` when a user ended it from the monitoring lists (MON-7),
    /// which the call's record says as `ended_by: supervisor`.
    Ended {
        contact: ContactId,
        by_user: bool,
    },
}

/// Where a transfer sends a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTo {
    Queue(QueueId),
    Agent(UserId),
    Number(String),
}

/// What the API may do to a live call.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Sets the caller's profile flags that are `Some` here, leaving the others as they are
    /// (the Apps API, during the call).
    UpdateProperties(switchboard_core::chat::ReservedProperties),
    /// The agent pauses the call's recording (redact: the caller reads out a card number).
    PauseRecording,
    ResumeRecording,
    /// Whether this call is recorded, over its queue's setting (the Apps API). `false` stops
    /// and deletes a recording already running.
    SetRecordable(bool),
    /// `user` starts monitoring the call in `mode` on their browser `session` (or their SIP
    /// phone). Answered with the call's record, which the monitor does not change.
    Monitor {
        user: UserId,
        mode: MonitorMode,
        session: Option<SessionId>,
    },
    /// `user`, monitoring the call, switches to `mode` on the same leg.
    SwitchMonitor {
        user: UserId,
        mode: MonitorMode,
    },
    /// `user` stops monitoring the call.
    StopMonitor {
        user: UserId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("call not found (it may have ended)")]
    NotFound,
    /// The call is not in a state that allows it; the message says why.
    #[error("{0}")]
    State(&'static str),
    #[error(transparent)]
    Routing(#[from] RoutingRefusal),
    /// An emergency call: confidential, so it cannot be monitored (EMG-6).
    #[error(
        "this is an emergency call: emergency calls are confidential and can never be monitored"
    )]
    Confidential,
}

/// Changes the shell's metrics follow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CallMetric {
    /// A call was accepted (in progress until `Ended`).
    Started,
    /// A call started waiting in a queue.
    Queued,
    /// A waiting call left the queue (answered or gone).
    LeftQueue,
    /// First answered by an agent, after this wait.
    Answered {
        wait_ms: Option<i64>,
    },
    Ended {
        disposition: Disposition,
    },
    /// A monitor's phone answered: one more user listening, coaching or barging.
    MonitorJoined,
    /// An answered monitor leg ended.
    MonitorLeft,
}

/// Something to play; the shell turns it into audio (uploads, text-to-speech, tones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sound {
    /// A menu's prompt: its recording, or its choices spoken.
    Menu {
        node: Option<QueueId>,
        language: Option<Language>,
        choices: Vec<String>,
    },
    /// "That is not a valid choice."
    Invalid,
    /// "You are number N in the queue."
    Position(usize),
    /// The queue's hold music (or the center's).
    Hold(Option<QueueId>),
    Silence(u32),
    /// A text spoken at `speed` percent of normal (the whisper and the countdown).
    Speak {
        text: String,
        speed: u16,
    },
    /// The recording uploaded as the queue's whisper, or `fallback` spoken when there is none.
    WhisperRecording {
        queue: QueueId,
        fallback: String,
        speed: u16,
    },
    /// What an agent hears while the number they dialled rings.
    Ringback,
    /// A closed queue's after-hours message (AHD-8): the recording uploaded for the queue (or
    /// the center) and the caller's language, else `text` spoken.
    AfterHours {
        queue: QueueId,
        language: Option<Language>,
        text: String,
    },
    /// The tone after a voicemail greeting: speak now.
    Beep,
}
