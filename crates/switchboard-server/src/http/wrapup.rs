//! Wrap-up: the center's dispositions (admins keep the list, everyone signed in reads it), and
//! what the agent records after a call or chat: a disposition and a note, stored on the
//! contact.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::live::visible_contact;
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::contact::check_dispositions;
use switchboard_core::{ContactStatus, Permission, Target, WrapUp};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dispositions, set_dispositions))
        .routes(routes!(get_wrap_up, put_wrap_up))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dispositions {
    /// In the order agents see them; 1 to 60 characters each, no two alike, at most 50. An
    /// empty list means wrap-ups carry a note only.
    pub dispositions: Vec<String>,
}

/// The center's dispositions for wrap-up.
#[utoipa::path(get, path = "/api/v1/dispositions", tag = "setup", security(("session" = [])),
    responses((status = 200, body = Dispositions), (status = 401, body = super::error::ErrorBody)))]
async fn list_dispositions(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Dispositions>> {
    Ok(Json(Dispositions {
        dispositions: app.services.store.dispositions().await?,
    }))
}

/// Replaces the center's dispositions (admins). Wrap-ups already recorded keep theirs.
#[utoipa::path(put, path = "/api/v1/dispositions", tag = "setup", security(("session" = [])), request_body = Dispositions,
    responses((status = 200, body = Dispositions), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn set_dispositions(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<Dispositions>,
) -> ApiResult<Json<Dispositions>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let dispositions = check_dispositions(&input.dispositions)?;
    app.services.store.set_dispositions(&dispositions).await?;
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.user.id),
            "dispositions_changed",
            None,
            serde_json::json!({ "dispositions": dispositions }).to_string(),
        )
        .await;
    Ok(Json(Dispositions { dispositions }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUpInput {
    /// One of the center's dispositions (required when the center has any; matched ignoring
    /// case).
    pub disposition: Option<String>,
    /// Up to 4,000 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Serialize, ToSchema)]
pub struct WrapUpView {
    pub contact_id: String,
    pub agent_id: String,
    pub disposition: Option<String>,
    pub note: String,
    pub at: DateTime<Utc>,
}

impl From<&WrapUp> for WrapUpView {
    fn from(w: &WrapUp) -> Self {
        WrapUpView {
            contact_id: w.contact.to_string(),
            agent_id: w.agent.to_string(),
            disposition: w.disposition.clone(),
            note: w.note.clone(),
            at: w.at,
        }
    }
}

/// A contact's wrap-up, for whoever may see the contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/wrap-up", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WrapUpView), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_wrap_up(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WrapUpView>> {
    let (contact, _) = visible_contact(&app, &current.actor, &id).await?;
    let wrap_up = app
        .services
        .store
        .wrap_up(contact.id)
        .await?
        .ok_or_else(|| ApiError::not_found("wrap-up"))?;
    Ok(Json(WrapUpView::from(&wrap_up)))
}

/// Records the wrap-up of a call or chat: its agent does, while it lasts or after it ended;
/// saying it again replaces it. Someone else's contact is 403, a contact still waiting for an
/// agent 409.
#[utoipa::path(put, path = "/api/v1/contacts/{id}/wrap-up", tag = "live", security(("session" = [])), params(("id" = String, Path)), request_body = WrapUpInput,
    responses((status = 200, body = WrapUpView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody)))]
async fn put_wrap_up(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<WrapUpInput>,
) -> ApiResult<Json<WrapUpView>> {
    let (contact, _) = visible_contact(&app, &current.actor, &id).await?;
    if contact.agent != Some(current.user.id) {
        return Err(
            if contact.agent.is_none() && contact.status == ContactStatus::Queued {
                ApiError::conflict("the contact has not reached an agent yet")
            } else {
                ApiError::forbidden("only the contact's agent records its wrap-up")
            },
        );
    }
    let dispositions = app.services.store.dispositions().await?;
    let wrap_up = WrapUp::new(
        contact.id,
        current.user.id,
        input.disposition.as_deref(),
        &input.note,
        &dispositions,
        Utc::now(),
    )?;
    app.services.store.put_wrap_up(&wrap_up).await?;
    if contact.channel == switchboard_core::Channel::Voice {
        // The call's ticket gets the wrap-up (PLT-9); emergency calls have no record, so none.
        if let Some(call) = app.services.store.call_of_contact(contact.id).await? {
            crate::crm::enqueue(&app.services.jobs, crate::crm::Event::CallWrapped { call }).await;
        }
    }
    Ok(Json(WrapUpView::from(&wrap_up)))
}
