//! The whisper and countdown (NTF-1, NTF-2, NTF-5) over HTTP: what agents hear before a caller
//! is connected, for the center, and a queue's changes to it. A queue's uploaded whisper
//! recording is voice audio under the key `whisper:<queue id>` (`PUT /api/v1/voice/audio/…`).

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_core::whisper::{check_speed, Whisper, WhisperMessage, WhisperOverride};
use switchboard_core::{Permission, QueueId, Target};
use switchboard_services::config::ConfigArea;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_whisper, put_whisper))
        .routes(routes!(put_queue_whisper, delete_queue_whisper))
}

/// The center's whisper.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhisperView {
    /// `off`, `call_type` ("Inbound call from Sales"), `queue_name`, `text` or `recording` (the
    /// queue's upload `whisper:<queue id>`, else its name).
    pub message: String,
    /// For `text`: what is spoken (at most 300 characters).
    pub text: Option<String>,
    /// Speech speed in percent of normal, 50 to 200.
    pub speed: u16,
    /// Then "Your turn! The call begins in 3, 2, 1."
    pub countdown: bool,
}

/// A queue's changes to the center's whisper; a missing or null field keeps the center's.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueWhisperView {
    pub queue_id: Option<String>,
    pub message: Option<String>,
    pub text: Option<String>,
    pub speed: Option<u16>,
    pub countdown: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WhisperSettingsView {
    pub center: WhisperView,
    pub queues: Vec<QueueWhisperView>,
}

fn center_view(whisper: &Whisper) -> WhisperView {
    WhisperView {
        message: whisper.message.as_str().to_owned(),
        text: whisper.message.text().map(str::to_owned),
        speed: whisper.speed,
        countdown: whisper.countdown,
    }
}

fn queue_view(queue: QueueId, changes: &WhisperOverride) -> QueueWhisperView {
    QueueWhisperView {
        queue_id: Some(queue.to_string()),
        message: changes.message.as_ref().map(|m| m.as_str().to_owned()),
        text: changes
            .message
            .as_ref()
            .and_then(|m| m.text())
            .map(str::to_owned),
        speed: changes.speed,
        countdown: changes.countdown,
    }
}

/// What agents hear before a caller is connected: the center's whisper and each queue's
/// changes to it (admins).
#[utoipa::path(get, path = "/api/v1/voice/whisper", tag = "voice", security(("session" = [])),
    responses((status = 200, body = WhisperSettingsView), (status = 403, body = super::error::ErrorBody)))]
async fn get_whisper(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<WhisperSettingsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let settings = app.services.store.whisper_settings().await?;
    let mut queues: Vec<QueueWhisperView> = settings
        .queues
        .iter()
        .map(|(queue, changes)| queue_view(*queue, changes))
        .collect();
    queues.sort_by(|a, b| a.queue_id.cmp(&b.queue_id));
    Ok(Json(WhisperSettingsView {
        center: center_view(&settings.center),
        queues,
    }))
}

/// Sets the center's whisper.
#[utoipa::path(put, path = "/api/v1/voice/whisper", tag = "voice", security(("session" = [])), request_body = WhisperView,
    responses((status = 200, body = WhisperView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn put_whisper(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<WhisperView>,
) -> ApiResult<Json<WhisperView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let whisper = Whisper {
        message: WhisperMessage::parse(&input.message, input.text.as_deref())?,
        speed: check_speed(input.speed)?,
        countdown: input.countdown,
    };
    app.services.store.put_center_whisper(&whisper).await?;
    app.services.config.changed(ConfigArea::Whisper).await?;
    Ok(Json(center_view(&whisper)))
}

/// Sets a voice queue's changes to the center's whisper.
#[utoipa::path(put, path = "/api/v1/queues/{id}/whisper", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = QueueWhisperView,
    responses((status = 200, body = QueueWhisperView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn put_queue_whisper(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<QueueWhisperView>,
) -> ApiResult<Json<QueueWhisperView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = QueueId::parse(&id)?;
    let changes = WhisperOverride {
        message: input
            .message
            .as_deref()
            .map(|m| WhisperMessage::parse(m, input.text.as_deref()))
            .transpose()?,
        speed: input.speed.map(check_speed).transpose()?,
        countdown: input.countdown,
    };
    app.services
        .store
        .put_queue_whisper(queue, &changes)
        .await?;
    app.services.config.changed(ConfigArea::Whisper).await?;
    Ok(Json(queue_view(queue, &changes)))
}

/// The queue takes the center's whisper again.
#[utoipa::path(delete, path = "/api/v1/queues/{id}/whisper", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn delete_queue_whisper(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = QueueId::parse(&id)?;
    app.services.store.delete_queue_whisper(queue).await?;
    app.services.config.changed(ConfigArea::Whisper).await?;
    Ok(StatusCode::NO_CONTENT)
}
