//! Emergency calls over HTTP (EMG-6, EMG-7): the restricted emergency log, readable only with
//! `emergency_log_view`; the "Emergency Call Notification" template, which admins edit and
//! preview; and the emergency calls in progress that the signed-in user is alerted to (the
//! portal's banner on a page opened while one is).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, CurrentUser};
use super::require;
use super::wire::EmergencyAlertView;
use crate::app::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::emergency::notice::{Template, Values, Variable};
use switchboard_core::{Permission, Target, UserId};
use switchboard_store::{EmergencyCall, EmergencyFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_log))
        .routes(routes!(get_template, put_template))
        .routes(routes!(preview_template))
        .routes(routes!(in_progress))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only this agent's calls (a user id).
    pub agent: Option<String>,
    /// Only calls placed at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only calls placed before this time.
    pub to: Option<DateTime<Utc>>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One emergency call in the log.
#[derive(Serialize, ToSchema)]
pub struct EmergencyCallView {
    pub call_id: String,
    pub agent_id: String,
    /// The agent's name when they dialled.
    pub agent_name: String,
    pub started_at: DateTime<Utc>,
    /// Absent while the call is in progress.
    pub ended_at: Option<DateTime<Utc>>,
    /// As the agent typed it (`9-911`).
    pub dialled: String,
    /// The emergency number called (`911`).
    pub number: String,
    /// A carriers' test number (933).
    pub test: bool,
    /// The callback number leased to the agent; absent when none was free.
    pub callback_number: Option<String>,
    /// The address sent to the emergency service, on one line; absent when none was sent.
    pub location: Option<String>,
    /// The notification mail: `no_contacts`, `queued`, `sent` or `failed`.
    pub mail_status: String,
    /// The last attempt's error, when `failed` (it is tried again).
    pub mail_error: Option<String>,
    pub mail_sent_at: Option<DateTime<Utc>>,
}

impl From<EmergencyCall> for EmergencyCallView {
    fn from(call: EmergencyCall) -> Self {
        EmergencyCallView {
            call_id: call.call.to_string(),
            agent_id: call.agent.to_string(),
            agent_name: call.agent_name,
            started_at: call.started_at,
            ended_at: call.ended_at,
            dialled: call.dialled,
            number: call.number,
            test: call.test,
            callback_number: call.callback_number,
            location: call.location,
            mail_status: call.mail_status.as_str().to_owned(),
            mail_error: call.mail_error,
            mail_sent_at: call.mail_sent_at,
        }
    }
}

/// The restricted emergency log, newest first (`emergency_log_view`; a team-scoped role sees
/// its teams' agents only).
#[utoipa::path(get, path = "/api/v1/emergency/log", tag = "emergency", security(("session" = [])), params(LogQuery),
    responses((status = 200, body = [EmergencyCallView]), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_log(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<EmergencyCallView>>> {
    let actor = &current.actor;
    if !actor.holds(Permission::EmergencyLogView) {
        return Err(ApiError::forbidden(format!(
            "your role does not allow {}",
            Permission::EmergencyLogView.as_str()
        )));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_field", "limit is 1 to 1000"));
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if to <= from {
            return Err(ApiError::bad_request(
                "invalid_field",
                "to must be after from",
            ));
        }
    }
    let agent = query.agent.as_deref().map(UserId::parse).transpose()?;
    let calls = app
        .services
        .store
        .list_emergency_calls(&EmergencyFilter {
            agent,
            from: query.from,
            to: query.to,
            in_progress: false,
            limit,
        })
        .await?;
    let teams = if actor.can(Permission::EmergencyLogView, Target::Center) {
        None
    } else {
        Some(app.services.teams_by_user().await?)
    };
    Ok(Json(
        calls
            .into_iter()
            .filter(|call| match &teams {
                None => true,
                Some(teams) => actor.can(
                    Permission::EmergencyLogView,
                    Target::User {
                        id: call.agent,
                        teams: teams.get(&call.agent).map(Vec::as_slice).unwrap_or(&[]),
                    },
                ),
            })
            .map(EmergencyCallView::from)
            .collect(),
    ))
}

/// A template as written.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// One line, at most 200 characters.
    pub subject: String,
    /// At most 10,000 characters.
    pub body: String,
}

/// A variable a template may use.
#[derive(Serialize, ToSchema)]
pub struct TemplateVariable {
    /// Written between braces: `{agent_name}`.
    pub name: String,
    pub description: String,
}

/// A template rendered with sample values.
#[derive(Serialize, ToSchema)]
pub struct TemplatePreview {
    pub subject: String,
    pub body: String,
}

/// The notification template, the variables it may use, and a preview.
#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    pub subject: String,
    pub body: String,
    pub variables: Vec<TemplateVariable>,
    pub preview: TemplatePreview,
}

fn template_view(template: &Template) -> TemplateView {
    TemplateView {
        subject: template.subject().to_owned(),
        body: template.body().to_owned(),
        variables: Variable::ALL
            .into_iter()
            .map(|v| TemplateVariable {
                name: v.name().to_owned(),
                description: v.description().to_owned(),
            })
            .collect(),
        preview: preview(template),
    }
}

fn preview(template: &Template) -> TemplatePreview {
    let (subject, body) = template.render(&Values::sample());
    TemplatePreview { subject, body }
}

/// The "Emergency Call Notification" template mailed to an agent's emergency contacts when
/// they dial an emergency number (admins). The default until one is saved.
#[utoipa::path(get, path = "/api/v1/emergency/template", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = TemplateView), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn get_template(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<TemplateView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let template = app.services.store.emergency_template().await?;
    Ok(Json(template_view(&template)))
}

/// Saves the notification template (admins). Braces only around the variables listed; a
/// template refused is a 400 `invalid_field` saying why, and nothing changes. Audited.
#[utoipa::path(put, path = "/api/v1/emergency/template", tag = "emergency", security(("session" = [])), request_body = TemplateInput,
    responses((status = 200, body = TemplateView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn put_template(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<TemplateView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let template = Template::parse(&input.subject, &input.body)?;
    let now = Utc::now();
    app.services
        .store
        .put_emergency_template(&template, now)
        .await?;
    app.services
        .audit
        .record(
            now,
            Some(current.actor.user_id),
            "settings_changed",
            Some("emergency notification template".into()),
            format!("subject {:?}", template.subject()),
        )
        .await;
    Ok(Json(template_view(&template)))
}

/// Renders a template being edited with sample values, without saving it (admins); a
/// template that would be refused is a 400 saying why.
#[utoipa::path(post, path = "/api/v1/emergency/template/preview", tag = "emergency", security(("session" = [])), request_body = TemplateInput,
    responses((status = 200, body = TemplatePreview), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn preview_template(
    current: CurrentUser,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<TemplatePreview>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let template = Template::parse(&input.subject, &input.body)?;
    Ok(Json(preview(&template)))
}

/// The emergency calls in progress that the signed-in user is alerted to (supervisors,
/// managers and admins for the agents in their reach), oldest first; the event stream's
/// `emergency_started` and `emergency_ended` keep a page current after it.
#[utoipa::path(get, path = "/api/v1/emergency/in-progress", tag = "emergency", security(("session" = [])),
    responses((status = 200, body = [EmergencyAlertView]), (status = 401, body = super::error::ErrorBody)))]
async fn in_progress(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<EmergencyAlertView>>> {
    Ok(Json(
        app.services
            .emergency
            .in_progress(&current.actor)
            .iter()
            .map(EmergencyAlertView::from)
            .collect(),
    ))
}
