//! The SMS channel over HTTP: the connector's settings (admins; the Twilio auth token is
//! write-only and sealed at rest), agents' numbers for the incoming-call text (NTF-4), the
//! outbound messages' states, and the two webhooks Twilio calls: inbound messages and status
//! callbacks. A webhook's `X-Twilio-Signature` is checked over the configured public URL (the
//! one Twilio was given) and the POST parameters as Twilio specifies; a bad or missing one is
//! 403 `invalid_signature` and nothing is stored. An inbound message is answered 200 with empty
//! TwiML only once it is stored.

use super::chat::ApiBytes;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use super::require;
use crate::app::AppState;
use crate::sms::twilio;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_core::sms::DeliveryStatus;
use switchboard_core::voice::PhoneNumber;
use switchboard_core::{Permission, Target, UserId};
use switchboard_services::config::ConfigArea;
use switchboard_store::{OutboundSms, SmsSettings};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_sms_settings, put_sms_settings))
        .routes(routes!(get_agent_number, put_agent_number))
        .routes(routes!(list_messages))
        .routes(routes!(twilio_inbound))
        .routes(routes!(twilio_status))
}

/// The SMS connector's settings.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsSettingsView {
    /// `log` (messages written to `outbox/` under the data directory; the default) or `twilio`.
    pub connector: String,
    /// The Twilio account (`AC…`), for `twilio`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// The account's auth token. Write-only: never shown. Left out or `null` keeps the stored
    /// one; `""` removes it.
    #[serde(default, skip_serializing)]
    #[schema(write_only)]
    pub auth_token: Option<String>,
    /// Whether an auth token is stored (read-only; ignored when sent).
    #[serde(default)]
    #[schema(read_only)]
    pub auth_token_set: bool,
    /// Our number, messages are sent from it (`+15550001111`).
    #[serde(default)]
    pub from_number: Option<String>,
    /// The API's base URL; `https://api.twilio.com` when left out.
    #[serde(default)]
    pub api_base: Option<String>,
    /// Our public base URL as Twilio reaches it (`https://center.example.com`): the inbound
    /// webhook is `{public_url}/sms/v1/twilio/inbound`, and the signatures cover it.
    #[serde(default)]
    pub public_url: Option<String>,
    /// NTF-4: an incoming call that rings an agent also texts the number on their profile.
    #[serde(default)]
    pub notify_agents: bool,
}

fn settings_view(s: SmsSettings) -> SmsSettingsView {
    SmsSettingsView {
        connector: s.connector,
        account_sid: s.account_sid,
        auth_token: None,
        auth_token_set: s.auth_token.is_some(),
        from_number: s.from_number,
        api_base: s.api_base,
        public_url: s.public_url,
        notify_agents: s.notify_agents,
    }
}

/// Blank is none.
fn given(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn http_url(field: &'static str, url: Option<String>) -> ApiResult<Option<String>> {
    let Some(url) = url else { return Ok(None) };
    let ok = reqwest::Url::parse(&url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none()
    });
    if !ok || url.len() > 500 {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{field} is an http(s) URL without a query"),
        ));
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

/// The SMS connector's settings (admins).
#[utoipa::path(get, path = "/api/v1/sms/settings", tag = "setup", security(("session" = [])),
    responses((status = 200, body = SmsSettingsView), (status = 403, body = super::error::ErrorBody)))]
async fn get_sms_settings(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<SmsSettingsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    Ok(Json(settings_view(
        app.services.store.sms_settings().await?,
    )))
}

/// Changes the SMS connector's settings. `twilio` needs `account_sid`, `from_number`, an auth
/// token (sent now or stored) and `public_url`; refusals are 400 `invalid_field`.
#[utoipa::path(put, path = "/api/v1/sms/settings", tag = "setup", security(("session" = [])), request_body = SmsSettingsView,
    responses((status = 200, body = SmsSettingsView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn put_sms_settings(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<SmsSettingsView>,
) -> ApiResult<Json<SmsSettingsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let stored = app.services.store.sms_settings().await?;
    let auth_token = match input.auth_token.as_deref() {
        None => stored.auth_token,
        Some("") => None,
        Some(token) if token.len() > 200 || token.trim() != token => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "auth_token is at most 200 characters without surrounding spaces",
            ))
        }
        Some(token) => Some(token.to_owned()),
    };
    let account_sid = given(&input.account_sid);
    if account_sid
        .as_deref()
        .is_some_and(|a| a.len() > 64 || !a.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "account_sid is letters and digits (AC…)",
        ));
    }
    let from_number = given(&input.from_number)
        .map(|n| PhoneNumber::parse("from_number", &n).map(|n| n.as_str().to_owned()))
        .transpose()?;
    let settings = SmsSettings {
        connector: input.connector.clone(),
        account_sid,
        auth_token,
        from_number,
        api_base: http_url("api_base", given(&input.api_base))?,
        public_url: http_url("public_url", given(&input.public_url))?,
        notify_agents: input.notify_agents,
    };
    match settings.connector.as_str() {
        "log" => {}
        "twilio" => {
            let missing = |field: &str| {
                ApiError::bad_request(
                    "invalid_field",
                    format!("the twilio connector needs {field}"),
                )
            };
            settings
                .account_sid
                .as_ref()
                .ok_or_else(|| missing("account_sid"))?;
            settings
                .auth_token
                .as_ref()
                .ok_or_else(|| missing("auth_token"))?;
            settings
                .from_number
                .as_ref()
                .ok_or_else(|| missing("from_number"))?;
            settings
                .public_url
                .as_ref()
                .ok_or_else(|| missing("public_url"))?;
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "connector is log or twilio",
            ))
        }
    }
    app.services.store.put_sms_settings(&settings).await?;
    app.services.config.changed(ConfigArea::Integration).await?;
    Ok(Json(settings_view(settings)))
}

/// The number on an agent's profile that incoming calls are texted to (NTF-4).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentNumberView {
    /// `null` when none is set (setting `null` removes it).
    pub phone: Option<String>,
}

/// An agent's number for incoming-call texts (admins).
#[utoipa::path(get, path = "/api/v1/users/{id}/sms-number", tag = "users", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AgentNumberView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_agent_number(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AgentNumberView>> {
    let user = UserId::parse(&id)?;
    require(&current.actor, Permission::UsersEdit, Target::Center)?;
    app.services.store.get_user(user).await?;
    Ok(Json(AgentNumberView {
        phone: app.services.store.agent_sms_number(user).await?,
    }))
}

/// Sets an agent's number for incoming-call texts (admins).
#[utoipa::path(put, path = "/api/v1/users/{id}/sms-number", tag = "users", security(("session" = [])), params(("id" = String, Path)), request_body = AgentNumberView,
    responses((status = 200, body = AgentNumberView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn put_agent_number(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AgentNumberView>,
) -> ApiResult<Json<AgentNumberView>> {
    let user = UserId::parse(&id)?;
    require(&current.actor, Permission::UsersEdit, Target::Center)?;
    let phone = given(&input.phone)
        .map(|n| PhoneNumber::parse("phone", &n).map(|n| n.as_str().to_owned()))
        .transpose()?;
    app.services.store.get_user(user).await?;
    app.services
        .store
        .set_agent_sms_number(user, phone.as_deref())
        .await?;
    Ok(Json(AgentNumberView { phone }))
}

/// An outbound SMS and where it stands.
#[derive(Serialize, ToSchema)]
pub struct OutboundSmsView {
    pub id: String,
    /// The conversation (a chat whose channel is SMS), for replies.
    pub chat_id: Option<String>,
    pub to: String,
    pub body: String,
    /// `reply`, `menu`, `after_hours` or `agent_notice`.
    pub purpose: String,
    /// `queued`, `sent`, `delivered`, `undelivered` or `failed`.
    pub status: String,
    /// The provider's id for it (Twilio's `SM…`).
    pub provider_sid: Option<String>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn outbound_view(m: OutboundSms) -> OutboundSmsView {
    OutboundSmsView {
        id: m.id.to_string(),
        chat_id: m.contact.map(|c| c.to_string()),
        to: m.to,
        body: m.body,
        purpose: m.purpose.as_str().to_owned(),
        status: m.status.as_str().to_owned(),
        provider_sid: m.provider_sid,
        error: m.error,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// At most this many (1 to 1000; 100 when left out).
    pub limit: Option<u32>,
}

/// Outbound SMS with their delivery state, oldest first (admins).
#[utoipa::path(get, path = "/api/v1/sms/messages", tag = "setup", security(("session" = [])), params(MessagesQuery),
    responses((status = 200, body = [OutboundSmsView]), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_messages(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> ApiResult<Json<Vec<OutboundSmsView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_field", "limit is 1 to 1000"));
    }
    let messages = app.services.store.list_outbound_sms(limit).await?;
    Ok(Json(messages.into_iter().map(outbound_view).collect()))
}

/// The webhook's parameters once its signature is checked.
struct Signed(Vec<(String, String)>);

impl Signed {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &'static str) -> ApiResult<&str> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            ApiError::bad_request("invalid_field", format!("the webhook has no {name}"))
        })
    }
}

fn bad_signature() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_signature",
        "the request's X-Twilio-Signature does not match",
    )
}

/// Checks a webhook's signature against the connector's auth token, over the public URL of
/// the path it was sent to (with its query, as Twilio signs it).
async fn check_signature(
    app: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Signed> {
    let settings = app.sms.settings().await?;
    let (Some(token), Some(public)) = (settings.auth_token, settings.public_url) else {
        return Err(bad_signature());
    };
    let Some(given) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(bad_signature());
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{public}{path_and_query}");
    if !twilio::signature_matches(&token, &url, &params, given) {
        return Err(bad_signature());
    }
    Ok(Signed(params))
}

/// An inbound SMS from Twilio (form-encoded `From`, `To`, `Body`, `MessageSid`, …, signed with
/// `X-Twilio-Signature`). Answered 200 with empty TwiML once stored; a bad or missing
/// signature is 403 and nothing is stored.
#[utoipa::path(post, path = "/sms/v1/twilio/inbound", tag = "chat",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "stored; empty TwiML", content_type = "text/xml", body = String),
        (status = 400, body = super::error::ErrorBody),
        (status = 403, description = "invalid_signature", body = super::error::ErrorBody)))]
async fn twilio_inbound(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let signed = check_signature(&app, &uri, &headers, &body).await?;
    let from = signed.require("From")?;
    PhoneNumber::parse("From", from)?;
    let message_sid = signed.require("MessageSid")?;
    switchboard_core::chat::ClientMessageId::parse(message_sid)?;
    let body_text = signed.get("Body").unwrap_or_default();
    if body_text.chars().count() > switchboard_core::sms::MAX_BODY_CHARS {
        return Err(ApiError::bad_request("invalid_field", "Body is too long"));
    }
    let inbound = crate::sms::Inbound {
        message_sid: message_sid.to_owned(),
        from: from.to_owned(),
        to: signed.get("To").unwrap_or_default().to_owned(),
        body: body_text.to_owned(),
    };
    app.sms.receive(inbound).await.map_err(|error| {
        let code = error.code();
        match code {
            "internal" => ApiError::internal(&error),
            _ => ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string()),
        }
    })?;
    Ok((
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
    )
        .into_response())
}

/// A sent message's status from Twilio (`MessageSid`, `MessageStatus`, `ErrorCode`), signed
/// like the inbound webhook. A status never moves a message back (callbacks come in any
/// order); an unknown sid is answered 200 all the same, so Twilio does not retry it.
#[utoipa::path(post, path = "/sms/v1/twilio/status", tag = "chat",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "recorded"),
        (status = 400, body = super::error::ErrorBody),
        (status = 403, description = "invalid_signature", body = super::error::ErrorBody)))]
async fn twilio_status(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<StatusCode> {
    let signed = check_signature(&app, &uri, &headers, &body).await?;
    let sid = signed.require("MessageSid")?;
    let status = signed.require("MessageStatus")?;
    let Some(status) = DeliveryStatus::from_twilio(status) else {
        return Err(ApiError::bad_request(
            "invalid_field",
            "MessageStatus is not one of Twilio's",
        ));
    };
    let error = signed
        .get("ErrorCode")
        .filter(|c| !c.is_empty())
        .map(|code| format!("Twilio error {}", code.chars().take(12).collect::<String>()));
    let known = app
        .services
        .store
        .advance_sms_status(sid, status, error.as_deref(), chrono::Utc::now())
        .await?;
    if !known {
        tracing::info!(sid = %sid.chars().take(40).collect::<String>(), "a status callback for an SMS we do not know");
    }
    Ok(StatusCode::NO_CONTENT)
}
