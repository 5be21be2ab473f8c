//! Monitoring live calls (MON-1, MON-2, MON-6): a supervisor listens, coaches or barges on
//! their browser phone or SIP phone, switches mode on the same leg, and stops. Each mode needs
//! its own permission for the call's agent (a manager only for their teams); nobody monitors
//! their own call. Every start, switch and stop is in the audit log.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::wire::CallView;
use crate::app::AppState;
use crate::voice::CallControl;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use switchboard_call::SessionId;
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, MonitorMode};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_monitor, switch_monitor, stop_monitor))
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
