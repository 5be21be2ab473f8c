//! Recordings on their way to the CRM (REC-1..REC-6): what an admin looks at when one is
//! late, failed or lost. The uploads themselves are jobs (`crate::uploads`).

use super::error::ApiResult;
use super::extract::{ApiQuery, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::{Permission, Target};
use switchboard_store::RecordingUpload;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_uploads))
}

/// A recording's upload.
#[derive(Serialize, ToSchema)]
pub struct UploadView {
    pub recording_id: String,
    pub call_id: String,
    pub ticket_id: String,
    /// `builtin`, `webhook` or `zendesk`.
    pub connector: String,
    /// `sending`, `uploaded` (in the CRM, deleted here), `attached` (on the built-in CRM's
    /// ticket until the seven-day cap), `failed` or `lost` (deleted by the cap first).
    pub state: String,
    pub size_bytes: u64,
    pub parts_total: u32,
    pub parts_done: u32,
    /// Why the last try failed, or why it was given up.
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&RecordingUpload> for UploadView {
    fn from(u: &RecordingUpload) -> Self {
        UploadView {
            recording_id: u.recording.to_string(),
            call_id: u.call.to_string(),
            ticket_id: u.ticket.to_string(),
            connector: u.connector.clone(),
            state: u.state.as_str().into(),
            size_bytes: u.size_bytes,
            parts_total: u.parts_total,
            parts_done: u.parts_done,
            last_error: u.last_error.clone(),
            queued_at: u.queued_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Only those still sending, failed or lost (default: every upload).
    #[serde(default)]
    pub attention: bool,
    /// At most this many, newest first (default 200, at most 1000).
    pub limit: Option<u32>,
}

/// Recordings' uploads to the CRM, newest first (admins).
#[utoipa::path(get, path = "/api/v1/recording-uploads", tag = "voice", security(("session" = [])), params(UploadQuery),
    responses((status = 200, body = [UploadView]), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_uploads(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<UploadQuery>,
) -> ApiResult<Json<Vec<UploadView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let limit = query.limit.unwrap_or(200).clamp(1, 1000);
    let uploads = app
        .services
        .store
        .list_uploads(query.attention, limit)
        .await?;
    Ok(Json(uploads.iter().map(UploadView::from).collect()))
}
