//! Call recordings over HTTP: the agent pauses and resumes a call's recording (redact,
//! REC-7), a call's recordings are listed with their paused spans, a queue's `record_calls`
//! setting, the Apps API's word on whether one call is recorded, and the download of a
//! recording, which needs a session that passed a TOTP check in the last 15 minutes or an Apps
//! API key with the `recordings` scope (REC-5). Every download is audited.

use super::auth::stepped_up;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, AppsClient, CurrentUser};
use super::voice::{call_record, may_control, visible};
use super::wire::CallView;
use crate::app::AppState;
use crate::voice::{CallControl, VoiceError};
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::voice::Recording;
use switchboard_core::{CallId, Channel, Permission, QueueId, QueueKind, RecordingId, Target};
use switchboard_services::config::ConfigArea;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pause_or_resume))
        .routes(routes!(call_recordings))
        .routes(routes!(download))
        .routes(routes!(get_queue_recording, put_queue_recording))
        .routes(routes!(apps_set_recordable))
}

/// A stored recording.
#[derive(Serialize, ToSchema)]
pub struct RecordingView {
    pub id: String,
    pub call_id: String,
    pub agent_id: Option<String>,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    /// Its length in ms, paused spans included (as silence).
    pub duration_ms: u64,
    /// The WAV file's size in bytes (stereo, 8 kHz, 16-bit: the caller left, the agent right).
    pub size_bytes: u64,
    /// What the agent paused (redacted), in ms from the start.
    pub paused: Vec<PausedSpan>,
    /// `recording` (the call goes on), `complete` or `interrupted`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct PausedSpan {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl From<&Recording> for RecordingView {
    fn from(r: &Recording) -> Self {
        RecordingView {
            id: r.id.to_string(),
            call_id: r.call.to_string(),
            agent_id: r.agent.map(|a| a.to_string()),
            started: r.started_at,
            ended: r.ended_at,
            duration_ms: r.duration_ms,
            size_bytes: r.size_bytes,
            paused: r
                .paused
                .iter()
                .map(|(start_ms, end_ms)| PausedSpan {
                    start_ms: *start_ms,
                    end_ms: *end_ms,
                })
                .collect(),
            status: r.status.as_str().to_owned(),
        }
    }
}

/// Pauses or resumes the call's recording (`action` is `pause` or `resume`), for the call's
/// agent or a supervisor. While paused the recording is silence; the span is in its metadata.
/// 409 when the call is not being recorded, or already in that state.
#[utoipa::path(post, path = "/api/v1/calls/{id}/recording/{action}", tag = "voice", security(("session" = [])),
    params(("id" = String, Path), ("action" = String, Path, description = "`pause` or `resume`")),
    responses((status = 200, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn pause_or_resume(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> ApiResult<Json<CallView>> {
    let control = match action.as_str() {
        "pause" => CallControl::PauseRecording,
        "resume" => CallControl::ResumeRecording,
        _ => return Err(ApiError::not_found("action")),
    };
    let call = CallId::parse(&id)?;
    may_control(&app, &current, call).await?;
    let record = app.voice.control(call, control).await?;
    Ok(Json(CallView::from(&record)))
}

/// A call's recordings, oldest first (one per agent the caller talked to).
#[utoipa::path(get, path = "/api/v1/calls/{id}/recordings", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [RecordingView]), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn call_recordings(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<RecordingView>>> {
    let call = CallId::parse(&id)?;
    let record = call_record(&app, call).await?;
    if !visible(&current, &record, &app.services.teams_by_user().await?) {
        return Err(ApiError::not_found("call"));
    }
    let recordings = app.services.store.recordings_of_call(call).await?;
    Ok(Json(recordings.iter().map(RecordingView::from).collect()))
}

/// Who downloads: a signed-in user (who must have stepped up) or an integration's key.
enum Reader {
    User(Box<CurrentUser>),
    Key(AppsClient),
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            Ok(Reader::Key(
                AppsClient::from_request_parts(parts, app).await?,
            ))
        } else {
            Ok(Reader::User(Box::new(
                CurrentUser::from_request_parts(parts, app).await?,
            )))
        }
    }
}

/// A recording's audio: a stereo WAV file (8 kHz, 16-bit; the caller on the left channel,
/// the agent on the right). Needs a session that passed a TOTP check within the last 15
/// minutes (`POST /api/v1/auth/step-up`), or an Apps API key (HTTP basic) with the
/// `recordings` scope. Every download is in the audit log.
#[utoipa::path(get, path = "/api/v1/recordings/{id}/audio", tag = "voice", security(("session" = []), ("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "the WAV file", content_type = "audio/wav"), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody),
        (status = 403, description = "step_up_required: pass a TOTP check first (POST /api/v1/auth/step-up); scope_required: the key lacks the `recordings` scope", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "recording_in_progress: the call is still being recorded", body = super::error::ErrorBody)))]
async fn download(
    State(app): State<AppState>,
    reader: Reader,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = RecordingId::parse(&id)?;
    let now = Utc::now();
    let (actor, who) = match &reader {
        Reader::User(current) => {
            if !stepped_up(&current.session, now) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "step_up_required",
                    "recordings need a TOTP code from the last 15 minutes: POST /api/v1/auth/step-up",
                ));
            }
            (
                Some(current.user.id),
                current.user.username.as_str().to_owned(),
            )
        }
        Reader::Key(client) => {
            if !client.scopes.iter().any(|s| s == "recordings") {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "scope_required",
                    "this Apps API key does not have the `recordings` scope",
                ));
            }
            (None, format!("key:{}", client.key_id))
        }
    };
    let recording = match app.services.store.get_recording(id).await {
        Ok(recording) => recording,
        Err(switchboard_store::StoreError::NotFound(_)) => {
            return Err(ApiError::not_found("recording"))
        }
        Err(error) => return Err(error.into()),
    };
    if let Reader::User(current) = &reader {
        // A recording is seen as its call is: its agent, their supervisors, the queue's.
        let record = call_record(&app, recording.call).await?;
        if !visible(current, &record, &app.services.teams_by_user().await?) {
            return Err(ApiError::not_found("recording"));
        }
    }
    if recording.status == switchboard_core::voice::RecordingStatus::Recording {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "recording_in_progress",
            "the call is still being recorded; download it once the call has ended",
        ));
    }
    let (size, file) = app
        .recordings
        .open_reader(&recording.blob_key)
        .await
        .map_err(|e| ApiError::from_blob(e, "recording"))?;
    app.services
        .audit
        .record(
            now,
            actor,
            "recording_downloaded",
            Some(format!("recording:{}", recording.id)),
            format!("{who} downloaded the recording of call {}", recording.call),
        )
        .await;
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(error) => Some((Err(error), file)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"recording-{}.wav\"", recording.id),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRecording {
    /// Whether the queue's answered calls are recorded (default true).
    pub record_calls: bool,
}

/// The voice leaf queue `id`, or 404 (another channel's, a menu, none).
async fn voice_leaf(app: &AppState, id: &str) -> ApiResult<QueueId> {
    let id = QueueId::parse(id).map_err(|_| ApiError::not_found("queue"))?;
    let found = app
        .services
        .store
        .list_queues()
        .await?
        .into_iter()
        .any(|q| q.id == id && q.channel == Channel::Voice && q.kind == QueueKind::Leaf);
    if found {
        Ok(id)
    } else {
        Err(ApiError::not_found("voice leaf queue"))
    }
}

/// Whether a voice queue records its calls.
#[utoipa::path(get, path = "/api/v1/queues/{id}/recording", tag = "setup", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = QueueRecording), (status = 404, body = super::error::ErrorBody)))]
async fn get_queue_recording(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<QueueRecording>> {
    let queue = voice_leaf(&app, &id).await?;
    Ok(Json(QueueRecording {
        record_calls: app.services.store.queue_records_calls(queue).await?,
    }))
}

/// Sets whether a voice queue records its calls (admins). Calls answered from then on follow
/// it; a call's own setting through the Apps API wins over it.
#[utoipa::path(put, path = "/api/v1/queues/{id}/recording", tag = "setup", security(("session" = [])), params(("id" = String, Path)), request_body = QueueRecording,
    responses((status = 200, body = QueueRecording), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn put_queue_recording(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<QueueRecording>,
) -> ApiResult<Json<QueueRecording>> {
    super::require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = voice_leaf(&app, &id).await?;
    app.services
        .store
        .set_queue_recording(queue, input.record_calls)
        .await?;
    app.services.config.changed(ConfigArea::Queues).await?;
    Ok(Json(input))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordableInput {
    /// Record this call (over its queue's setting); `false` stops and deletes a recording
    /// already running.
    pub record: bool,
}

/// Says whether one live call is recorded, over its queue's `record_calls` (an integration
/// that knows the caller refused, or asked for it). 409 once the call has ended.
#[utoipa::path(patch, path = "/apps/api/v1/calls/{id}/recording", tag = "apps", security(("apps" = [])), params(("id" = String, Path)), request_body = RecordableInput,
    responses((status = 200, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn apps_set_recordable(
    State(app): State<AppState>,
    client: AppsClient,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<RecordableInput>,
) -> ApiResult<Json<CallView>> {
    let call = CallId::parse(&id).map_err(|_| ApiError::not_found("call"))?;
    match app
        .voice
        .control(call, CallControl::SetRecordable(input.record))
        .await
    {
        Ok(record) => {
            tracing::info!(key = %client.key_id, %call, record = input.record, "call recording set through the Apps API");
            Ok(Json(CallView::from(&record)))
        }
        Err(VoiceError::NotFound) => {
            app.services.store.get_call(call).await?;
            Err(ApiError::conflict("the call has ended"))
        }
        Err(other) => Err(other.into()),
    }
}
