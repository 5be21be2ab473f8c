//! What consumers are offered instead of chatting or waiting (AHD-4), over HTTP: the
//! help-center address their messages are mailed to (without one they become CRM tickets) and
//! after how long a waiting chat is offered to leave a message instead. Reading is open to
//! every signed-in user; changing needs settings_edit. The messages themselves arrive on the
//! chat protocol (`leave_message`) and are delivered by the `offer_email` job.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_core::offer::{OfferError, OfferSettings};
use switchboard_core::{Permission, Target};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_offers, put_offers))
}

impl From<OfferError> for ApiError {
    fn from(error: OfferError) -> Self {
        match error {
            OfferError::Text(text) => text.into(),
            other => ApiError::bad_request("invalid_field", other.to_string()),
        }
    }
}

/// The center's offer settings.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferSettingsView {
    /// Where messages consumers leave are mailed; `null`: they become CRM tickets.
    pub help_email: Option<String>,
    /// After how many seconds (10 to 86,400) a waiting chat is offered to leave a message
    /// instead; `null`: never.
    pub wait_offer_seconds: Option<u32>,
    /// How messages are delivered now: `mail` or `ticket` (read only).
    #[serde(default, skip_deserializing)]
    pub delivery: &'static str,
}

impl From<&OfferSettings> for OfferSettingsView {
    fn from(settings: &OfferSettings) -> Self {
        OfferSettingsView {
            help_email: settings.help_email.as_ref().map(|e| e.as_str().to_owned()),
            wait_offer_seconds: settings.wait_offer_after,
            delivery: settings.delivery().kind(),
        }
    }
}

/// The center's offer settings.
#[utoipa::path(get, path = "/api/v1/contact-offers", tag = "setup", security(("session" = [])),
    responses((status = 200, body = OfferSettingsView)))]
async fn get_offers(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<OfferSettingsView>> {
    let settings = app.services.store.offer_settings().await?;
    Ok(Json((&settings).into()))
}

/// Sets the help-center address and the wait offer.
#[utoipa::path(put, path = "/api/v1/contact-offers", tag = "setup", security(("session" = [])),
    request_body = OfferSettingsView,
    responses((status = 200, body = OfferSettingsView), (status = 403, body = super::error::ErrorBody)))]
async fn put_offers(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<OfferSettingsView>,
) -> ApiResult<Json<OfferSettingsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let settings = OfferSettings::new(input.help_email.as_deref(), input.wait_offer_seconds)?;
    app.services.store.set_offer_settings(&settings).await?;
    Ok(Json((&settings).into()))
}
