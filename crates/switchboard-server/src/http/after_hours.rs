//! After hours over HTTP (AHD-1, AHD-2, AHD-4, AHD-5, AHD-6, AHD-8): the deflection rules per
//! channel (center-wide; for calls, the IVR's) and per queue, the "allow transfers to
//! after-hours queues" setting, and the queues the signed-in agent may transfer to now.
//! Reading is open to every signed-in user; changing needs settings_edit. A rule's recorded
//! message is voice audio under `after-hours:<queue id or main>[:<language>]`
//! (`PUT /api/v1/voice/audio/…`); its text is what is spoken when there is none, and what a
//! chat is shown.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use switchboard_core::after_hours::{
    transfer_targets, AfterHours, AfterHoursAction, AfterHoursError, AfterHoursMessage, ChatOffer,
    DeflectionRule,
};
use switchboard_core::presence::Presence;
use switchboard_core::voice::PhoneNumber;
use switchboard_core::{Channel, Language, Permission, QueueId, QueueNode, Target};
use switchboard_services::config::ConfigArea;
use switchboard_store::{Store, StoreError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_after_hours))
        .routes(routes!(put_rule, delete_rule))
        .routes(routes!(put_settings))
        .routes(routes!(list_transfer_targets))
}

impl From<AfterHoursError> for ApiError {
    fn from(error: AfterHoursError) -> Self {
        match error {
            AfterHoursError::Text(text) => text.into(),
            other => ApiError::bad_request("invalid_after_hours", other.to_string()),
        }
    }
}

/// The schedules and rules as the decisions read them (calls, chats, transfers).
pub async fn load(store: &dyn Store) -> Result<AfterHours, StoreError> {
    let schedules = store
        .list_hours()
        .await?
        .into_iter()
        .map(|record| (record.scope, record.schedule))
        .collect();
    Ok(AfterHours::new(
        schedules,
        store.list_deflection_rules().await?,
    ))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageView {
    /// The language this text is for; absent or null: every language without its own.
    pub language: Option<String>,
    /// Spoken to callers (when no recording is uploaded) and shown in the chat widget; at
    /// most 1000 characters.
    pub text: String,
}

/// A deflection rule.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    /// The queue; null for the channel's center-wide rule (for calls, the IVR's).
    pub queue_id: Option<String>,
    /// `voice`, `web`, `mobile` or `sms`.
    pub channel: String,
    /// Whether contacts arriving outside hours are deflected; a queue's disabled rule opts
    /// it out of its channel's.
    pub enabled: bool,
    /// `queue` (to `target_queue_id`), `forward` (to `number`), `voicemail` (the message as
    /// the greeting, a tone, then at most `max_seconds` recorded) or `message` (the message,
    /// then the end).
    pub action: String,
    pub target_queue_id: Option<String>,
    pub number: Option<String>,
    /// For `voicemail`: the longest recording in seconds.
    pub max_seconds: Option<u32>,
    pub messages: Vec<MessageView>,
    /// What a closed web or mobile queue offers instead of a chat.
    pub offers: Vec<OfferView>,
}

/// An offer of a web or mobile rule: `{"kind": "scheduled_call", "queue_id": …}` (a voice
/// leaf queue the callback enters) or `{"kind": "email"}`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferView {
    /// `scheduled_call` or `email`.
    pub kind: String,
    /// For `scheduled_call`: the voice leaf queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
}

impl From<&ChatOffer> for OfferView {
    fn from(offer: &ChatOffer) -> Self {
        OfferView {
            kind: offer.kind().to_owned(),
            queue_id: match offer {
                ChatOffer::ScheduledCall { queue } => Some(queue.to_string()),
                ChatOffer::Email => None,
            },
        }
    }
}

fn parse_offer(view: &OfferView) -> ApiResult<ChatOffer> {
    match (view.kind.as_str(), view.queue_id.as_deref()) {
        ("email", None) => Ok(ChatOffer::Email),
        ("scheduled_call", Some(queue)) => Ok(ChatOffer::ScheduledCall {
            queue: QueueId::parse(queue)?,
        }),
        _ => Err(ApiError::bad_request(
            "invalid_after_hours",
            "an offer is {\"kind\": \"scheduled_call\", \"queue_id\": …} or {\"kind\": \"email\"}",
        )),
    }
}

impl From<&DeflectionRule> for RuleView {
    fn from(rule: &DeflectionRule) -> Self {
        let (target_queue_id, number) = match &rule.action {
            AfterHoursAction::Queue(q) => (Some(q.to_string()), None),
            AfterHoursAction::Forward(n) => (None, Some(n.as_str().to_owned())),
            AfterHoursAction::Message | AfterHoursAction::Voicemail { .. } => (None, None),
        };
        let max_seconds = match rule.action {
            AfterHoursAction::Voicemail { max_seconds } => Some(max_seconds),
            _ => None,
        };
        RuleView {
            max_seconds,
            queue_id: rule.queue.map(|q| q.to_string()),
            channel: rule.channel.as_str().to_owned(),
            enabled: rule.enabled,
            action: rule.action.kind().to_owned(),
            target_queue_id,
            number,
            messages: rule
                .messages()
                .iter()
                .map(|m| MessageView {
                    language: m.language.as_ref().map(|l| l.as_str().to_owned()),
                    text: m.text().to_owned(),
                })
                .collect(),
            offers: rule.offers().iter().map(OfferView::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AfterHoursView {
    /// Whether agents may transfer to queues outside their hours that deflect or have agents
    /// online (AHD-6).
    pub allow_transfers: bool,
    pub rules: Vec<RuleView>,
}

/// The deflection rules and the after-hours transfer setting.
#[utoipa::path(get, path = "/api/v1/after-hours", tag = "setup", security(("session" = [])),
    responses((status = 200, body = AfterHoursView)))]
async fn get_after_hours(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<AfterHoursView>> {
    let store = &app.services.store;
    Ok(Json(AfterHoursView {
        allow_transfers: store.after_hours_transfers().await?,
        rules: store
            .list_deflection_rules()
            .await?
            .iter()
            .map(RuleView::from)
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub enabled: bool,
    /// `queue`, `forward`, `voicemail` or `message`; calls may use all four, chats and SMS
    /// `message`.
    pub action: String,
    /// For `queue`: a leaf queue of the same channel (a 24-hour one, say).
    pub target_queue_id: Option<String>,
    /// For `forward`: the number, called through the outbound trunk.
    pub number: Option<String>,
    /// For `voicemail`: the longest recording in seconds, 5 to 600 (default 120).
    pub max_seconds: Option<u32>,
    /// At most one per language (and one for any language).
    #[serde(default)]
    pub messages: Vec<MessageView>,
    /// Web and mobile rules only: what the widget offers instead of a chat.
    #[serde(default)]
    pub offers: Vec<OfferView>,
}

fn parse_scope(scope: &str) -> ApiResult<Option<QueueId>> {
    match scope {
        "center" => Ok(None),
        id => Ok(Some(QueueId::parse(id)?)),
    }
}

fn parse_action(input: &RuleInput) -> ApiResult<AfterHoursAction> {
    let action = match input.action.as_str() {
        "message" => AfterHoursAction::Message,
        "queue" => AfterHoursAction::Queue(QueueId::parse(
            input
                .target_queue_id
                .as_deref()
                .ok_or(AfterHoursError::MissingTarget)?,
        )?),
        "forward" => AfterHoursAction::Forward(PhoneNumber::parse(
            "number",
            input
                .number
                .as_deref()
                .ok_or(AfterHoursError::MissingNumber)?,
        )?),
        "voicemail" => AfterHoursAction::Voicemail {
            max_seconds: input
                .max_seconds
                .unwrap_or(switchboard_core::after_hours::DEFAULT_VOICEMAIL_SECONDS),
        },
        other => {
            return Err(AfterHoursError::UnknownAction(other.chars().take(40).collect()).into())
        }
    };
    let stray = match action {
        AfterHoursAction::Queue(_) => input.number.is_some(),
        AfterHoursAction::Forward(_) => input.target_queue_id.is_some(),
        AfterHoursAction::Message | AfterHoursAction::Voicemail { .. } => {
            input.number.is_some() || input.target_queue_id.is_some()
        }
    };
    let stray_length =
        input.max_seconds.is_some() && !matches!(action, AfterHoursAction::Voicemail { .. });
    if stray || stray_length {
        return Err(ApiError::bad_request(
            "invalid_after_hours",
            "give target_queue_id only for the queue action, number only for forward and max_seconds only for voicemail",
        ));
    }
    Ok(action)
}

/// Creates or replaces the deflection rule of a queue (`scope` is its id) or of a channel
/// center-wide (`scope` is `center`).
#[utoipa::path(put, path = "/api/v1/after-hours/rules/{scope}/{channel}", tag = "setup", security(("session" = [])),
    params(("scope" = String, Path, description = "`center` or a queue id"), ("channel" = String, Path)),
    request_body = RuleInput,
    responses((status = 200, body = RuleView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn put_rule(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath((scope, channel)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<RuleInput>,
) -> ApiResult<Json<RuleView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = parse_scope(&scope)?;
    let channel = Channel::parse(&channel)?;
    let action = parse_action(&input)?;
    let messages = input
        .messages
        .iter()
        .map(|m| {
            let language = m.language.as_deref().map(Language::parse).transpose()?;
            Ok(AfterHoursMessage::new(language, &m.text)?)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let nodes = app.services.store.list_queues().await?;
    let offers = input
        .offers
        .iter()
        .map(parse_offer)
        .collect::<ApiResult<Vec<_>>>()?;
    let rule = DeflectionRule::new(queue, channel, input.enabled, action, messages, &nodes)?
        .with_offers(offers, &nodes)?;
    app.services.store.put_deflection_rule(&rule).await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok(Json(RuleView::from(&rule)))
}

/// Removes a deflection rule (a queue then follows its channel's rule again).
#[utoipa::path(delete, path = "/api/v1/after-hours/rules/{scope}/{channel}", tag = "setup", security(("session" = [])),
    params(("scope" = String, Path, description = "`center` or a queue id"), ("channel" = String, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn delete_rule(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath((scope, channel)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let queue = parse_scope(&scope)?;
    let channel = Channel::parse(&channel)?;
    app.services
        .store
        .delete_deflection_rule(queue, channel)
        .await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterHoursSettings {
    /// Whether agents may transfer to queues outside their hours that deflect or have
    /// agents online.
    pub allow_transfers: bool,
}

/// Sets whether agents may transfer to after-hours queues (AHD-6).
#[utoipa::path(put, path = "/api/v1/after-hours/settings", tag = "setup", security(("session" = [])),
    request_body = AfterHoursSettings,
    responses((status = 200, body = AfterHoursSettings), (status = 403, body = super::error::ErrorBody)))]
async fn put_settings(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<AfterHoursSettings>,
) -> ApiResult<Json<AfterHoursSettings>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    app.services
        .store
        .set_after_hours_transfers(input.allow_transfers)
        .await?;
    app.services.config.changed(ConfigArea::Hours).await?;
    Ok(Json(input))
}

/// The leaf queues of `channel` an agent may transfer to at `now` (AHD-6), in tree order,
/// each with whether it is in its hours.
pub async fn targets(
    store: &dyn Store,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Vec<(QueueNode, bool)>, StoreError> {
    let hours = load(store).await?;
    let nodes = store.list_queues().await?;
    let staffed: HashSet<QueueId> = store
        .list_users()
        .await?
        .iter()
        .filter(|u| !u.disabled && *u.presence.current() != Presence::Offline)
        .flat_map(|u| u.queues.iter().copied())
        .collect();
    let allow = store.after_hours_transfers().await?;
    Ok(
        transfer_targets(&hours, &nodes, channel, &staffed, allow, now)
            .into_iter()
            .map(|n| (n.clone(), hours.is_open(n.id, channel, None, now)))
            .collect(),
    )
}

/// Whether an agent may transfer a contact of `channel` to `queue` at `now` (AHD-6). A queue
/// of another channel or a menu is left for routing to refuse with its own error.
pub async fn may_transfer_to(
    store: &dyn Store,
    channel: Channel,
    queue: QueueId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let nodes = store.list_queues().await?;
    let is_leaf_here = nodes.iter().any(|n| {
        n.id == queue && n.channel == channel && n.kind == switchboard_core::QueueKind::Leaf
    });
    if !is_leaf_here {
        return Ok(true);
    }
    Ok(targets(store, channel, now)
        .await?
        .iter()
        .any(|(n, _)| n.id == queue))
}

/// What a transfer to a hidden queue is answered with.
pub const CLOSED_QUEUE: &str = "that queue is outside its hours and cannot take transfers now (GET /api/v1/transfer-targets lists those that can)";

/// Refuses a transfer to a queue the agent may not see now (AHD-6) with `queue_closed`.
pub async fn check_target(app: &AppState, channel: Channel, queue: QueueId) -> ApiResult<()> {
    let now = app.config.wall_clock.now();
    if may_transfer_to(app.services.store.as_ref(), channel, queue, now).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            "queue_closed",
            CLOSED_QUEUE,
        ))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TargetsQuery {
    /// The channel of the contact being transferred: `voice`, `web`, `mobile` or `sms`.
    pub channel: String,
}

#[derive(Serialize, ToSchema)]
pub struct TransferTargetView {
    pub queue_id: String,
    pub name: String,
    /// In its hours now; false for an after-hours queue that may still take transfers.
    pub open: bool,
}

/// The queues the signed-in user may transfer a contact of `channel` to now: all in their
/// hours, and, when the center allows it, those outside their hours that deflect or have
/// agents online. A transfer to any other queue is refused with `queue_closed`.
#[utoipa::path(get, path = "/api/v1/transfer-targets", tag = "setup", security(("session" = [])), params(TargetsQuery),
    responses((status = 200, body = [TransferTargetView]), (status = 400, body = super::error::ErrorBody)))]
async fn list_transfer_targets(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiQuery(query): ApiQuery<TargetsQuery>,
) -> ApiResult<Json<Vec<TransferTargetView>>> {
    let channel = Channel::parse(&query.channel)?;
    Ok(Json(
        targets(
            app.services.store.as_ref(),
            channel,
            app.config.wall_clock.now(),
        )
        .await?
        .into_iter()
        .map(|(node, open)| TransferTargetView {
            queue_id: node.id.to_string(),
            name: node.name.as_str().to_owned(),
            open,
        })
        .collect(),
    ))
}
