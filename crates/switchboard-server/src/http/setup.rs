//! Center setup: the queue menu trees, capacity profiles, business hours, settings, custom
//! statuses and Apps API keys. Reading is open to every signed-in user; changing needs
//! settings_edit.

use super::directory::parse_languages;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use super::require;
use super::wire::{
    ApiKeyInput, ApiKeyView, CapacityProfileInput, CapacityProfileView, CustomStatusInput,
    HoursInput, HoursView, NewQueue, OpenStatus, QueueChanges, QueueView, ScopeView, SettingsView,
};
use crate::app::AppState;
use crate::secret;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use switchboard_core::hours::{
    parse_time_zone, Closure, Holiday, HoursScope, HoursSet, Schedule, WeeklyPeriod,
};
use switchboard_core::{
    CapacityProfile, CapacityProfileId, Channel, Language, Name, Permission, QueueId, QueueKind,
    QueueNode, QueueTree, Target,
};
use switchboard_services::config::ConfigArea;
use switchboard_store::{CenterSettings, HoursRecord};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues, create_queue))
        .routes(routes!(update_queue, delete_queue))
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(update_profile, delete_profile))
        .routes(routes!(list_hours, create_hours))
        .routes(routes!(replace_hours, delete_hours))
        .routes(routes!(hours_status))
        .routes(routes!(get_settings, update_settings))
        .routes(routes!(list_custom_statuses, create_custom_status))
        .routes(routes!(delete_custom_status))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(delete_api_key))
}

fn settings_editor(current: &CurrentUser) -> ApiResult<()> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChannelFilter {
    /// Only this channel's tree.
    pub channel: Option<String>,
}

/// Every queue node with its path, in menu order.
pub async fn queue_views(app: &AppState, channel: Option<Channel>) -> ApiResult<Vec<QueueView>> {
    let nodes = app.services.store.list_queues().await?;
    let tree = QueueTree::new(nodes.clone()).map_err(|e| ApiError::internal(&e))?;
    Ok(nodes
        .iter()
        .filter(|n| channel.is_none_or(|c| n.channel == c))
        .map(|n| QueueView::new(n, tree.path(n.id).unwrap_or_default()))
        .collect())
}

/// The queue menu trees as a flat list (each node has its parent and path).
#[utoipa::path(get, path = "/api/v1/queues", tag = "setup", security(("session" = [])), params(ChannelFilter), responses((status = 200, body = [QueueView])))]
async fn list_queues(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiQuery(filter): ApiQuery<ChannelFilter>,
) -> ApiResult<Json<Vec<QueueView>>> {
    let channel = filter.channel.as_deref().map(Channel::parse).transpose()?;
    Ok(Json(queue_views(&app, channel).await?))
}

fn parse_queue_id(text: &str) -> ApiResult<QueueId> {
    QueueId::parse(text).map_err(|_| ApiError::not_found("queue"))
}

async fn view_of(app: &AppState, id: QueueId) -> ApiResult<QueueView> {
    queue_views(app, None)
        .await?
        .into_iter()
        .find(|q| q.id == id.to_string())
        .ok_or_else(|| ApiError::not_found("queue"))
}

/// Adds a menu or a leaf queue to a channel's tree.
#[utoipa::path(post, path = "/api/v1/queues", tag = "setup", security(("session" = [])), request_body = NewQueue,
    responses((status = 201, body = QueueView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_queue(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<NewQueue>,
) -> ApiResult<(StatusCode, Json<QueueView>)> {
    settings_editor(&current)?;
    let node = QueueNode {
        id: QueueId::from_uuid(Uuid::now_v7()),
        channel: Channel::parse(&input.channel)?,
        parent: input.parent_id.as_deref().map(QueueId::parse).transpose()?,
        name: Name::parse("name", &input.name)?,
        kind: QueueKind::parse(&input.kind)?,
        position: input.position.unwrap_or(0),
        priority: input.priority.unwrap_or(0),
        languages: parse_languages(&input.languages)?,
    };
    app.services.store.create_queue(&node).await?;
    app.services.config.changed(ConfigArea::Queues).await?;
    Ok((StatusCode::CREATED, Json(view_of(&app, node.id).await?)))
}

/// Changes a queue: rename, move (`parent_id`, `null` for the top), reorder, re-prioritise.
#[utoipa::path(patch, path = "/api/v1/queues/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)), request_body = QueueChanges,
    responses((status = 200, body = QueueView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn update_queue(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(changes): ApiJson<QueueChanges>,
) -> ApiResult<Json<QueueView>> {
    settings_editor(&current)?;
    let id = parse_queue_id(&id)?;
    let mut node = app
        .services
        .store
        .list_queues()
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| ApiError::not_found("queue"))?;
    if let Some(parent) = &changes.parent_id {
        node.parent = parent.as_deref().map(QueueId::parse).transpose()?;
    }
    if let Some(name) = &changes.name {
        node.name = Name::parse("name", name)?;
    }
    if let Some(kind) = &changes.kind {
        node.kind = QueueKind::parse(kind)?;
    }
    if let Some(position) = changes.position {
        node.position = position;
    }
    if let Some(priority) = changes.priority {
        node.priority = priority;
    }
    if let Some(languages) = &changes.languages {
        node.languages = parse_languages(languages)?;
    }
    app.services.store.update_queue(&node).await?;
    app.services.config.changed(ConfigArea::Queues).await?;
    Ok(Json(view_of(&app, id).await?))
}

/// Removes a queue with no children and no contact history.
#[utoipa::path(delete, path = "/api/v1/queues/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn delete_queue(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    app.services
        .store
        .delete_queue(parse_queue_id(&id)?)
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::Tree(switchboard_core::TreeError::NotFound(_)) => {
                ApiError::not_found("queue")
            }
            other => other.into(),
        })?;
    app.services.config.changed(ConfigArea::Queues).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Capacity profiles.
#[utoipa::path(get, path = "/api/v1/capacity-profiles", tag = "setup", security(("session" = [])), responses((status = 200, body = [CapacityProfileView])))]
async fn list_profiles(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<CapacityProfileView>>> {
    Ok(Json(
        app.services
            .store
            .list_capacity_profiles()
            .await?
            .iter()
            .map(CapacityProfileView::from)
            .collect(),
    ))
}

fn profile_from(id: CapacityProfileId, input: &CapacityProfileInput) -> ApiResult<CapacityProfile> {
    Ok(CapacityProfile::new(
        id,
        Name::parse("name", &input.name)?,
        input.max_chats,
        input.max_calls,
        input.voice_outbound,
    )?)
}

/// Creates a capacity profile (chats and calls at once, voice outbound).
#[utoipa::path(post, path = "/api/v1/capacity-profiles", tag = "setup", security(("session" = [])), request_body = CapacityProfileInput,
    responses((status = 201, body = CapacityProfileView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_profile(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<CapacityProfileInput>,
) -> ApiResult<(StatusCode, Json<CapacityProfileView>)> {
    settings_editor(&current)?;
    let profile = profile_from(CapacityProfileId::from_uuid(Uuid::now_v7()), &input)?;
    app.services.store.create_capacity_profile(&profile).await?;
    app.services
        .config
        .changed(ConfigArea::CapacityProfiles)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CapacityProfileView::from(&profile)),
    ))
}

fn parse_profile_id(text: &str) -> ApiResult<CapacityProfileId> {
    CapacityProfileId::parse(text).map_err(|_| ApiError::not_found("capacity profile"))
}

/// Replaces a capacity profile; agents holding it are re-routed under the new limits.
#[utoipa::path(put, path = "/api/v1/capacity-profiles/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)), request_body = CapacityProfileInput,
    responses((status = 200, body = CapacityProfileView), (status = 404, body = super::error::ErrorBody)))]
async fn update_profile(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<CapacityProfileInput>,
) -> ApiResult<Json<CapacityProfileView>> {
    settings_editor(&current)?;
    let profile = profile_from(parse_profile_id(&id)?, &input)?;
    app.services.store.update_capacity_profile(&profile).await?;
    app.services
        .config
        .changed(ConfigArea::CapacityProfiles)
        .await?;
    Ok(Json(CapacityProfileView::from(&profile)))
}

/// Removes a capacity profile no user holds.
#[utoipa::path(delete, path = "/api/v1/capacity-profiles/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn delete_profile(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    app.services
        .store
        .delete_capacity_profile(parse_profile_id(&id)?)
        .await?;
    app.services
        .config
        .changed(ConfigArea::CapacityProfiles)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Business-hours schedules: the global one and the overrides per queue, channel, language.
#[utoipa::path(get, path = "/api/v1/business-hours", tag = "setup", security(("session" = [])), responses((status = 200, body = [HoursView])))]
async fn list_hours(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<HoursView>>> {
    Ok(Json(
        app.services
            .store
            .list_hours()
            .await?
            .iter()
            .map(HoursView::from)
            .collect(),
    ))
}

fn parse_scope(scope: &ScopeView) -> ApiResult<HoursScope> {
    Ok(HoursScope {
        queue: scope.queue_id.as_deref().map(QueueId::parse).transpose()?,
        channel: scope.channel.as_deref().map(Channel::parse).transpose()?,
        language: scope.language.as_deref().map(Language::parse).transpose()?,
    })
}

async fn hours_record(app: &AppState, id: String, input: &HoursInput) -> ApiResult<HoursRecord> {
    let zone = match &input.time_zone {
        Some(zone) => zone.clone(),
        None => app.services.store.center_settings().await?.time_zone,
    };
    let schedule = Schedule::new(
        parse_time_zone(&zone)?,
        input
            .periods
            .iter()
            .map(|p| WeeklyPeriod::parse(p))
            .collect::<Result<_, _>>()?,
        input
            .holidays
            .iter()
            .map(|h| Holiday::parse(h))
            .collect::<Result<_, _>>()?,
        input
            .closures
            .iter()
            .map(|c| Closure::parse(c))
            .collect::<Result<_, _>>()?,
    )?;
    Ok(HoursRecord {
        id,
        name: Name::parse("name", &input.name)?.to_string(),
        scope: parse_scope(&input.scope)?,
        schedule,
    })
}

/// Creates a schedule; one per scope.
#[utoipa::path(post, path = "/api/v1/business-hours", tag = "setup", security(("session" = [])), request_body = HoursInput,
    responses((status = 201, body = HoursView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn create_hours(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<HoursInput>,
) -> ApiResult<(StatusCode, Json<HoursView>)> {
    settings_editor(&current)?;
    let record = hours_record(&app, Uuid::now_v7().to_string(), &input).await?;
    app.services.store.put_hours(&record).await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok((StatusCode::CREATED, Json(HoursView::from(&record))))
}

async fn existing_hours(app: &AppState, id: &str) -> ApiResult<HoursRecord> {
    app.services
        .store
        .list_hours()
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::not_found("business hours"))
}

/// Replaces a schedule.
#[utoipa::path(put, path = "/api/v1/business-hours/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)), request_body = HoursInput,
    responses((status = 200, body = HoursView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn replace_hours(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<HoursInput>,
) -> ApiResult<Json<HoursView>> {
    settings_editor(&current)?;
    let existing = existing_hours(&app, &id).await?;
    let record = hours_record(&app, existing.id, &input).await?;
    app.services.store.put_hours(&record).await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok(Json(HoursView::from(&record)))
}

/// Removes a schedule.
#[utoipa::path(delete, path = "/api/v1/business-hours/{id}", tag = "setup", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_hours(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    app.services.store.delete_hours(&id).await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// The leaf queue asked about.
    pub queue_id: String,
    pub language: Option<String>,
    /// The instant to check (RFC 3339); now when absent.
    pub at: Option<DateTime<Utc>>,
    /// How many next open slots to list (0 to 100).
    #[param(minimum = 0, maximum = 100)]
    pub slots: Option<usize>,
    /// Slot length in minutes (5 to 1440), default 30.
    #[param(minimum = 5, maximum = 1440)]
    pub slot_minutes: Option<i64>,
}

/// Whether a queue is open now (or at `at`) under the schedule that applies, and its next
/// open slots (for scheduled callbacks, AHD-3).
#[utoipa::path(get, path = "/api/v1/business-hours/status", tag = "setup", security(("session" = [])), params(StatusQuery),
    responses((status = 200, body = OpenStatus), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn hours_status(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> ApiResult<Json<OpenStatus>> {
    Ok(Json(open_status(&app, &query).await?))
}

pub async fn open_status(app: &AppState, query: &StatusQuery) -> ApiResult<OpenStatus> {
    let queue_id = parse_queue_id(&query.queue_id)?;
    let node = app
        .services
        .store
        .list_queues()
        .await?
        .into_iter()
        .find(|n| n.id == queue_id)
        .ok_or_else(|| ApiError::not_found("queue"))?;
    let language = query.language.as_deref().map(Language::parse).transpose()?;
    let records = app.services.store.list_hours().await?;
    let set = HoursSet::new(
        records
            .iter()
            .map(|r| (r.scope.clone(), r.schedule.clone()))
            .collect(),
    );
    let at = query.at.unwrap_or_else(Utc::now);
    // The set holds the records' schedules in the records' order, so its entry is the record.
    let decided = set
        .entry_for(node.id, node.channel, language.as_ref())
        .map(|index| &records[index]);
    let schedule = decided.map(|record| &record.schedule);
    let schedule_id = decided.map(|record| record.id.clone());
    let wanted = query.slots.unwrap_or(0);
    let next_slots = match schedule {
        Some(s) if wanted > 0 => s.next_open_slots(
            at,
            wanted,
            Duration::minutes(query.slot_minutes.unwrap_or(30)),
        )?,
        _ => Vec::new(),
    };
    Ok(OpenStatus {
        open: schedule.is_none_or(|s| s.is_open(at)),
        schedule_id,
        at,
        next_slots,
    })
}

/// Center settings.
#[utoipa::path(get, path = "/api/v1/settings", tag = "setup", security(("session" = [])), responses((status = 200, body = SettingsView)))]
async fn get_settings(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<SettingsView>> {
    Ok(Json(SettingsView::from(
        &app.services.store.center_settings().await?,
    )))
}

/// Changes center settings.
#[utoipa::path(put, path = "/api/v1/settings", tag = "setup", security(("session" = [])), request_body = SettingsView,
    responses((status = 200, body = SettingsView), (status = 400, body = super::error::ErrorBody)))]
async fn update_settings(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<SettingsView>,
) -> ApiResult<Json<SettingsView>> {
    settings_editor(&current)?;
    let country = match input.country {
        Some(country) => {
            let country = country.trim().to_ascii_uppercase();
            if switchboard_core::dialing::HomePlan::of_country(&country).is_none() {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "country is one of US, CA, PR, GB, DK",
                ));
            }
            if country == "UK" {
                "GB".to_owned()
            } else {
                country
            }
        }
        None => app.services.store.center_settings().await?.country,
    };
    let callback_pool = match input.callback_pool {
        Some(pool) => {
            switchboard_core::emergency::parse_pool(&pool).map_err(super::emergency::refused)?;
            pool.trim().to_owned()
        }
        None => app.services.store.center_settings().await?.callback_pool,
    };
    let settings = CenterSettings {
        name: Name::parse("name", &input.name)?.to_string(),
        time_zone: parse_time_zone(&input.time_zone)?.name().to_owned(),
        languages: parse_languages(&input.languages)?,
        country,
        callback_pool,
    };
    app.services.store.update_center_settings(&settings).await?;
    app.services.config.changed(ConfigArea::Settings).await?;
    Ok(Json(SettingsView::from(&settings)))
}

/// Custom presence statuses (used as `custom:<name>`).
#[utoipa::path(get, path = "/api/v1/custom-statuses", tag = "setup", security(("session" = [])), responses((status = 200, body = [CustomStatusInput])))]
async fn list_custom_statuses(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<CustomStatusInput>>> {
    Ok(Json(
        app.services
            .store
            .list_custom_statuses()
            .await?
            .into_iter()
            .map(|name| CustomStatusInput { name })
            .collect(),
    ))
}

/// Defines a custom status.
#[utoipa::path(post, path = "/api/v1/custom-statuses", tag = "setup", security(("session" = [])), request_body = CustomStatusInput,
    responses((status = 201, body = CustomStatusInput), (status = 409, body = super::error::ErrorBody)))]
async fn create_custom_status(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<CustomStatusInput>,
) -> ApiResult<(StatusCode, Json<CustomStatusInput>)> {
    settings_editor(&current)?;
    let name = Name::parse("name", &input.name)?.to_string();
    app.services.store.create_custom_status(&name).await?;
    app.services
        .config
        .changed(ConfigArea::CustomStatuses)
        .await?;
    Ok((StatusCode::CREATED, Json(CustomStatusInput { name })))
}

/// Removes a custom status.
#[utoipa::path(delete, path = "/api/v1/custom-statuses/{name}", tag = "setup", security(("session" = [])), params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_custom_status(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    app.services.store.delete_custom_status(&name).await?;
    app.services
        .config
        .changed(ConfigArea::CustomStatuses)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Apps API keys (their secrets are never shown again after creation).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "setup", security(("session" = [])), responses((status = 200, body = [ApiKeyView])))]
async fn list_api_keys(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    settings_editor(&current)?;
    Ok(Json(
        app.services
            .store
            .list_api_keys()
            .await?
            .iter()
            .map(ApiKeyView::from)
            .collect(),
    ))
}

/// Makes a new key and secret for an integration; the answer is the only time the secret is shown.
async fn issue_api_key(app: &AppState, name: &str, scopes: &[String]) -> ApiResult<ApiKeyView> {
    let name = Name::parse("name", name)?.to_string();
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !secret::API_KEY_SCOPES.contains(&s.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!(
                "unknown scope `{}`; scopes are {}",
                unknown.chars().take(40).collect::<String>(),
                secret::API_KEY_SCOPES.join(", ")
            ),
        ));
    }
    let (mut key, secret_text) = secret::new_api_key(name, Utc::now());
    key.scopes = scopes;
    app.services.store.create_api_key(&key).await?;
    app.services.config.changed(ConfigArea::ApiKeys).await?;
    Ok(ApiKeyView {
        secret: Some(secret_text),
        ..ApiKeyView::from(&key)
    })
}

/// Creates an Apps API key.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "setup", security(("session" = [])), request_body = ApiKeyInput,
    responses((status = 201, body = ApiKeyView), (status = 400, body = super::error::ErrorBody)))]
async fn create_api_key(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<ApiKeyInput>,
) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    settings_editor(&current)?;
    Ok((
        StatusCode::CREATED,
        Json(issue_api_key(&app, &input.name, &input.scopes).await?),
    ))
}

/// Revokes an Apps API key at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "setup", security(("session" = [])), params(("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_api_key(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    settings_editor(&current)?;
    app.services.store.delete_api_key(&key_id).await?;
    app.services.config.changed(ConfigArea::ApiKeys).await?;
    Ok(StatusCode::NO_CONTENT)
}
