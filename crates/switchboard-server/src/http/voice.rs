//! Voice over HTTP: trunks, dialled numbers, agents' SIP phones, uploaded prompts and hold
//! music, registered phones, call history, and control of live calls.

use super::chat::ApiBytes;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, AppsClient, CurrentUser};
use super::require;
use super::wire::CallView;
use crate::app::AppState;
use crate::voice::{prompts, CallControl, TransferTo, VoiceError, REALM};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use switchboard_call::RoutingRefusal;
use switchboard_core::voice::{
    CallRecord, DialRule, Did, HeaderFlag, Network, PhoneNumber, Trunk, TrunkDirection,
};
use switchboard_core::{
    CallId, Language, Name, Permission, QueueId, Target, TeamId, TrunkId, UserId,
};
use switchboard_services::config::ConfigArea;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_trunks, create_trunk))
        .routes(routes!(update_trunk, delete_trunk))
        .routes(routes!(list_numbers))
        .routes(routes!(put_number, delete_number))
        .routes(routes!(set_sip_phone, delete_sip_phone))
        .routes(routes!(list_registrations))
        .routes(routes!(list_calls, dial))
        .routes(routes!(live_calls))
        .routes(routes!(get_call))
        .routes(routes!(control_call))
        .routes(routes!(transfer_call))
        .routes(routes!(apps_call_properties, apps_set_call_properties))
}

/// Uploads need a larger body limit than JSON.
pub fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_audio, delete_audio))
}

impl From<VoiceError> for ApiError {
    fn from(error: VoiceError) -> Self {
        match error {
            VoiceError::NotFound => ApiError::not_found("call"),
            VoiceError::State(message) => ApiError::conflict(message),
            VoiceError::Routing(refusal) => refusal.into(),
            VoiceError::Off => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "voice_off",
                "voice is not running on this server",
            ),
            VoiceError::Confidential => ApiError::new(
                StatusCode::FORBIDDEN,
                "emergency_call",
                VoiceError::Confidential.to_string(),
            ),
        }
    }
}

impl From<RoutingRefusal> for ApiError {
    fn from(refusal: RoutingRefusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            RoutingRefusal::UnknownQueue => ApiError::not_found("queue"),
            RoutingRefusal::UnknownContact => ApiError::not_found("contact"),
            RoutingRefusal::NotALeaf => ApiError::bad_request("not_a_leaf_queue", message),
            RoutingRefusal::WrongChannel => ApiError::bad_request("wrong_channel", message),
            RoutingRefusal::AlreadyEnded
            | RoutingRefusal::NotAssigned
            | RoutingRefusal::AgentUnavailable => ApiError::conflict(message),
            RoutingRefusal::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "routing_unavailable",
                message,
            ),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct DialRuleView {
    /// Numbers starting with this…
    pub prefix: String,
    /// …lose this many leading characters…
    #[serde(default)]
    pub strip: u8,
    /// …and gain this in front.
    #[serde(default)]
    pub prepend: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkInput {
    pub name: String,
    /// `inbound` (the carrier calls us) or `outbound` (we call through the carrier).
    pub direction: String,
    /// Inbound: the carrier's addresses or networks (`192.0.2.10`, `192.0.2.0/24`).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Digest credentials: inbound, what the carrier must answer our challenge with; outbound,
    /// what we answer the carrier's challenge with.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Outbound: where to send calls.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `udp` (default) or `tcp`.
    pub transport: Option<String>,
    /// Outbound: the calling number to present.
    pub caller_id: Option<String>,
    #[serde(default)]
    pub dial_rules: Vec<DialRuleView>,
    /// Inbound: concurrent calls at most (1 to 100000; absent takes the server's default,
    /// 1000), and new calls per second at most (1 to 10000; default 100). Beyond them a new
    /// INVITE gets 503 with Retry-After.
    pub max_calls: Option<u32>,
    pub max_calls_per_second: Option<u32>,
    /// Inbound: SIP headers read onto the caller's profile flags (RDP-2), such as
    /// `{"header": "X-Verified-Customer", "property": "reserved_verified_customer"}`. A header
    /// saying `true`, `yes` or `1` sets the flag, `false`, `no` or `0` clears it.
    #[serde(default)]
    pub header_flags: Vec<HeaderFlagView>,
    /// Outbound: the trunk may carry emergency calls (for emergency numbers without a direct
    /// route of their own). Default false.
    #[serde(default)]
    pub emergency: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderFlagView {
    pub header: String,
    /// `reserved_verified_customer`, `reserved_bad_actor` or `reserved_repeat_customer`.
    pub property: String,
}

#[derive(Serialize, ToSchema)]
pub struct TrunkView {
    pub id: String,
    pub name: String,
    pub direction: String,
    pub addresses: Vec<String>,
    pub username: Option<String>,
    /// Whether a password is set (it is never shown).
    pub has_password: bool,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub transport: String,
    pub caller_id: Option<String>,
    pub dial_rules: Vec<DialRuleView>,
    pub max_calls: Option<u32>,
    pub max_calls_per_second: Option<u32>,
    pub header_flags: Vec<HeaderFlagView>,
    /// Whether the trunk may carry emergency calls.
    pub emergency: bool,
}

fn trunk_view(t: &Trunk) -> TrunkView {
    TrunkView {
        id: t.id.to_string(),
        name: t.name.as_str().to_owned(),
        direction: t.direction.as_str().to_owned(),
        addresses: t.addresses.iter().map(ToString::to_string).collect(),
        username: t.username.clone(),
        has_password: t.secret.is_some(),
        host: t.host.clone(),
        port: t.port,
        transport: if t.tcp { "tcp" } else { "udp" }.to_owned(),
        caller_id: t.caller_id.as_ref().map(|c| c.as_str().to_owned()),
        dial_rules: t
            .dial_rules
            .iter()
            .map(|r| DialRuleView {
                prefix: r.prefix.clone(),
                strip: r.strip,
                prepend: r.prepend.clone(),
            })
            .collect(),
        max_calls: t.max_calls,
        max_calls_per_second: t.max_calls_per_second,
        header_flags: t
            .header_flags
            .iter()
            .map(|f| HeaderFlagView {
                header: f.header.clone(),
                property: f.property.clone(),
            })
            .collect(),
        emergency: t.emergency,
    }
}

/// Checks a trunk's input; `previous` keeps the stored secret when no password is given.
fn trunk_from(id: TrunkId, input: TrunkInput, previous: Option<&Trunk>) -> ApiResult<Trunk> {
    let direction = TrunkDirection::parse(&input.direction)?;
    let tcp = match input.transport.as_deref() {
        None | Some("udp") => false,
        Some("tcp") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "transport is udp or tcp",
            ))
        }
    };
    if let Some(username) = &input.username {
        if username.is_empty() || username.len() > 64 || username.contains(['"', ':', '\\']) {
            return Err(ApiError::bad_request(
                "invalid_field",
                "username is 1 to 64 characters without quotes, colons or backslashes",
            ));
        }
    }
    let secret = match (&input.password, direction, &input.username) {
        (Some(password), _, _) if password.is_empty() || password.len() > 128 => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "password is 1 to 128 characters",
            ));
        }
        (Some(password), TrunkDirection::Inbound, Some(username)) => {
            Some(switchboard_sip::digest::ha1(username, REALM, password))
        }
        (Some(password), TrunkDirection::Outbound, _) => Some(password.clone()),
        (Some(_), TrunkDirection::Inbound, None) => None,
        (None, _, Some(_)) => previous.and_then(|p| p.secret.clone()),
        (None, _, None) => None,
    };
    let host = input.host.filter(|h| !h.trim().is_empty());
    if host
        .as_deref()
        .is_some_and(|h| h.len() > 253 || h.contains(char::is_whitespace))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "host is a name or address",
        ));
    }
    if input.max_calls.is_some_and(|n| !(1..=100_000).contains(&n))
        || input
            .max_calls_per_second
            .is_some_and(|n| !(1..=10_000).contains(&n))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "max_calls is 1 to 100000 and max_calls_per_second 1 to 10000",
        ));
    }
    let trunk = Trunk {
        id,
        name: Name::parse("name", &input.name)?,
        direction,
        addresses: input
            .addresses
            .iter()
            .map(|a| Network::parse(a))
            .collect::<Result<_, _>>()?,
        username: input.username,
        secret,
        host,
        port: input.port.filter(|p| *p != 0),
        tcp,
        caller_id: input
            .caller_id
            .as_deref()
            .map(|c| PhoneNumber::parse("caller_id", c))
            .transpose()?,
        dial_rules: input
            .dial_rules
            .iter()
            .map(|r| DialRule::new(&r.prefix, r.strip, &r.prepend))
            .collect::<Result<_, _>>()?,
        max_calls: input.max_calls,
        max_calls_per_second: input.max_calls_per_second,
        header_flags: input
            .header_flags
            .iter()
            .map(|f| HeaderFlag::new(&f.header, &f.property))
            .collect::<Result<_, _>>()?,
        emergency: input.emergency,
    };
    if trunk.header_flags.len() > 16 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "a trunk has at most 16 header flags",
        ));
    }
    // Said plainly (`emergency: only an outbound trunk…`), as the emergency settings are.
    trunk.check().map_err(super::emergency::refused)?;
    Ok(trunk)
}

/// SIP trunks (admins).
#[utoipa::path(get, path = "/api/v1/voice/trunks", tag = "voice", security(("session" = [])),
    responses((status = 200, body = [TrunkView]), (status = 403, body = super::error::ErrorBody)))]
async fn list_trunks(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<TrunkView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    Ok(Json(
        app.services
            .store
            .list_trunks()
            .await?
            .iter()
            .map(trunk_view)
            .collect(),
    ))
}

/// Adds a SIP trunk.
#[utoipa::path(post, path = "/api/v1/voice/trunks", tag = "voice", security(("session" = [])), request_body = TrunkInput,
    responses((status = 201, body = TrunkView), (status = 400, body = super::error::ErrorBody)))]
async fn create_trunk(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<TrunkInput>,
) -> ApiResult<(StatusCode, Json<TrunkView>)> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let trunk = trunk_from(TrunkId::from_uuid(Uuid::now_v7()), input, None)?;
    app.services.store.put_trunk(&trunk).await?;
    app.services.config.changed(ConfigArea::Trunks).await?;
    Ok((StatusCode::CREATED, Json(trunk_view(&trunk))))
}

/// Changes a SIP trunk (a missing password keeps the stored one).
#[utoipa::path(put, path = "/api/v1/voice/trunks/{id}", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = TrunkInput,
    responses((status = 200, body = TrunkView), (status = 404, body = super::error::ErrorBody)))]
async fn update_trunk(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TrunkInput>,
) -> ApiResult<Json<TrunkView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let id = TrunkId::parse(&id)?;
    let previous = app.services.store.get_trunk(id).await?;
    let trunk = trunk_from(id, input, Some(&previous))?;
    if trunk.direction != TrunkDirection::Outbound
        && app
            .services
            .store
            .emergency_registry()
            .await?
            .numbers
            .iter()
            .any(|n| n.trunk == Some(id))
    {
        return Err(ApiError::conflict(
            "an emergency number routes through this trunk, so it stays outbound: change the emergency numbers first",
        ));
    }
    app.services.store.put_trunk(&trunk).await?;
    app.services.config.changed(ConfigArea::Trunks).await?;
    Ok(Json(trunk_view(&trunk)))
}

#[utoipa::path(delete, path = "/api/v1/voice/trunks/{id}", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_trunk(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    app.services
        .store
        .delete_trunk(TrunkId::parse(&id)?)
        .await?;
    app.services.config.changed(ConfigArea::Trunks).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct NumberView {
    pub number: String,
    /// The voice menu or queue calls start at; `null` for the top-level voice menu.
    pub entry_queue_id: Option<String>,
    pub language: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberInput {
    pub entry_queue_id: Option<String>,
    pub language: Option<String>,
}

fn number_view(d: &Did) -> NumberView {
    NumberView {
        number: d.number.as_str().to_owned(),
        entry_queue_id: d.entry.map(|q| q.to_string()),
        language: d.language.as_ref().map(|l| l.as_str().to_owned()),
    }
}

/// Dialled numbers (DIDs) and where their calls start (admins).
#[utoipa::path(get, path = "/api/v1/voice/numbers", tag = "voice", security(("session" = [])),
    responses((status = 200, body = [NumberView]), (status = 403, body = super::error::ErrorBody)))]
async fn list_numbers(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<NumberView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    Ok(Json(
        app.services
            .store
            .list_dids()
            .await?
            .iter()
            .map(number_view)
            .collect(),
    ))
}

/// Sets where calls to a number start.
#[utoipa::path(put, path = "/api/v1/voice/numbers/{number}", tag = "voice", security(("session" = [])), params(("number" = String, Path)), request_body = NumberInput,
    responses((status = 200, body = NumberView), (status = 400, body = super::error::ErrorBody)))]
async fn put_number(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(number): ApiPath<String>,
    ApiJson(input): ApiJson<NumberInput>,
) -> ApiResult<Json<NumberView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let did = Did {
        number: PhoneNumber::parse("number", &number)?,
        entry: input
            .entry_queue_id
            .as_deref()
            .map(QueueId::parse)
            .transpose()?,
        language: input.language.as_deref().map(Language::parse).transpose()?,
    };
    app.services.store.put_did(&did).await?;
    app.services.config.changed(ConfigArea::Numbers).await?;
    Ok(Json(number_view(&did)))
}

#[utoipa::path(delete, path = "/api/v1/voice/numbers/{number}", tag = "voice", security(("session" = [])), params(("number" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_number(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    app.services.store.delete_did(&number).await?;
    app.services.config.changed(ConfigArea::Numbers).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SipPhoneInput {
    /// The phone registers as the user's username with this password (8 to 128 characters).
    pub password: String,
}

async fn user_for_phone(app: &AppState, current: &CurrentUser, id: &str) -> ApiResult<UserId> {
    let user = app.services.store.get_user(UserId::parse(id)?).await?;
    if user.id != current.actor.user_id {
        require(
            &current.actor,
            Permission::UsersEdit,
            Target::User {
                id: user.id,
                teams: &user.teams,
            },
        )?;
    }
    Ok(user.id)
}

/// Sets the password a user's SIP phone registers with (the user, or whoever edits them).
#[utoipa::path(put, path = "/api/v1/users/{id}/sip-phone", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = SipPhoneInput,
    responses((status = 204), (status = 400, body = super::error::ErrorBody)))]
async fn set_sip_phone(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<SipPhoneInput>,
) -> ApiResult<StatusCode> {
    let user = user_for_phone(&app, &current, &id).await?;
    if !(8..=128).contains(&input.password.chars().count()) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "password is 8 to 128 characters",
        ));
    }
    let username = app.services.store.get_user(user).await?.username;
    let ha1 = switchboard_sip::digest::ha1(username.as_str(), REALM, &input.password);
    app.services.store.set_sip_phone(user, Some(&ha1)).await?;
    app.services.config.changed(ConfigArea::SipPhones).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/sip-phone", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_sip_phone(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let user = user_for_phone(&app, &current, &id).await?;
    app.services.store.set_sip_phone(user, None).await?;
    app.services.config.changed(ConfigArea::SipPhones).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationView {
    pub user_id: String,
    pub contact: String,
    /// Where the registration came from.
    pub source: String,
}

/// Registered SIP phones (supervisors and admins).
#[utoipa::path(get, path = "/api/v1/voice/registrations", tag = "voice", security(("session" = [])),
    responses((status = 200, body = [RegistrationView]), (status = 403, body = super::error::ErrorBody)))]
async fn list_registrations(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<RegistrationView>>> {
    if !current.actor.holds(Permission::MonitorCallsListen) {
        require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    }
    let mut list: Vec<RegistrationView> = app
        .voice
        .registrations()
        .await?
        .into_iter()
        .map(|(user, contact, source)| RegistrationView {
            user_id: user.to_string(),
            contact,
            source: source.to_string(),
        })
        .collect();
    list.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    Ok(Json(list))
}

/// Which uploaded audio a key names: `menu:main`, `menu:<queue id>`, either with `:<language>`,
/// `hold:default`, `hold:<queue id>`, or `whisper:<queue id>` (what agents hear before a caller
/// of that queue is connected).
fn audio_key(key: &str) -> ApiResult<String> {
    let bad = || {
        ApiError::bad_request("invalid_field", "the key is menu:main, menu:<queue id>, after-hours:main or after-hours:<queue id>, each optionally with :<language>, hold:default, hold:<queue id> or whisper:<queue id>")
    };
    let parts: Vec<&str> = key.split(':').collect();
    let queue = |text: &str| -> ApiResult<Option<QueueId>> {
        match text {
            "main" | "default" => Ok(None),
            id => Ok(Some(QueueId::parse(id).map_err(|_| bad())?)),
        }
    };
    match parts.as_slice() {
        ["menu", node] if *node != "default" => Ok(prompts::menu_key(queue(node)?, None)),
        ["menu", node, language] if *node != "default" => {
            let language = Language::parse(language).map_err(|_| bad())?;
            Ok(prompts::menu_key(queue(node)?, Some(&language)))
        }
        ["hold", queue_id] if *queue_id != "main" => Ok(prompts::hold_key(queue(queue_id)?)),
        ["after-hours", node] if *node != "default" => {
            Ok(prompts::after_hours_key(queue(node)?, None))
        }
        ["after-hours", node, language] if *node != "default" => {
            let language = Language::parse(language).map_err(|_| bad())?;
            Ok(prompts::after_hours_key(queue(node)?, Some(&language)))
        }
        ["whisper", queue_id] => Ok(prompts::whisper_key(
            QueueId::parse(queue_id).map_err(|_| bad())?,
        )),
        _ => Err(bad()),
    }
}

/// Uploads a menu prompt or hold music as a WAV file (16-bit PCM, 8 to 48 kHz, any channels).
#[utoipa::path(put, path = "/api/v1/voice/audio/{key}", tag = "voice", security(("session" = [])), params(("key" = String, Path)),
    request_body(content = Vec<u8>, content_type = "audio/wav"),
    responses((status = 204), (status = 400, body = super::error::ErrorBody)))]
async fn put_audio(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let key = audio_key(&key)?;
    let samples =
        crate::voice::audio::decode_wav(&body).map_err(|e| ApiError::bad_request("not_wav", e))?;
    if samples.is_empty() {
        return Err(ApiError::bad_request(
            "not_wav",
            "the WAV file holds no audio",
        ));
    }
    let blob = format!("audio-{}", Uuid::now_v7().simple());
    app.blobs
        .put(&blob, &body)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    app.services
        .store
        .put_voice_audio(&key, &blob, Utc::now())
        .await?;
    app.services.config.changed(ConfigArea::VoiceAudio).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/voice/audio/{key}", tag = "voice", security(("session" = [])), params(("key" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_audio(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    app.services
        .store
        .delete_voice_audio(&audio_key(&key)?)
        .await?;
    app.services.config.changed(ConfigArea::VoiceAudio).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The same rules as chats and users: a call with an agent is seen as that agent is, a call
/// without one as a contact waiting in its queue (see `Actor::may_see_call`).
pub(super) fn visible(
    current: &CurrentUser,
    record: &CallRecord,
    teams: &HashMap<UserId, Vec<TeamId>>,
) -> bool {
    if record.emergency.is_some() {
        // Confidential (EMG-6): its own agent alone sees an emergency call.
        return record.agent == Some(current.user.id);
    }
    let agent = record
        .agent
        .map(|id| (id, teams.get(&id).map_or(&[][..], Vec::as_slice)));
    current.actor.may_see_call(agent, record.queue)
}

/// Call history, newest first: the calls the user may see (their own, their reach's agents',
/// those that waited in their queues).
#[utoipa::path(get, path = "/api/v1/calls", tag = "voice", security(("session" = [])), params(CallsQuery),
    responses((status = 200, body = [CallView]), (status = 400, body = super::error::ErrorBody)))]
async fn list_calls(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<CallsQuery>,
) -> ApiResult<Json<Vec<CallView>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_field", "limit is 1 to 1000"));
    }
    let calls = app.services.store.list_calls(limit).await?;
    let teams = app.services.teams_by_user().await?;
    Ok(Json(
        calls
            .iter()
            .filter(|c| visible(&current, c, &teams))
            .map(CallView::from)
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialInput {
    /// The number as the agent would dial it; spaces, dashes, dots and parentheses are
    /// ignored, and the outbound trunk's dial rules apply.
    pub number: String,
    /// The adapter that dials: the `session_id` its `phone_ready` frame gave. Only that adapter
    /// rings (and answers at once); without it every phone of the agent rings, and the number is
    /// called once they answer (click-to-dial).
    pub session_id: Option<String>,
}

/// Places a call for the signed-in agent through the outbound trunk, with the trunk's caller
/// id. Their capacity profile must include voice outbound and the dialling policy must allow
/// the number. The agent's device rings first; the number is called when they answer.
#[utoipa::path(post, path = "/api/v1/calls", tag = "voice", security(("session" = [])), request_body = DialInput,
    responses((status = 201, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
async fn dial(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<DialInput>,
) -> ApiResult<(StatusCode, Json<CallView>)> {
    let typed = switchboard_core::dialing::strip_separators(input.number.trim());
    let number = PhoneNumber::parse("number", &typed)?;
    let from = input
        .session_id
        .map(|s| {
            s.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_field", "session_id is the id phone_ready gave")
            })
        })
        .transpose()?;
    let now = chrono::Utc::now();
    if let Some(plan) = app
        .services
        .dialing
        .emergency(&current.actor, &current.user, &typed, now)
        .await?
    {
        let record = crate::emergency::dial(&app, &current.user, plan, from, now).await?;
        return Ok((StatusCode::CREATED, Json(CallView::from(&record))));
    }
    app.services
        .dialing
        .check_dial_out(&current.actor, &current.user, number.as_str())
        .await?;
    let record = app
        .voice
        .dial(current.user.id, number.as_str().to_owned(), from, None)
        .await?;
    Ok((StatusCode::CREATED, Json(CallView::from(&record))))
}

/// Calls in progress, oldest first.
#[utoipa::path(get, path = "/api/v1/calls/live", tag = "voice", security(("session" = [])),
    responses((status = 200, body = [CallView])))]
async fn live_calls(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<CallView>>> {
    let calls = app.voice.live().await?;
    let teams = app.services.teams_by_user().await?;
    Ok(Json(
        calls
            .iter()
            .filter(|c| visible(&current, c, &teams))
            .map(CallView::from)
            .collect(),
    ))
}

/// One call's record.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "voice", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = CallView), (status = 404, body = super::error::ErrorBody)))]
async fn get_call(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CallView>> {
    let record = call_record(&app, CallId::parse(&id)?).await?;
    if !visible(&current, &record, &app.services.teams_by_user().await?) {
        return Err(ApiError::not_found("call"));
    }
    Ok(Json(CallView::from(&record)))
}

/// A call's record: the live one while the call lasts (the stored copy is written in batches
/// and may lag behind), else the stored one.
pub(super) async fn call_record(app: &AppState, call: CallId) -> ApiResult<CallRecord> {
    if let Ok(live) = app.voice.live().await {
        if let Some(record) = live.into_iter().find(|c| c.id == call) {
            return Ok(record);
        }
    }
    Ok(app.services.store.get_call(call).await?)
}

/// May this user act on this live call: its agent, or someone who may barge into that agent's
/// calls (a manager only for their teams).
pub(super) async fn may_control(
    app: &AppState,
    current: &CurrentUser,
    call: CallId,
) -> ApiResult<()> {
    let live = app.voice.live().await?;
    let record = live
        .iter()
        .find(|c| c.id == call)
        .ok_or_else(|| ApiError::not_found("call"))?;
    let teams = app.services.teams_by_user().await?;
    let agent = record
        .agent
        .map(|id| (id, teams.get(&id).map_or(&[][..], Vec::as_slice)));
    if current.actor.may_control_call(agent) && visible(current, record, &teams) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the call's agent or a supervisor may do that",
        ))
    }
}

/// Holds, resumes or hangs up a call, or completes or cancels an attended transfer. `action`
/// is `hold`, `resume`, `hangup`, `complete-transfer` or `cancel-transfer`.
#[utoipa::path(post, path = "/api/v1/calls/{id}/{action}", tag = "voice", security(("session" = [])), params(("id" = String, Path), ("action" = String, Path)),
    responses((status = 200, body = CallView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn control_call(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> ApiResult<Json<CallView>> {
    let control = match action.as_str() {
        "hold" => CallControl::Hold,
        "resume" => CallControl::Resume,
        "hangup" => CallControl::HangUp,
        "complete-transfer" => CallControl::CompleteTransfer,
        "cancel-transfer" => CallControl::CancelTransfer,
        _ => return Err(ApiError::not_found("action")),
    };
    let call = CallId::parse(&id)?;
    may_control(&app, &current, call).await?;
    let record = app.voice.control(call, control).await?;
    Ok(Json(CallView::from(&record)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// Exactly one of `queue_id`, `agent_id` and `number`.
    pub queue_id: Option<String>,
    pub agent_id: Option<String>,
    pub number: Option<String>,
    /// Talk to the target first (agent or number), then complete or cancel.
    #[serde(default)]
    pub attended: bool,
}

/// Transfers a call to a queue, an agent or a number, blind or attended.
#[utoipa::path(post, path = "/api/v1/calls/{id}/transfer", tag = "voice", security(("session" = [])), params(("id" = String, Path)), request_body = TransferInput,
    responses((status = 200, body = CallView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn transfer_call(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TransferInput>,
) -> ApiResult<Json<CallView>> {
    let to = match (&input.queue_id, &input.agent_id, &input.number) {
        (Some(q), None, None) => TransferTo::Queue(QueueId::parse(q)?),
        (None, Some(a), None) => TransferTo::Agent(UserId::parse(a)?),
        (None, None, Some(n)) => {
            TransferTo::Number(PhoneNumber::parse("number", n)?.as_str().to_owned())
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "give exactly one of queue_id, agent_id and number",
            ))
        }
    };
    let call = CallId::parse(&id)?;
    may_control(&app, &current, call).await?;
    if let TransferTo::Queue(queue) = &to {
        // Outside its hours a queue takes transfers only as the center allows (AHD-6).
        super::after_hours::check_target(&app, switchboard_core::Channel::Voice, *queue).await?;
    }
    if let TransferTo::Number(number) = &to {
        // Class of service: toll fraud starts with a transfer to a number like this one.
        app.services
            .dialing
            .check(&current.actor, number, "transfer")
            .await?;
    }
    let record = app
        .voice
        .control(
            call,
            CallControl::Transfer {
                to,
                attended: input.attended,
            },
        )
        .await?;
    Ok(Json(CallView::from(&record)))
}

/// A call's profile flags (RDP-2), for an integration.
#[utoipa::path(get, path = "/apps/api/v1/calls/{id}/properties", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, body = crate::chat::protocol::Flags), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn apps_call_properties(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<crate::chat::protocol::Flags>> {
    let call = CallId::parse(&id).map_err(|_| ApiError::not_found("call"))?;
    let record = call_record(&app, call).await?;
    Ok(Json(crate::chat::flags(&record.properties)))
}

/// Sets a live call's profile flags: booleans only; an unknown `reserved_*` key is refused and
/// nothing changes. The call's record (and so the agent's card and the live views) shows them
/// at once. An ended call is 409.
#[utoipa::path(patch, path = "/apps/api/v1/calls/{id}/properties", tag = "apps", security(("apps" = [])), params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = crate::chat::protocol::Flags), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn apps_set_call_properties(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<crate::chat::protocol::Flags>> {
    let call = CallId::parse(&id).map_err(|_| ApiError::not_found("call"))?;
    // Only the keys sent change, on the live call itself (its stored record may lag behind).
    let mut update = switchboard_core::chat::ReservedProperties::default();
    update
        .apply(crate::chat::property_values(&body))
        .map_err(|e| ApiError::bad_request("invalid_field", e.to_string()))?;
    let record = match app
        .voice
        .control(call, CallControl::UpdateProperties(update))
        .await
    {
        Ok(record) => record,
        Err(VoiceError::NotFound) => {
            // Not live: an ended call (409) or none at all (404).
            app.services.store.get_call(call).await?;
            return Err(ApiError::conflict("the call has ended"));
        }
        Err(other) => return Err(other.into()),
    };
    Ok(Json(crate::chat::flags(&record.properties)))
}
