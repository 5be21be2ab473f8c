//! Monitoring live calls (MON-1, MON-2, MON-5, MON-6): a supervisor listens, coaches or barges
//! on their browser phone or SIP phone, switches mode on the same leg, and stops. Each mode
//! needs its own permission for the call's agent (a manager only for their teams); nobody
//! monitors their own call. Every start, switch and stop is in the audit log.
//!
//! The call details (`GET /api/v1/calls/{id}/details`) show a call as it is now: its state, its
//! running figures, transfers, participants (monitors only to those who may monitor it) and
//! what this user may do on it. The portal's phone (`/api/v1/monitor/ws`) is the browser phone
//! of a supervisor who takes no calls: it carries their monitor legs alone.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::wire::CallView;
use crate::app::AppState;
use crate::voice::CallControl;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use switchboard_call::{CallDetails, CallState, LegRole, Party, SessionId};
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, MonitorMode, Permission, QueueId, QueueTree, UserId};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_monitor, switch_monitor, stop_monitor))
        .routes(routes!(call_details))
        .routes(routes!(monitor_phone))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    /// `listen`, `coach` or `barge`.
    pub mode: String,
    /// The browser phone to monitor on: the `session_id` its `phone_ready` frame gave.
    /// Without it, the user's registered SIP phone rings.
    pub session_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorModeInput {
    /// `listen`, `coach` or `barge`.
    pub mode: String,
}

fn parse_mode(text: &str) -> ApiResult<MonitorMode> {
    MonitorMode::parse(text).ok_or_else(|| {
        ApiError::bad_request("invalid_field", "mode is one of listen, coach and barge")
    })
}

/// The live call, if the user may monitor it in `mode`.
async fn monitorable(
    app: &AppState,
    current: &CurrentUser,
    call: CallId,
    mode: MonitorMode,
) -> ApiResult<CallRecord> {
    let live = app.voice.live().await?;
    let record = live
        .into_iter()
        .find(|c| c.id == call)
        .ok_or_else(|| ApiError::not_found("call"))?;
    if record.emergency.is_some() {
        return Err(crate::voice::VoiceError::Confidential.into());
    }
    let teams = app.services.teams_by_user().await?;
    if !super::voice::visible(current, &record, &teams) {
        return Err(ApiError::not_found("call"));
    }
    let Some(agent) = record.agent else {
        return Err(ApiError::conflict(
            "only a call in conversation with an agent can be monitored",
        ));
    };
    let agent_teams = teams.get(&agent).map_or(&[][..], Vec::as_slice);
    if !current.actor.may_monitor_call(mode, (agent, agent_teams)) {
        return Err(ApiError::forbidden(match mode {
            MonitorMode::Listen => "you may not listen to this agent's calls",
            MonitorMode::Coach => "you may not coach this agent",
            MonitorMode::Barge => "you may not barge into this agent's calls",
        }));
    }
    Ok(record)
}

async fn audit(
    app: &AppState,
    current: &CurrentUser,
    action: &str,
    record: &CallRecord,
    what: String,
) {
    let agent = record
        .agent
        .map_or_else(String::new, |a| format!(" with agent {a}"));
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.user.id),
            action,
            Some(format!("call:{}", record.id)),
            format!(
                "{} {what} call {} from {}{agent}",
                current.user.username, record.id, record.caller
            ),
        )
        .await;
}

/// Starts monitoring a call: the user's browser phone (given `session_id`) or SIP phone is
/// offered a leg that hears the caller and the agent; in `coach` the agent hears the user, in
/// `barge` both do. Neither party gets any sign of a listener.
#[utoipa::path(post, path = "/api/v1/calls/{id}/monitor", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = MonitorInput,
    responses((status = 201, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn start_monitor(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<MonitorInput>,
) -> ApiResult<(StatusCode, Json<CallView>)> {
    let call = CallId::parse(&id)?;
    let mode = parse_mode(&input.mode)?;
    let session = input
        .session_id
        .map(|s| {
            s.parse::<u64>().map(SessionId).map_err(|_| {
                ApiError::bad_request("invalid_field", "session_id is the id phone_ready gave")
            })
        })
        .transpose()?;
    let record = monitorable(&app, &current, call, mode).await?;
    let user = current.user.id;
    app.voice
        .control(
            call,
            CallControl::Monitor {
                user,
                mode,
                session,
            },
        )
        .await?;
    audit(
        &app,
        &current,
        "monitor_started",
        &record,
        match mode {
            MonitorMode::Listen => "started listening to",
            MonitorMode::Coach => "started coaching on",
            MonitorMode::Barge => "barged into",
        }
        .into(),
    )
    .await;
    Ok((StatusCode::CREATED, Json(CallView::from(&record))))
}

/// Switches the user's monitoring of a call to another mode, on the same leg.
#[utoipa::path(put, path = "/api/v1/calls/{id}/monitor", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = MonitorModeInput,
    responses((status = 200, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn switch_monitor(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<MonitorModeInput>,
) -> ApiResult<Json<CallView>> {
    let call = CallId::parse(&id)?;
    let mode = parse_mode(&input.mode)?;
    let record = monitorable(&app, &current, call, mode).await?;
    let user = current.user.id;
    app.voice
        .control(call, CallControl::SwitchMonitor { user, mode })
        .await?;
    audit(
        &app,
        &current,
        "monitor_switched",
        &record,
        format!("switched to {} on", mode.as_str()),
    )
    .await;
    Ok(Json(CallView::from(&record)))
}

/// Stops the user's monitoring of a call.
#[utoipa::path(delete, path = "/api/v1/calls/{id}/monitor", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn stop_monitor(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let call = CallId::parse(&id)?;
    let user = current.user.id;
    let record = app
        .voice
        .control(call, CallControl::StopMonitor { user })
        .await?;
    audit(
        &app,
        &current,
        "monitor_stopped",
        &record,
        "stopped monitoring".into(),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

const MODES: [MonitorMode; 3] = [MonitorMode::Listen, MonitorMode::Coach, MonitorMode::Barge];

/// A call as its details show it (MON-5). The same shape for a live call and an ended one
/// (`live` false: then `participants` is empty and `state` is `ended`).
#[derive(Serialize, ToSchema)]
pub struct CallDetailsView {
    /// The call's record, as `GET /api/v1/calls/{id}` gives it (its `properties` are the
    /// caller's profile flags).
    pub call: CallView,
    pub live: bool,
    /// `menu`, `queued`, `ringing`, `whisper`, `talking`, `held`, `consulting`,
    /// `transferring_out`, `dialing`, `calling`, or `ended`.
    pub state: String,
    /// The queue's path ("Support > Billing"), for a call that reached a queue.
    pub queue_path: Option<String>,
    pub times: CallTimesView,
    /// Transfers in order.
    pub transfers: Vec<TransferView>,
    /// Who is on the call now: the caller first, then the agent or number, devices still
    /// ringing, a consult target, and (only for a user who may monitor the call) monitors.
    pub participants: Vec<ParticipantView>,
    /// The modes this user may monitor the call in now (empty for a call without an agent, or
    /// their own).
    pub may_monitor: Vec<String>,
    /// This user's own monitoring of the call: its mode, if they monitor it.
    pub monitoring: Option<String>,
    /// Whether this user has a registered SIP phone to monitor on (else the browser only).
    pub sip_phone: bool,
}

/// A call's figures so far, in milliseconds (fixed once a stage, or the call, is over).
#[derive(Serialize, ToSchema)]
pub struct CallTimesView {
    /// In the queue until an agent's phone rang (or the caller left).
    pub wait_ms: Option<i64>,
    /// Ringing the agent until answered.
    pub ring_ms: Option<i64>,
    /// Since the answer.
    pub talk_ms: Option<i64>,
    /// On hold (held, or waiting while the agent consults), the running hold included.
    pub hold_ms: i64,
    /// When the running hold began, while the caller holds.
    pub held_since: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct TransferView {
    /// `queue`, `agent` or `number`.
    pub kind: String,
    /// The queue's or agent's id.
    pub id: Option<String>,
    /// The queue's path, the agent's name, or the number.
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ParticipantView {
    /// `caller`, `agent` (the agent or number the caller talks to, or whose device rings),
    /// `consult` (a transfer target the agent talks to) or `monitor`.
    pub role: String,
    pub user_id: Option<String>,
    /// The user's name, the caller's number, or the number called.
    pub name: String,
    /// `false` while the device still rings.
    pub answered: bool,
    /// `browser` or `sip`.
    pub device: String,
    /// For a monitor: `listen`, `coach` or `barge`.
    pub mode: Option<String>,
}

fn state_name(state: CallState) -> &'static str {
    match state {
        CallState::Answering => "answering",
        CallState::Menu => "menu",
        CallState::Queued => "queued",
        CallState::Ringing => "ringing",
        CallState::Whisper => "whisper",
        CallState::Talking => "talking",
        CallState::Held => "held",
        CallState::Consulting => "consulting",
        CallState::TransferringOut => "transferring_out",
        CallState::Dialing => "dialing",
        CallState::Calling => "calling",
        CallState::AfterHours => "after_hours",
        CallState::Voicemail => "voicemail",
    }
}

/// Names of users and queue paths, read once per answer.
struct Names {
    users: HashMap<UserId, String>,
    tree: Option<QueueTree>,
}

impl Names {
    async fn load(app: &AppState) -> ApiResult<Self> {
        let users = app
            .services
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.display_name.to_string()))
            .collect();
        let tree = QueueTree::new(app.services.store.list_queues().await?).ok();
        Ok(Self { users, tree })
    }

    fn user(&self, id: UserId) -> String {
        self.users
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "a former user".into())
    }

    fn queue(&self, id: QueueId) -> Option<String> {
        self.tree.as_ref().and_then(|t| t.path(id))
    }

    fn transfer(&self, text: &str) -> TransferView {
        let (kind, rest) = text.split_once(':').unwrap_or(("number", text));
        let (id, name) = match kind {
            "queue" => (
                Some(rest.to_owned()),
                QueueId::parse(rest)
                    .ok()
                    .and_then(|q| self.queue(q))
                    .unwrap_or_else(|| "a former queue".into()),
            ),
            "agent" => (
                Some(rest.to_owned()),
                UserId::parse(rest).map_or_else(|_| "a former user".into(), |u| self.user(u)),
            ),
            _ => (None, rest.to_owned()),
        };
        TransferView {
            kind: kind.to_owned(),
            id,
            name,
        }
    }
}

fn participant(
    names: &Names,
    record: &CallRecord,
    p: &switchboard_call::Participant,
) -> ParticipantView {
    let (user_id, name) = match &p.party {
        Party::Caller => (None, record.caller.clone()),
        Party::Agent(user) => (Some(user.to_string()), names.user(*user)),
        Party::Number(number) => (None, number.clone()),
    };
    ParticipantView {
        role: match p.role {
            LegRole::Customer => "caller",
            LegRole::Agent => "agent",
            LegRole::Consult => "consult",
            LegRole::Monitor => "monitor",
        }
        .to_owned(),
        user_id,
        name,
        answered: p.answered,
        device: if p.browser { "browser" } else { "sip" }.to_owned(),
        mode: p.mode.map(|m| m.as_str().to_owned()),
    }
}

/// A call's details (MON-5): the live call while it lasts, else its stored record. Seen by
/// whoever may see the call (its agent, those who watch its agent, a manager only for their
/// teams; a call without an agent by those who watch its queue); monitors are listed only to
/// users who may monitor the call themselves.
#[utoipa::path(get, path = "/api/v1/calls/{id}/details", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CallDetailsView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn call_details(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CallDetailsView>> {
    let call = CallId::parse(&id)?;
    let live: Option<CallDetails> = app.voice.details(call).await.ok().flatten();
    let record = match &live {
        Some(details) => details.record.clone(),
        None => app.services.store.get_call(call).await?,
    };
    let teams = app.services.teams_by_user().await?;
    if !super::voice::visible(&current, &record, &teams) {
        return Err(ApiError::forbidden("this call is not in your reach"));
    }
    let names = Names::load(&app).await?;
    let agent = record
        .agent
        .map(|a| (a, teams.get(&a).map_or(&[][..], Vec::as_slice)));
    let may_monitor: Vec<MonitorMode> = match (&live, agent) {
        (Some(_), Some(agent)) => MODES
            .into_iter()
            .filter(|m| current.actor.may_monitor_call(*m, agent))
            .collect(),
        _ => Vec::new(),
    };
    let now = Utc::now();
    let times = record.times_at(now);
    let (state, held, held_since, participants) = match &live {
        Some(details) => (
            state_name(details.state),
            details.held,
            details.held_since,
            details
                .participants
                .iter()
                .filter(|p| p.role != LegRole::Monitor || !may_monitor.is_empty())
                .map(|p| participant(&names, &record, p))
                .collect(),
        ),
        None => ("ended", Default::default(), None, Vec::new()),
    };
    let monitoring = live.as_ref().and_then(|d| {
        d.participants
            .iter()
            .find(|p| p.role == LegRole::Monitor && p.party == Party::Agent(current.user.id))
            .and_then(|p| p.mode)
            .map(|m| m.as_str().to_owned())
    });
    Ok(Json(CallDetailsView {
        call: CallView::from(&record),
        live: live.is_some(),
        state: state.to_owned(),
        queue_path: record.queue.and_then(|q| names.queue(q)),
        times: CallTimesView {
            wait_ms: times.wait_ms,
            ring_ms: times.ring_ms,
            talk_ms: times.talk_ms,
            hold_ms: i64::try_from(held.as_millis()).unwrap_or(i64::MAX),
            held_since,
        },
        transfers: record.transfers.iter().map(|t| names.transfer(t)).collect(),
        participants,
        sip_phone: !may_monitor.is_empty()
            && app
                .voice
                .registrations()
                .await
                .is_ok_and(|phones| phones.iter().any(|(user, ..)| *user == current.user.id)),
        may_monitor: may_monitor.iter().map(|m| m.as_str().to_owned()).collect(),
        monitoring,
    }))
}

/// The portal's phone (WebSocket, signed in; the browser phone's frames of
/// docs/browser-phone.md and nothing else). It carries the user's monitor legs only: it never
/// rings for a call routed to them and does not count as an open adapter. Needs one of the
/// call-monitoring permissions.
#[utoipa::path(get, path = "/api/v1/monitor/ws", tag = "voice", security(("session" = [])), responses((status = 101, description = "WebSocket"), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
    (status = 403, description = "forbidden (no call-monitoring permission) or origin_not_allowed", body = super::error::ErrorBody)))]
async fn monitor_phone(
    State(app): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    super::extract::ApiWebSocket(upgrade): super::extract::ApiWebSocket,
) -> ApiResult<Response> {
    super::extract::check_origin(&headers, &app.config.security.allowed_origins)?;
    let monitors = [
        Permission::MonitorCallsListen,
        Permission::MonitorCallsCoach,
        Permission::MonitorCallsBarge,
    ];
    if !monitors.into_iter().any(|p| current.actor.holds(p)) {
        return Err(ApiError::forbidden("your role does not monitor calls"));
    }
    let user = current.user.id;
    Ok(upgrade
        .max_message_size(crate::chat::protocol::TRANSPORT_LIMIT_BYTES)
        .on_upgrade(move |socket| {
            crate::chat::agent::serve_monitor_phone(app.chat.clone(), app, user, socket)
        }))
}
