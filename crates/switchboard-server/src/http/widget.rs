//! What the chat widget shows of the center before anyone signs in.

use super::error::ApiResult;
use crate::app::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(center))
}

#[derive(Serialize, ToSchema)]
pub struct CenterView {
    /// The center's name, for the widget's header.
    pub name: String,
}

/// The center as consumers see it (no sign-in).
#[utoipa::path(get, path = "/chat/v1/center", tag = "chat", responses((status = 200, body = CenterView)))]
async fn center(State(app): State<AppState>) -> ApiResult<Json<CenterView>> {
    let settings = app.services.store.center_settings().await?;
    Ok(Json(CenterView {
        name: settings.name,
    }))
}
