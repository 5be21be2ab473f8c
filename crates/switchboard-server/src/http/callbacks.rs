//! Scheduled callbacks over HTTP (issue 12, AHD-3): booking, listing and cancelling them
//! (an admin's session with settings_edit, or an Apps API key), and the widget's side: the
//! next open slots of a voice queue and booking one as a visitor.

use super::error::{ApiError, ApiResult};
use super::extract::{session_token, ApiJson, ApiPath, ApiQuery, AppsClient, CurrentUser};
use super::require;
use crate::app::AppState;
use crate::callbacks::BookError;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::callback::{
    Callback, CallbackError, CallbackRequest, CallbackStatus, RetryPolicy, SLOT_MINUTES,
};
use switchboard_core::{CallbackId, Permission, QueueId, Target};
use switchboard_store::StoreError;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_callback, list_callbacks))
        .routes(routes!(cancel_callback))
        .routes(routes!(get_queue_setting, put_queue_setting))
        .routes(routes!(widget_slots))
        .routes(routes!(widget_book))
}

impl From<BookError> for ApiError {
    fn from(error: BookError) -> Self {
        match error {
            BookError::UnknownQueue => ApiError::not_found("queue"),
            BookError::NotVoiceLeaf => ApiError::bad_request("invalid_callback", error.to_string()),
            BookError::Callback(error) => error.into(),
            BookError::Store(error) => error.into(),
        }
    }
}

impl From<CallbackError> for ApiError {
    fn from(error: CallbackError) -> Self {
        match error {
            CallbackError::BadNumber(_) => {
                ApiError::bad_request("invalid_number", error.to_string())
            }
            CallbackError::SlotNotOpen => ApiError::bad_request("slot_not_open", error.to_string()),
            CallbackError::NoSchedule => ApiError::bad_request("no_slots", error.to_string()),
            CallbackError::BadAttempts | CallbackError::BadDelay => {
                ApiError::bad_request("invalid_field", error.to_string())
            }
            CallbackError::WrongState(_) => {
                ApiError::new(StatusCode::CONFLICT, "callback_state", error.to_string())
            }
            CallbackError::Text(text) => text.into(),
        }
    }
}

/// Who may manage callbacks: an admin's session (settings_edit), or an Apps API key.
pub struct CallbackManager;

impl FromRequestParts<AppState> for CallbackManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = session_token(parts) {
            let current = CurrentUser::from_token(app, &token).await?;
            require(&current.actor, Permission::SettingsEdit, Target::Center)?;
            return Ok(CallbackManager);
        }
        AppsClient::from_request_parts(parts, app).await?;
        Ok(CallbackManager)
    }
}

/// One try at reaching the consumer.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub number: u32,
    pub agent_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `answered`, `no_answer`, `busy`, `failed`; null while under way.
    pub outcome: Option<String>,
}

/// A callback and its attempts.
#[derive(Serialize, ToSchema)]
pub struct CallbackView {
    pub id: String,
    pub queue_id: String,
    pub number: String,
    pub priority: i32,
    /// `scheduled` (booked for a slot) or `in_queue` (asked for by a waiting caller).
    pub origin: String,
    pub slot: DateTime<Utc>,
    /// When it next enters its queue.
    pub due_at: DateTime<Utc>,
    /// `scheduled`, `queued`, `dialing`, `connected`, `failed` or `cancelled`.
    pub status: String,
    pub max_attempts: u32,
    pub retry_delay_seconds: i64,
    pub attempts: Vec<AttemptView>,
    pub created_at: DateTime<Utc>,
}

impl From<&Callback> for CallbackView {
    fn from(c: &Callback) -> Self {
        CallbackView {
            id: c.id.to_string(),
            queue_id: c.queue.to_string(),
            number: c.number.as_str().to_owned(),
            priority: c.priority,
            origin: c.origin.kind().to_owned(),
            slot: c.slot,
            due_at: c.due_at,
            status: c.status.as_str().to_owned(),
            max_attempts: c.policy.max_attempts,
            retry_delay_seconds: c.policy.delay.num_seconds(),
            attempts: c
                .attempts
                .iter()
                .map(|a| AttemptView {
                    number: a.number,
                    agent_id: a.agent.map(|u| u.to_string()),
                    started_at: a.started_at,
                    ended_at: a.ended_at,
                    outcome: a.outcome.map(|o| o.as_str().to_owned()),
                })
                .collect(),
            created_at: c.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackInput {
    /// A voice leaf queue.
    pub queue_id: String,
    /// The consumer's number in E.164 (`+33612345678`).
    pub number: String,
    /// One of the queue's next open slots (`GET /api/v1/widget/queues/{id}/slots`).
    pub slot: DateTime<Utc>,
    /// Routing priority of the callback's contact (default 0).
    pub priority: Option<i32>,
    /// Attempts in all, 1 to 10 (default 3).
    pub max_attempts: Option<u32>,
    /// The wait after an unanswered attempt, 60 to 86400 seconds (default 600).
    pub retry_delay_seconds: Option<i64>,
}

fn policy(max_attempts: Option<u32>, delay: Option<i64>) -> ApiResult<RetryPolicy> {
    let default = RetryPolicy::default();
    Ok(RetryPolicy::new(
        max_attempts.unwrap_or(default.max_attempts),
        delay
            .map(|s| Duration::seconds(s.clamp(-1, 1_000_000)))
            .unwrap_or(default.delay),
    )?)
}

/// Books a callback for one of a voice queue's next open slots.
#[utoipa::path(post, path = "/api/v1/callbacks", tag = "setup", security(("session" = []), ("apps" = [])),
    request_body = CallbackInput,
    responses((status = 201, body = CallbackView),
        (status = 400, description = "invalid_number, slot_not_open, no_slots (the queue has no hours), invalid_callback (not a voice leaf queue), invalid_field", body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn create_callback(
    State(app): State<AppState>,
    _manager: CallbackManager,
    ApiJson(input): ApiJson<CallbackInput>,
) -> ApiResult<(StatusCode, Json<CallbackView>)> {
    let request = CallbackRequest {
        queue: QueueId::parse(&input.queue_id)?,
        number: input.number,
        priority: input.priority.unwrap_or(0).clamp(-1000, 1000),
        slot: input.slot,
        policy: policy(input.max_attempts, input.retry_delay_seconds)?,
    };
    let callback = app
        .callbacks
        .book(
            app.services.store.as_ref(),
            request,
            app.config.wall_clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CallbackView::from(&callback))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only callbacks in this status (`scheduled`, `queued`, `dialing`, `connected`,
    /// `failed`, `cancelled`).
    pub status: Option<String>,
}

/// Callbacks with their attempts, by due time (at most 1000).
#[utoipa::path(get, path = "/api/v1/callbacks", tag = "setup", security(("session" = []), ("apps" = [])), params(ListQuery),
    responses((status = 200, body = [CallbackView]), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_callbacks(
    State(app): State<AppState>,
    _manager: CallbackManager,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<CallbackView>>> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            CallbackStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_field",
                    "status is scheduled, queued, dialing, connected, failed or cancelled",
                )
            })
        })
        .transpose()?;
    let list = app.services.store.list_callbacks(status, 1000).await?;
    Ok(Json(list.iter().map(CallbackView::from).collect()))
}

/// Cancels a callback that has not reached an agent yet (a queued one leaves its queue).
#[utoipa::path(delete, path = "/api/v1/callbacks/{id}", tag = "setup", security(("session" = []), ("apps" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "callback_state: it is dialling or over", body = super::error::ErrorBody)))]
async fn cancel_callback(
    State(app): State<AppState>,
    _manager: CallbackManager,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = CallbackId::parse(&id)?;
    let store = app.services.store.as_ref();
    let mut callback = store.get_callback(id).await?;
    let from = callback.status;
    let contact = callback.contact;
    callback.cancel(app.config.wall_clock.now())?;
    store
        .save_callback(&callback, from)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "callback_state", message)
            }
            other => other.into(),
        })?;
    if let (CallbackStatus::Queued, Some(contact)) = (from, contact) {
        // It leaves its queue; it may have just reached an agent, which its contact's end stops.
        let _ = app
            .services
            .contacts
            .end(contact, "callback_cancelled".into())
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A voice queue's bookable slots, as the widget shows them.
#[derive(Serialize, ToSchema)]
pub struct SlotsView {
    pub queue_id: String,
    /// The center's time zone, in which the widget shows the slots.
    pub time_zone: String,
    pub slot_minutes: i64,
    /// Start times of the next open slots, in order.
    pub slots: Vec<DateTime<Utc>>,
}

pub async fn slots_view(app: &AppState, queue: QueueId) -> ApiResult<SlotsView> {
    let store = app.services.store.as_ref();
    let slots = crate::callbacks::slots(store, queue, app.config.wall_clock.now()).await?;
    Ok(SlotsView {
        queue_id: queue.to_string(),
        time_zone: store.center_settings().await?.time_zone,
        slot_minutes: SLOT_MINUTES,
        slots,
    })
}

/// The next open slots of a voice queue for a scheduled call (no sign-in).
#[utoipa::path(get, path = "/api/v1/widget/queues/{id}/slots", tag = "chat", params(("id" = String, Path)),
    responses((status = 200, body = SlotsView),
        (status = 400, description = "no_slots (the queue has no hours), invalid_callback (not a voice leaf queue)", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn widget_slots(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SlotsView>> {
    Ok(Json(slots_view(&app, QueueId::parse(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetCallbackInput {
    pub queue_id: String,
    pub slot: DateTime<Utc>,
    /// E.164, such as `+33612345678`.
    pub number: String,
}

/// What the visitor is told.
#[derive(Serialize, ToSchema)]
pub struct WidgetConfirmation {
    pub callback_id: String,
    pub queue_id: String,
    pub slot: DateTime<Utc>,
    pub number: String,
    pub time_zone: String,
}

/// A visitor books a scheduled call (the widget's visitor id and token headers).
#[utoipa::path(post, path = "/api/v1/widget/callbacks", tag = "chat", request_body = WidgetCallbackInput,
    responses((status = 201, body = WidgetConfirmation),
        (status = 400, description = "invalid_number, slot_not_open, no_slots, invalid_callback", body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn widget_book(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<WidgetCallbackInput>,
) -> ApiResult<(StatusCode, Json<WidgetConfirmation>)> {
    super::chat::visitor(&app, &headers).await?;
    let request = CallbackRequest {
        queue: QueueId::parse(&input.queue_id)?,
        number: input.number,
        priority: 0,
        slot: input.slot,
        policy: RetryPolicy::default(),
    };
    let store = app.services.store.as_ref();
    let callback = app
        .callbacks
        .book(store, request, app.config.wall_clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetConfirmation {
            callback_id: callback.id.to_string(),
            queue_id: callback.queue.to_string(),
            slot: callback.slot,
            number: callback.number.as_str().to_owned(),
            time_zone: store.center_settings().await?.time_zone,
        }),
    ))
}

/// Whether a voice queue's waiting callers may press `*` to be called back instead.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueCallbackSetting {
    /// On unless turned off.
    pub in_queue: bool,
}

async fn voice_leaf(app: &AppState, id: &str) -> ApiResult<QueueId> {
    let queue = QueueId::parse(id)?;
    let node = app
        .services
        .store
        .list_queues()
        .await?
        .into_iter()
        .find(|n| n.id == queue)
        .ok_or_else(|| ApiError::not_found("queue"))?;
    if node.channel != switchboard_core::Channel::Voice
        || node.kind != switchboard_core::QueueKind::Leaf
    {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "the queue is not a voice leaf queue",
        ));
    }
    Ok(queue)
}

/// Whether a voice queue's waiting callers may ask for a callback with `*`.
#[utoipa::path(get, path = "/api/v1/callbacks/queues/{id}", tag = "setup", security(("session" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = QueueCallbackSetting), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_queue_setting(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<QueueCallbackSetting>> {
    let queue = voice_leaf(&app, &id).await?;
    let off = app.services.store.queues_without_queue_callbacks().await?;
    Ok(Json(QueueCallbackSetting {
        in_queue: !off.contains(&queue),
    }))
}

/// Allows or refuses a voice queue's waiting callers asking for a callback with `*`.
#[utoipa::path(put, path = "/api/v1/callbacks/queues/{id}", tag = "setup", security(("session" = [])),
    params(("id" = String, Path)), request_body = QueueCallbackSetting,
    responses((status = 200, body = QueueCallbackSetting), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)))]
async fn put_queue_setting(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<QueueCallbackSetting>,
) -> ApiResult<Json<QueueCallbackSetting>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = voice_leaf(&app, &id).await?;
    app.services
        .store
        .set_queue_callbacks(queue, input.in_queue)
        .await?;
    app.services
        .config
        .changed(switchboard_services::config::ConfigArea::Hours)
        .await?;
    Ok(Json(input))
}
