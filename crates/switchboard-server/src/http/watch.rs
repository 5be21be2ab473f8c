//! Watching live chats (MON-3, MON-5): a supervisor opens a queued or connected chat and reads
//! its transcript as it happens, without joining it (docs/chat-protocol.md, "The watch
//! protocol"). Watching needs `monitor_chats_view` for the chat's agent (a manager only for
//! their teams; a chat still waiting only center-wide); nobody watches their own chat. Each
//! watching connection is in the audit log twice: when it opens and when it closes.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, ApiWebSocket, CurrentUser};
use crate::app::AppState;
use crate::chat::protocol::WatchedChat;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::Utc;
use switchboard_core::Contact;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_watch))
        .routes(routes!(watch_socket))
}

/// The chat, if the user may watch it now: 404 for a chat they may not see (or no chat at
/// all), 409 `chat_ended` once it has ended, 403 when they see it but may not watch it.
async fn watchable(app: &AppState, current: &CurrentUser, id: &str) -> ApiResult<Contact> {
    let (contact, teams) = super::live::visible_contact(app, &current.actor, id).await?;
    if contact.channel.is_call() {
        return Err(ApiError::not_found("chat"));
    }
    if !contact.status.is_open() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "chat_ended",
            "the chat has ended; its transcript is on its ticket",
        ));
    }
    let agent = contact
        .agent
        .map(|id| (id, teams.get(&id).map_or(&[][..], Vec::as_slice)));
    if !current.actor.may_watch_chat(agent) {
        return Err(ApiError::forbidden(match contact.agent {
            Some(id) if id == current.user.id => "this chat is yours: it is on your desk",
            Some(_) => "you may not watch this agent's chats",
            None => "you may not watch chats that wait in a queue",
        }));
    }
    Ok(contact)
}

/// A chat as its watchers see it: agent, consumer, issue and CRM record (MON-5). The same
/// checks as the watching socket, so a page can show why it may not open one.
#[utoipa::path(get, path = "/api/v1/chats/{id}/watch", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = WatchedChat), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
async fn get_watch(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WatchedChat>> {
    let contact = watchable(&app, &current, &id).await?;
    Ok(Json(app.chat.watched_chat(&contact).await.map_err(
        |error| match error {
            crate::chat::ChatError::Store(store) => ApiError::from(store),
            other => ApiError::conflict(other.to_string()),
        },
    )?))
}

/// Watches a chat live (WebSocket): `watching` with the chat, `history` with its messages so
/// far, then each `message` of either side and `chat_updated` when it moves, until
/// `chat_ended`. Read-only: the consumer and the agent are never told.
#[utoipa::path(get, path = "/api/v1/chats/{id}/watch/ws", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 101, description = "Switching to WebSocket; frames as docs/chat-protocol.md describes"), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, description = "forbidden, or origin_not_allowed", body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn watch_socket(
    State(app): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiWebSocket(upgrade): ApiWebSocket,
) -> ApiResult<Response> {
    super::extract::check_origin(&headers, &app.config.security.allowed_origins)?;
    let contact = watchable(&app, &current, &id).await?;
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let subject = Some(format!("chat:{}", contact.id));
            let who = format!("{} ({})", current.user.username, current.user.display_name);
            let agent = match contact.agent {
                Some(agent) => format!(" with {}", app.chat.agent_name(agent).await),
                None => " waiting in its queue".to_owned(),
            };
            let customer = contact
                .customer
                .clone()
                .unwrap_or_else(|| "a consumer".into());
            let audit = &app.services.audit;
            audit
                .record(
                    Utc::now(),
                    Some(current.user.id),
                    "chat_watch_started",
                    subject.clone(),
                    format!(
                        "{who} started watching the chat of {customer} in {}{agent}",
                        contact.issue
                    ),
                )
                .await;
            // A session that ends (sign-out, a disabled user) stops the watching too.
            tokio::select! {
                () = crate::chat::watch::serve(app.chat.clone(), contact.id, socket) => {}
                () = super::live::session_ended(&app, &current) => {}
            }
            audit
                .record(
                    Utc::now(),
                    Some(current.user.id),
                    "chat_watch_ended",
                    subject,
                    format!("{who} stopped watching the chat of {customer}"),
                )
                .await;
        }))
}
