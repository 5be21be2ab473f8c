//! Chat over HTTP: the two WebSocket endpoints, attachments (SMA-2), reserved properties for
//! integrations (RDP-1), tickets (PLT-9), integration settings, jobs, and notification tones
//! (NTF-3). Consumer endpoints (`/chat/v1`) are called from any site that embeds the widget:
//! they answer CORS preflights and authenticate with the visitor's id and token headers.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, AppsClient, CurrentUser, SourceAddress};
use super::require;
use crate::app::AppState;
use crate::chat::{agent, consumer, flags, protocol::Flags};
use crate::secret;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::audio::check_mp3;
use switchboard_core::chat::{AttachmentKind, Sender};
use switchboard_core::{AttachmentId, ContactId, Permission, Target, TicketId, VisitorId, Watched};
use switchboard_services::config::ConfigArea;
use switchboard_store::{Attachment, IntegrationSettings, NotificationSettings, Ticket, Tone};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(consumer_socket))
        .routes(routes!(consumer_menu))
        .routes(routes!(agent_socket))
        .routes(routes!(consumer_download))
        .routes(routes!(agent_download))
        .routes(routes!(apps_download))
        .routes(routes!(apps_get_properties, apps_set_properties))
        .routes(routes!(apps_get_ticket))
        .routes(routes!(list_tickets))
        .routes(routes!(get_ticket))
        .routes(routes!(get_integrations, put_integrations))
        .routes(routes!(list_jobs))
        .routes(routes!(list_tones))
        .routes(routes!(get_tone, delete_tone))
        .routes(routes!(get_notifications, put_notifications))
}

/// Upload routes, which take bodies up to the attachment limit.
pub fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(consumer_upload))
        .routes(routes!(agent_upload))
        .routes(routes!(upload_tone))
}

/// CORS for the consumer endpoints: any site may embed the widget. Credentials are headers,
/// never cookies, so allowing every origin exposes nothing.
pub async fn cors(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("content-type, x-visitor-id, x-visitor-token"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    response
}

/// A raw body; too large is a 413 with the usual JSON error.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(ApiBytes)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the file is larger than allowed",
                    )
                } else {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
            })
    }
}

/// The web menu tree the widget offers (PLT-8): menus and leaf queues, nested.
#[utoipa::path(get, path = "/chat/v1/menu", tag = "chat", responses((status = 200, body = [super::wire::MenuNode])))]
async fn consumer_menu(State(app): State<AppState>) -> ApiResult<Json<Vec<super::wire::MenuNode>>> {
    let views = super::setup::queue_views(&app, Some(switchboard_core::Channel::Web)).await?;
    Ok(Json(super::apps::nest(&views, None)))
}

/// The consumer chat protocol (WebSocket; see docs/chat-protocol.md). Open to every embedding
/// site (no Origin check). A `hello` without a visitor id makes a new visitor; one source
/// address may make `visitors_per_minute` of them (default 30), beyond which the `hello` is
/// answered with the error frame `too_many_visitors`.
#[utoipa::path(get, path = "/chat/v1/ws", tag = "chat", responses((status = 101, description = "WebSocket; the first frame must be `hello`"), (status = 400, body = super::error::ErrorBody)))]
async fn consumer_socket(
    State(app): State<AppState>,
    SourceAddress(source): SourceAddress,
    super::extract::ApiWebSocket(upgrade): super::extract::ApiWebSocket,
) -> Response {
    let admission = app.clone();
    let admit_visitor: consumer::AdmitVisitor = Box::new(move || {
        admission
            .visitor_creation
            .lock()
            .map(|mut limit| limit.allow(source, Utc::now()))
            .unwrap_or(Ok(()))
    });
    upgrade
        .max_message_size(crate::chat::protocol::TRANSPORT_LIMIT_BYTES)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| consumer::serve(app.chat.clone(), socket, admit_visitor))
}

/// The agent chat protocol (WebSocket, signed in; see docs/chat-protocol.md).
#[utoipa::path(get, path = "/api/v1/agent/ws", tag = "chat", security(("session" = [])), responses((status = 101, description = "WebSocket"), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
    (status = 403, description = "forbidden (the role handles no contacts) or origin_not_allowed (the page's Origin is neither the server's own nor configured)", body = super::error::ErrorBody)))]
async fn agent_socket(
    State(app): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    super::extract::ApiWebSocket(upgrade): super::extract::ApiWebSocket,
) -> ApiResult<Response> {
    super::extract::check_origin(&headers, &app.config.security.allowed_origins)?;
    if !current.actor.holds(Permission::HandleContacts) {
        return Err(ApiError::forbidden("your role does not handle contacts"));
    }
    Ok(upgrade
        .max_message_size(crate::chat::protocol::TRANSPORT_LIMIT_BYTES)
        .on_upgrade(move |socket| agent::serve(app.chat.clone(), app, current.actor, socket)))
}

#[derive(Serialize, ToSchema)]
pub struct AttachmentInfo {
    pub id: String,
    pub chat_id: String,
    pub name: String,
    pub mime: String,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

impl From<&Attachment> for AttachmentInfo {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.to_string(),
            chat_id: a.contact.to_string(),
            name: a.name.clone(),
            mime: a.kind.mime().to_owned(),
            size: a.size,
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    pub chat_id: String,
    /// The file's name as the user chose it; defaults to `file`.
    pub name: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NameQuery {
    pub name: Option<String>,
}

/// Keeps a file name displayable and harmless: letters, digits, space, `.-_()`, at most 100.
fn clean_name(name: Option<&str>, kind: AttachmentKind) -> String {
    let cleaned: String = name
        .unwrap_or("file")
        .chars()
        .filter(|c| c.is_alphanumeric() || " .-_()".contains(*c))
        .take(100)
        .collect();
    let base = cleaned.trim().trim_start_matches('.');
    let base = if base.is_empty() { "file" } else { base };
    if base
        .to_ascii_lowercase()
        .ends_with(&format!(".{}", kind.extension()))
    {
        base.to_owned()
    } else {
        format!("{base}.{}", kind.extension())
    }
}

/// Checks and stores an uploaded file for a chat.
async fn store_attachment(
    app: &AppState,
    chat: ContactId,
    sender: Sender,
    headers: &HeaderMap,
    name: Option<&str>,
    body: &[u8],
) -> ApiResult<Attachment> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = AttachmentKind::check(declared, body, app.config.attachment_max_bytes).map_err(
        |e| match e {
            switchboard_core::chat::AttachmentError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            switchboard_core::chat::AttachmentError::UnsupportedType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                e.to_string(),
            ),
            other => ApiError::bad_request("content_mismatch", other.to_string()),
        },
    )?;
    if app.services.contacts.open_contact(chat).await.is_none() {
        return Err(ApiError::conflict("the chat has ended"));
    }
    let attachment = Attachment {
        id: AttachmentId::from_uuid(Uuid::now_v7()),
        contact: chat,
        kind,
        size: body.len() as i64,
        name: clean_name(name, kind),
        uploaded_by: sender,
        created_at: Utc::now(),
    };
    app.blobs
        .put(&attachment.id.to_string(), body)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if let Err(error) = app.services.store.insert_attachment(&attachment).await {
        let _ = app.blobs.delete(&attachment.id.to_string()).await;
        return Err(error.into());
    }
    Ok(attachment)
}

/// Anonymous visitors' quotas, checked before a consumer's file is stored: uploads per minute
/// per visitor (429 `too_many_uploads`), and bytes per chat and per visitor over all their
/// chats (413 `chat_quota_exceeded`, `visitor_quota_exceeded`).
async fn check_upload_quotas(
    app: &AppState,
    visitor: VisitorId,
    chat: ContactId,
    size: usize,
) -> ApiResult<()> {
    let security = &app.config.security;
    let used = app.services.store.consumer_upload_bytes(chat).await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let megabytes = |bytes: u64| match bytes {
        0..1_048_576 => format!("{bytes} bytes"),
        _ => format!("{} MB", bytes / 1_048_576),
    };
    if used.chat.saturating_add(size) > i64::try_from(security.chat_max_bytes).unwrap_or(i64::MAX) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "chat_quota_exceeded",
            format!(
                "a chat holds at most {} of files",
                megabytes(security.chat_max_bytes)
            ),
        ));
    }
    if used.visitor.saturating_add(size)
        > i64::try_from(security.visitor_max_bytes).unwrap_or(i64::MAX)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "visitor_quota_exceeded",
            format!(
                "a visitor uploads at most {} of files",
                megabytes(security.visitor_max_bytes)
            ),
        ));
    }
    let allowed = app
        .attachment_uploads
        .lock()
        .map(|mut limit| limit.allow(visitor, Utc::now()))
        .unwrap_or(Ok(()));
    if let Err(wait) = allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_uploads",
            format!("at most {} files a minute", security.attachments_per_minute),
        )
        .retry_after(wait.to_std().unwrap_or_default()));
    }
    Ok(())
}

/// The visitor from the `X-Visitor-Id` and `X-Visitor-Token` headers.
pub async fn visitor(app: &AppState, headers: &HeaderMap) -> ApiResult<VisitorId> {
    let refuse = || {
        ApiError::unauthorized("send the visitor id and token in X-Visitor-Id and X-Visitor-Token")
    };
    let id = headers
        .get("x-visitor-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refuse)?;
    let token = headers
        .get("x-visitor-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refuse)?;
    let visitor = app
        .services
        .store
        .get_visitor(VisitorId::parse(id).map_err(|_| refuse())?)
        .await
        .map_err(|_| refuse())?;
    if !secret::constant_time_eq(&secret::sha256_hex(token), &visitor.token_hash) {
        return Err(refuse());
    }
    Ok(visitor.id)
}

async fn visitor_chat(
    app: &AppState,
    headers: &HeaderMap,
    chat: &str,
) -> ApiResult<(VisitorId, ContactId)> {
    let visitor = visitor(app, headers).await?;
    let chat = ContactId::parse(chat).map_err(|_| ApiError::not_found("chat"))?;
    let session = app
        .services
        .store
        .get_chat(chat)
        .await
        .map_err(|_| ApiError::not_found("chat"))?;
    if session.visitor != visitor {
        return Err(ApiError::not_found("chat"));
    }
    Ok((visitor, chat))
}

/// A consumer attaches a .png, .jpg or .mp4 to their chat; the body is the file, with its
/// Content-Type. The file is checked by content and kept only if it is what it claims.
#[utoipa::path(post, path = "/chat/v1/attachments", tag = "chat", params(UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = AttachmentInfo), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, description = "the chat has ended", body = super::error::ErrorBody),
        (status = 413, description = "payload_too_large (one file), chat_quota_exceeded (50 MB a chat by default), visitor_quota_exceeded (100 MB a visitor)", body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody),
        (status = 429, description = "too_many_uploads: 10 files a minute a visitor by default; see Retry-After", body = super::error::ErrorBody)))]
async fn consumer_upload(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<UploadQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<AttachmentInfo>)> {
    let (visitor, chat) = visitor_chat(&app, &headers, &query.chat_id).await?;
    check_upload_quotas(&app, visitor, chat, body.len()).await?;
    let attachment = store_attachment(
        &app,
        chat,
        Sender::Consumer,
        &headers,
        query.name.as_deref(),
        &body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AttachmentInfo::from(&attachment))))
}

async fn serve_file(app: &AppState, attachment: &Attachment) -> ApiResult<Response> {
    let bytes = app
        .blobs
        .get(&attachment.id.to_string())
        .await
        .map_err(|e| ApiError::from_blob(e, "attachment"))?;
    let disposition = format!("inline; filename=\"{}\"", attachment.name.replace('"', ""));
    Ok((
        [
            (header::CONTENT_TYPE, attachment.kind.mime().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-content-type-options"),
                "nosniff".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

async fn attachment(app: &AppState, id: &str) -> ApiResult<Attachment> {
    let id = AttachmentId::parse(id).map_err(|_| ApiError::not_found("attachment"))?;
    app.services
        .store
        .get_attachment(id)
        .await
        .map_err(|_| ApiError::not_found("attachment"))
}

/// A consumer downloads a file of their chat.
#[utoipa::path(get, path = "/chat/v1/attachments/{id}", tag = "chat", params(("id" = String, Path)),
    responses((status = 200, description = "The file"), (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn consumer_download(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let attachment = attachment(&app, &id).await?;
    visitor_chat(&app, &headers, &attachment.contact.to_string()).await?;
    serve_file(&app, &attachment).await
}

/// The agent holding a chat attaches a file to it.
#[utoipa::path(post, path = "/api/v1/chats/{id}/attachments", tag = "chat", security(("session" = [])), params(("id" = String, Path), NameQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = AttachmentInfo), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn agent_upload(
    State(app): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<NameQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<AttachmentInfo>)> {
    let chat = ContactId::parse(&id).map_err(|_| ApiError::not_found("chat"))?;
    let contact = app
        .services
        .contacts
        .open_contact(chat)
        .await
        .ok_or_else(|| ApiError::not_found("chat"))?;
    if contact.agent != Some(current.user.id) {
        return Err(ApiError::not_found("chat"));
    }
    let attachment = store_attachment(
        &app,
        chat,
        Sender::Agent(current.user.id),
        &headers,
        query.name.as_deref(),
        &body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AttachmentInfo::from(&attachment))))
}

/// A file of a chat the user holds or may watch.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "chat", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = super::error::ErrorBody)))]
async fn agent_download(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let attachment = attachment(&app, &id).await?;
    let contact = app.services.store.get_contact(attachment.contact).await?;
    let allowed = match contact.agent {
        Some(agent) if agent == current.user.id => true,
        Some(agent) => {
            let teams = app
                .services
                .store
                .get_user(agent)
                .await
                .map(|u| u.teams)
                .unwrap_or_default();
            current.actor.can(
                Permission::MonitorChatsView,
                Target::User {
                    id: agent,
                    teams: &teams,
                },
            )
        }
        None => current.actor.may_watch(Watched::Waiting {
            queue: contact.queue,
            channel: contact.channel,
        }),
    } || current.actor.can(Permission::SettingsEdit, Target::Center);
    if !allowed {
        return Err(ApiError::not_found("attachment"));
    }
    serve_file(&app, &attachment).await
}

/// A chat file for the CRM (SMA-3).
#[utoipa::path(get, path = "/apps/api/v1/attachments/{id}", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = super::error::ErrorBody)))]
async fn apps_download(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let attachment = attachment(&app, &id).await?;
    serve_file(&app, &attachment).await
}

fn parse_chat(id: &str) -> ApiResult<ContactId> {
    ContactId::parse(id).map_err(|_| ApiError::not_found("chat"))
}

/// A chat's reserved data properties (RDP-1).
#[utoipa::path(get, path = "/apps/api/v1/chats/{id}/properties", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = super::error::ErrorBody)))]
async fn apps_get_properties(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Flags>> {
    Ok(Json(flags(
        &app.services
            .store
            .get_chat(parse_chat(&id)?)
            .await?
            .properties,
    )))
}

/// Sets reserved data properties during a session: booleans only; an unknown `reserved_*` key
/// is refused and nothing is changed. The agent sees the flags at once.
#[utoipa::path(patch, path = "/apps/api/v1/chats/{id}/properties", tag = "apps", security(("apps" = [])), params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn apps_set_properties(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Flags>> {
    let chat = parse_chat(&id)?;
    app.services.store.get_chat(chat).await?;
    if app.services.contacts.open_contact(chat).await.is_none() {
        return Err(ApiError::conflict("the session has ended"));
    }
    app.chat
        .set_properties(chat, body)
        .await
        .map(Json)
        .map_err(|e| match e {
            crate::chat::ChatError::Invalid(message) => {
                ApiError::bad_request("invalid_field", message)
            }
            crate::chat::ChatError::Store(store) => store.into(),
            other => ApiError::conflict(other.to_string()),
        })
}

#[derive(Serialize, ToSchema)]
pub struct TicketView {
    pub id: String,
    pub name: String,
    pub status: String,
    /// A chat's ticket: the chat (a call's ticket names its call in `call_id`).
    pub chat_id: Option<String>,
    /// The contact, chat or call, the ticket is of.
    pub contact_id: Option<String>,
    pub visitor_id: Option<String>,
    pub identity_id: Option<String>,
    pub transcript: Option<String>,
    pub external_id: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The call it is the ticket of; its text (`transcript`) is the call's summary.
    pub call_id: Option<String>,
    /// The caller's number, for a call's ticket.
    pub phone: Option<String>,
    /// A call's recordings and where each stands on its way to the CRM.
    pub recordings: Vec<super::uploads::UploadView>,
}

async fn ticket_view(app: &AppState, ticket: &Ticket) -> ApiResult<TicketView> {
    let attachments = match ticket.contact {
        Some(chat) => app
            .services
            .store
            .attachments_of(chat)
            .await?
            .iter()
            .map(AttachmentInfo::from)
            .collect(),
        None => Vec::new(),
    };
    let recordings = match ticket.call {
        Some(call) => app
            .services
            .store
            .uploads_of_call(call)
            .await?
            .iter()
            .map(super::uploads::UploadView::from)
            .collect(),
        None => Vec::new(),
    };
    Ok(TicketView {
        id: ticket.id.to_string(),
        name: ticket.name.clone(),
        status: ticket.status.clone(),
        chat_id: ticket
            .contact
            .filter(|_| ticket.call.is_none())
            .map(|c| c.to_string()),
        contact_id: ticket.contact.map(|c| c.to_string()),
        visitor_id: ticket.visitor.map(|v| v.to_string()),
        identity_id: ticket.identity.map(|i| i.to_string()),
        transcript: ticket.transcript.clone(),
        external_id: ticket.external_id.clone(),
        attachments,
        created_at: ticket.created_at,
        updated_at: ticket.updated_at,
        call_id: ticket.call.map(|c| c.to_string()),
        phone: ticket.phone.clone(),
        recordings,
    })
}

async fn load_ticket(app: &AppState, id: &str) -> ApiResult<Ticket> {
    let id = TicketId::parse(id).map_err(|_| ApiError::not_found("ticket"))?;
    Ok(app.services.store.get_ticket(id).await?)
}

/// A ticket of the built-in CRM, with its transcript once the chat has ended.
#[utoipa::path(get, path = "/apps/api/v1/tickets/{id}", tag = "apps", security(("apps" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TicketView), (status = 404, body = super::error::ErrorBody)))]
async fn apps_get_ticket(
    State(app): State<AppState>,
    _client: AppsClient,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TicketView>> {
    let ticket = load_ticket(&app, &id).await?;
    Ok(Json(ticket_view(&app, &ticket).await?))
}

/// The built-in CRM's tickets, newest first (admins).
#[utoipa::path(get, path = "/api/v1/tickets", tag = "chat", security(("session" = [])), responses((status = 200, body = [TicketView]), (status = 403, body = super::error::ErrorBody)))]
async fn list_tickets(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<TicketView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let mut views = Vec::new();
    for ticket in app.services.store.list_tickets(200).await? {
        views.push(ticket_view(&app, &ticket).await?);
    }
    Ok(Json(views))
}

/// One ticket (admins).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "chat", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = TicketView), (status = 404, body = super::error::ErrorBody)))]
async fn get_ticket(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TicketView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let ticket = load_ticket(&app, &id).await?;
    Ok(Json(ticket_view(&app, &ticket).await?))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationsView {
    /// Signs identity tokens (JWT HS256) from the site that embeds the widget; at least 32 characters.
    pub identity_secret: String,
    /// `builtin`, `webhook` or `zendesk`.
    pub crm_connector: String,
    pub crm_webhook_url: Option<String>,
    /// Signs webhook deliveries (HMAC-SHA256, header X-Switchboard-Signature).
    pub crm_webhook_secret: Option<String>,
    /// Where the CRM shows a ticket, with `{external_id}` where the CRM's id for it goes
    /// (`https://crm.example.com/tickets/{external_id}`): supervisors watching a chat get a
    /// link to its record.
    #[serde(default)]
    pub crm_record_url: Option<String>,
    /// The Zendesk account's address, `https://{subdomain}.zendesk.com` (for `zendesk`).
    #[serde(default)]
    pub zendesk_url: Option<String>,
    /// The email of the Zendesk agent whose API token the connector uses.
    #[serde(default)]
    pub zendesk_email: Option<String>,
    /// That agent's Zendesk API token. Write-only: never shown. Left out or `null` keeps the
    /// stored one; `""` removes it.
    #[serde(default, skip_serializing)]
    #[schema(write_only)]
    pub zendesk_token: Option<String>,
    /// Whether a Zendesk API token is stored (read-only; ignored when sent).
    #[serde(default)]
    #[schema(read_only)]
    pub zendesk_token_set: bool,
}

/// Integration settings (admins): the identity secret and the CRM connector.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "chat", security(("session" = [])), responses((status = 200, body = IntegrationsView), (status = 403, body = super::error::ErrorBody)))]
async fn get_integrations(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<IntegrationsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let s = app
        .services
        .store
        .integration_settings(&secret::random_token(32))
        .await?;
    Ok(Json(integrations_view(s)))
}

/// Changes integration settings.
#[utoipa::path(put, path = "/api/v1/integrations", tag = "chat", security(("session" = [])), request_body = IntegrationsView,
    responses((status = 200, body = IntegrationsView), (status = 400, body = super::error::ErrorBody)))]
async fn put_integrations(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<IntegrationsView>,
) -> ApiResult<Json<IntegrationsView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    if input.identity_secret.len() < 32 || input.identity_secret.len() > 256 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "identity_secret has 32 to 256 characters",
        ));
    }
    let stored = app
        .services
        .store
        .integration_settings(&secret::random_token(32))
        .await?;
    let zendesk = zendesk_settings(&input, stored.zendesk_token)?;
    match input.crm_connector.as_str() {
        "builtin" => {}
        "zendesk" => {
            let missing = |field: &str| {
                ApiError::bad_request(
                    "invalid_field",
                    format!("the zendesk connector needs {field}"),
                )
            };
            zendesk.url.as_ref().ok_or_else(|| missing("zendesk_url"))?;
            zendesk
                .email
                .as_ref()
                .ok_or_else(|| missing("zendesk_email"))?;
            zendesk
                .token
                .as_ref()
                .ok_or_else(|| missing("zendesk_token"))?;
        }
        "webhook" => {
            let url = input.crm_webhook_url.as_deref().unwrap_or_default();
            let parsed = reqwest::Url::parse(url).map_err(|_| {
                ApiError::bad_request("invalid_field", "crm_webhook_url must be an http(s) URL")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "crm_webhook_url must be an http(s) URL",
                ));
            }
            if input
                .crm_webhook_secret
                .as_deref()
                .is_none_or(|s| s.len() < 16)
            {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "crm_webhook_secret has at least 16 characters",
                ));
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "crm_connector is builtin, webhook or zendesk",
            ))
        }
    }
    let record_url = input
        .crm_record_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(url) = record_url {
        let ok = reqwest::Url::parse(&url.replace("{external_id}", "id"))
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            && url.contains("{external_id}");
        if !ok {
            return Err(ApiError::bad_request(
                "invalid_field",
                "crm_record_url is an http(s) URL with {external_id} where the ticket's id goes",
            ));
        }
    }
    let settings = IntegrationSettings {
        crm_record_url: record_url.map(str::to_owned),
        identity_secret: input.identity_secret.clone(),
        crm_connector: input.crm_connector.clone(),
        crm_webhook_url: input.crm_webhook_url.clone(),
        crm_webhook_secret: input.crm_webhook_secret.clone(),
        zendesk_url: zendesk.url,
        zendesk_email: zendesk.email,
        zendesk_token: zendesk.token,
    };
    app.services
        .store
        .update_integration_settings(&settings)
        .await?;
    app.services.config.changed(ConfigArea::Integration).await?;
    Ok(Json(integrations_view(settings)))
}

/// The settings as admins see them: every secret the API shows but the Zendesk token, of
/// which only whether one is stored.
fn integrations_view(s: IntegrationSettings) -> IntegrationsView {
    IntegrationsView {
        identity_secret: s.identity_secret,
        crm_connector: s.crm_connector,
        crm_webhook_url: s.crm_webhook_url,
        crm_webhook_secret: s.crm_webhook_secret,
        crm_record_url: s.crm_record_url,
        zendesk_url: s.zendesk_url,
        zendesk_email: s.zendesk_email,
        zendesk_token_set: s.zendesk_token.is_some(),
        zendesk_token: None,
    }
}

/// The Zendesk account's fields as they will be stored.
struct ZendeskFields {
    url: Option<String>,
    email: Option<String>,
    token: Option<String>,
}

/// The Zendesk fields to store: each checked when given (blank is none), the URL without a
/// trailing slash, and the stored token kept unless a new one (or `""`, to remove it) is sent.
fn zendesk_settings(
    input: &IntegrationsView,
    stored_token: Option<String>,
) -> Result<ZendeskFields, ApiError> {
    let invalid =
        |e: crate::zendesk::AccountError| ApiError::bad_request("invalid_field", e.to_string());
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let url = given(&input.zendesk_url)
        .map(|url| crate::zendesk::normalize_url(&url))
        .transpose()
        .map_err(invalid)?;
    let email = given(&input.zendesk_email)
        .map(|email| {
            switchboard_core::Email::parse(&email)
                .map(|e| e.as_str().to_owned())
                .map_err(|_| crate::zendesk::AccountError::Email)
        })
        .transpose()
        .map_err(invalid)?;
    let token = match input.zendesk_token.as_deref() {
        None => stored_token,
        Some(token) if token.trim().is_empty() => None,
        Some(token) => Some(crate::zendesk::parse_token(token).map_err(invalid)?),
    };
    Ok(ZendeskFields { url, email, token })
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub state: String,
    pub run_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Background jobs, newest first (admins): CRM deliveries and their retries.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "chat", security(("session" = [])), responses((status = 200, body = [JobView])))]
async fn list_jobs(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<JobView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    Ok(Json(
        app.services
            .store
            .list_jobs(200)
            .await?
            .into_iter()
            .map(|j| JobView {
                id: j.id.to_string(),
                kind: j.kind,
                payload: j.payload,
                state: j.state.as_str().into(),
                run_at: j.run_at,
                attempts: j.attempts,
                last_error: j.last_error,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ToneView {
    /// What to choose in notification settings.
    pub id: String,
    pub name: String,
    pub builtin: bool,
    pub url: String,
}

/// Built-in and uploaded notification tones.
#[utoipa::path(get, path = "/api/v1/tones", tag = "chat", security(("session" = [])), responses((status = 200, body = [ToneView])))]
async fn list_tones(
    State(app): State<AppState>,
    _current: CurrentUser,
) -> ApiResult<Json<Vec<ToneView>>> {
    let mut tones: Vec<ToneView> = crate::tones::built_in_names()
        .map(|n| ToneView {
            id: n.into(),
            name: n.into(),
            builtin: true,
            url: format!("/api/v1/tones/{n}"),
        })
        .collect();
    for tone in app.services.store.list_tones().await? {
        tones.push(ToneView {
            url: format!("/api/v1/tones/{}", tone.id),
            id: tone.id,
            name: tone.name,
            builtin: false,
        });
    }
    Ok(Json(tones))
}

/// A tone's audio (WAV for built-in tones, MP3 for uploaded ones).
#[utoipa::path(get, path = "/api/v1/tones/{id}", tag = "chat", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "Audio"), (status = 404, body = super::error::ErrorBody)))]
async fn get_tone(
    State(app): State<AppState>,
    _current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    if let Some(bytes) = crate::tones::built_in(&id) {
        return Ok((
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "max-age=86400"),
            ],
            bytes,
        )
            .into_response());
    }
    if !app
        .services
        .store
        .list_tones()
        .await?
        .iter()
        .any(|t| t.id == id)
    {
        return Err(ApiError::not_found("tone"));
    }
    let bytes = app
        .blobs
        .get(&id)
        .await
        .map_err(|e| ApiError::from_blob(e, "tone"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/mpeg"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        bytes,
    )
        .into_response())
}

/// Uploads an .mp3 tone (admins); the body is the file. It must really be MP3 audio.
#[utoipa::path(post, path = "/api/v1/tones", tag = "chat", security(("session" = [])), params(NameQuery), request_body(content = Vec<u8>, content_type = "audio/mpeg"),
    responses((status = 201, body = ToneView), (status = 400, body = super::error::ErrorBody), (status = 413, body = super::error::ErrorBody)))]
async fn upload_tone(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<NameQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<ToneView>)> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    check_mp3(&body, crate::tones::MAX_TONE_BYTES).map_err(|e| match e {
        switchboard_core::audio::AudioError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        other => ApiError::bad_request("not_mp3", other.to_string()),
    })?;
    let tone = Tone {
        id: format!("tone-{}", Uuid::now_v7().simple()),
        name: clean_name(query.name.as_deref(), AttachmentKind::Png)
            .trim_end_matches(".png")
            .to_owned(),
        size: body.len() as i64,
        created_at: Utc::now(),
    };
    app.blobs
        .put(&tone.id, &body)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    app.services.store.create_tone(&tone).await?;
    app.services.config.changed(ConfigArea::Tones).await?;
    Ok((
        StatusCode::CREATED,
        Json(ToneView {
            url: format!("/api/v1/tones/{}", tone.id),
            id: tone.id,
            name: tone.name,
            builtin: false,
        }),
    ))
}

/// Removes an uploaded tone.
#[utoipa::path(delete, path = "/api/v1/tones/{id}", tag = "chat", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
async fn delete_tone(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    app.services.store.delete_tone(&id).await?;
    let _ = app.blobs.delete(&id).await;
    app.services.config.changed(ConfigArea::Tones).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsView {
    /// A tone id from `/api/v1/tones`.
    pub new_chat_tone: String,
    pub new_message_tone: String,
    /// Repeat the new-chat tone every this many seconds (2 to 300) until accepted; null plays it once.
    pub repeat_seconds: Option<u32>,
    /// The tone a ringing call plays in the adapter (default `ring`).
    #[serde(default = "default_call_tone")]
    pub new_call_tone: String,
    /// Repeat the call tone every this many seconds (2 to 300) until the call is taken or gone
    /// (default 4); null plays it once.
    #[serde(default = "default_call_repeat")]
    pub call_repeat_seconds: Option<u32>,
}

fn default_call_tone() -> String {
    crate::tones::DEFAULT_NEW_CALL.into()
}

fn default_call_repeat() -> Option<u32> {
    Some(crate::tones::DEFAULT_CALL_REPEAT)
}

/// One's own notification tones.
#[utoipa::path(get, path = "/api/v1/agent/notifications", tag = "chat", security(("session" = [])), responses((status = 200, body = NotificationsView)))]
async fn get_notifications(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<NotificationsView>> {
    Ok(Json(
        match app
            .services
            .store
            .notification_settings(current.user.id)
            .await?
        {
            Some(s) => NotificationsView {
                new_chat_tone: s.new_chat_tone,
                new_message_tone: s.new_message_tone,
                repeat_seconds: s.repeat_seconds,
                new_call_tone: s.new_call_tone,
                call_repeat_seconds: s.call_repeat_seconds,
            },
            None => NotificationsView {
                new_chat_tone: crate::tones::DEFAULT_NEW_CHAT.into(),
                new_message_tone: crate::tones::DEFAULT_NEW_MESSAGE.into(),
                repeat_seconds: Some(5),
                new_call_tone: default_call_tone(),
                call_repeat_seconds: default_call_repeat(),
            },
        },
    ))
}

/// Chooses one's notification tones.
#[utoipa::path(put, path = "/api/v1/agent/notifications", tag = "chat", security(("session" = [])), request_body = NotificationsView,
    responses((status = 200, body = NotificationsView), (status = 400, body = super::error::ErrorBody)))]
async fn put_notifications(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<NotificationsView>,
) -> ApiResult<Json<NotificationsView>> {
    let uploaded: Vec<String> = app
        .services
        .store
        .list_tones()
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    for tone in [
        &input.new_chat_tone,
        &input.new_message_tone,
        &input.new_call_tone,
    ] {
        if crate::tones::built_in(tone).is_none() && !uploaded.contains(tone) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!(
                    "no tone is named `{}`",
                    tone.chars().take(60).collect::<String>()
                ),
            ));
        }
    }
    for (field, seconds) in [
        ("repeat_seconds", input.repeat_seconds),
        ("call_repeat_seconds", input.call_repeat_seconds),
    ] {
        if seconds.is_some_and(|s| !(2..=300).contains(&s)) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("{field} is 2 to 300, or null to play once"),
            ));
        }
    }
    let settings = NotificationSettings {
        user: current.user.id,
        new_chat_tone: input.new_chat_tone.clone(),
        new_message_tone: input.new_message_tone.clone(),
        repeat_seconds: input.repeat_seconds,
        new_call_tone: input.new_call_tone.clone(),
        call_repeat_seconds: input.call_repeat_seconds,
    };
    app.services
        .store
        .put_notification_settings(&settings)
        .await?;
    Ok(Json(input))
}
