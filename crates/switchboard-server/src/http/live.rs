//! What is happening now: agents and their presence, open contacts, and the live event
//! stream over WebSocket.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::require;
use super::wire::{event_json, AgentView, ContactView, EventPayload, PresenceInput};
use crate::app::AppState;
use crate::voice::CallControl;
use axum::extract::ws::{Message, WebSocket};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::Utc;
use std::collections::HashMap;
use switchboard_core::{
    Actor, CallId, Contact, ContactId, EndedBy, Permission, Presence, Target, TeamId, User, UserId,
    Watched,
};
use switchboard_services::contacts::ContactError;
use switchboard_store::StoreError;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents))
        .routes(routes!(set_presence))
        .routes(routes!(list_contacts))
        .routes(routes!(get_contact))
        .routes(routes!(end_contact))
        .routes(routes!(end_call))
        .routes(routes!(events))
}

impl From<ContactError> for ApiError {
    fn from(error: ContactError) -> Self {
        match error {
            ContactError::UnknownQueue => ApiError::not_found("queue"),
            ContactError::UnknownContact => ApiError::not_found("contact"),
            ContactError::NotALeaf => ApiError::bad_request("not_a_leaf_queue", error.to_string()),
            ContactError::AlreadyEnded
            | ContactError::NotAssigned
            | ContactError::AgentUnavailable => ApiError::conflict(error.to_string()),
            ContactError::WrongChannel => ApiError::bad_request("wrong_channel", error.to_string()),
            ContactError::Store(store) => store.into(),
        }
    }
}

/// Agents: users whose role handles contacts.
pub async fn agent_views(
    app: &AppState,
    may_see: impl Fn(&User) -> bool,
) -> ApiResult<Vec<AgentView>> {
    let handlers: Vec<String> = app
        .services
        .store
        .list_roles()
        .await?
        .into_iter()
        .filter(|r| r.permissions.contains(Permission::HandleContacts))
        .map(|r| r.key.to_string())
        .collect();
    let mut views = Vec::new();
    for user in app.services.store.list_users().await? {
        if user.disabled || !handlers.contains(&user.role.to_string()) || !may_see(&user) {
            continue;
        }
        views.push(view_of(app, &user).await);
    }
    Ok(views)
}

async fn view_of(app: &AppState, user: &User) -> AgentView {
    let (calls, chats) = app.services.contacts.load_of(user.id).await;
    AgentView {
        user_id: user.id.to_string(),
        username: user.username.to_string(),
        display_name: user.display_name.to_string(),
        presence: user.presence.current().to_string(),
        presence_since: user.presence.since(),
        teams: user.teams.iter().map(ToString::to_string).collect(),
        calls,
        chats,
    }
}

/// One user as an agent, as `agent_views` would list them: none for a user who is disabled
/// or whose role does not take contacts. Reads the one user's role, not every user.
async fn agent_view(app: &AppState, user: &User) -> ApiResult<Option<AgentView>> {
    let handles = match app.services.store.get_role(&user.role).await {
        Ok(role) => role.permissions.contains(Permission::HandleContacts),
        Err(StoreError::NotFound(_)) => false,
        Err(error) => return Err(error.into()),
    };
    if user.disabled || !handles {
        return Ok(None);
    }
    Ok(Some(view_of(app, user).await))
}

/// Agents in the caller's reach, with presence and current load (MON-6).
#[utoipa::path(get, path = "/api/v1/agents", tag = "live", security(("session" = [])), responses((status = 200, body = [AgentView])))]
async fn list_agents(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<AgentView>>> {
    let actor = current.actor;
    Ok(Json(
        agent_views(&app, |u| {
            actor.may_watch(Watched::Agent {
                id: u.id,
                teams: &u.teams,
            })
        })
        .await?,
    ))
}

/// Sets an agent's presence: one's own, or another's with users_edit over them.
#[utoipa::path(put, path = "/api/v1/agents/{id}/presence", tag = "live", security(("session" = [])), params(("id" = String, Path)), request_body = PresenceInput,
    responses((status = 200, body = AgentView), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn set_presence(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<PresenceInput>,
) -> ApiResult<Json<AgentView>> {
    let id = UserId::parse(&id).map_err(|_| ApiError::not_found("agent"))?;
    let user = if id == current.user.id {
        current.user.clone()
    } else {
        app.services.store.get_user(id).await?
    };
    if id != current.user.id {
        if !current.actor.may_watch(Watched::Agent {
            id,
            teams: &user.teams,
        }) {
            return Err(ApiError::not_found("agent"));
        }
        require(
            &current.actor,
            Permission::UsersEdit,
            Target::User {
                id,
                teams: &user.teams,
            },
        )?;
    }
    let presence = Presence::parse(&input.presence)?;
    if let Presence::Custom(name) = &presence {
        if !app
            .services
            .store
            .list_custom_statuses()
            .await?
            .iter()
            .any(|s| s == name.as_str())
        {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("no custom status is named `{name}`"),
            ));
        }
    }
    if presence.is_routable() {
        let role = app.services.store.get_role(&user.role).await?;
        if !role.permissions.contains(Permission::HandleContacts) || user.disabled {
            return Err(ApiError::conflict(
                "this user's role does not take contacts, so they cannot be available",
            ));
        }
    }
    let user = app
        .services
        .contacts
        .set_presence(user.id, presence)
        .await?;
    agent_view(&app, &user)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("agent"))
}

fn may_see_contact(actor: &Actor, contact: &Contact, teams: &HashMap<UserId, Vec<TeamId>>) -> bool {
    match contact.agent {
        Some(agent) => actor.may_watch(Watched::Agent {
            id: agent,
            teams: teams.get(&agent).map(Vec::as_slice).unwrap_or(&[]),
        }),
        None => actor.may_watch(Watched::Waiting {
            queue: contact.queue,
            channel: contact.channel,
        }),
    }
}

/// Queued and connected contacts the caller may watch (MON-5, MON-7).
#[utoipa::path(get, path = "/api/v1/contacts", tag = "live", security(("session" = [])), responses((status = 200, body = [ContactView])))]
async fn list_contacts(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<ContactView>>> {
    let teams = app.services.teams_by_user().await?;
    let open = app.services.store.open_contacts().await?;
    Ok(Json(
        open.iter()
            .filter(|c| may_see_contact(&current.actor, c, &teams))
            .map(ContactView::from)
            .collect(),
    ))
}

pub(super) async fn visible_contact(
    app: &AppState,
    actor: &Actor,
    id: &str,
) -> ApiResult<(Contact, HashMap<UserId, Vec<TeamId>>)> {
    let id = ContactId::parse(id).map_err(|_| ApiError::not_found("contact"))?;
    let contact = app.services.store.get_contact(id).await?;
    // Only the contact's agent's teams matter: one user read, not every user.
    let mut teams = HashMap::new();
    if let Some(agent) = contact.agent {
        match app.services.store.get_user(agent).await {
            Ok(user) => {
                teams.insert(agent, user.teams);
            }
            Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    if !may_see_contact(actor, &contact, &teams) {
        return Err(ApiError::not_found("contact"));
    }
    Ok((contact, teams))
}

/// One contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 404, body = super::error::ErrorBody)))]
async fn get_contact(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContactView>> {
    let (contact, _) = visible_contact(&app, &current.actor, &id).await?;
    Ok(Json(ContactView::from(&contact)))
}

/// Ends a contact: the agent who holds it completes it; a user with monitor_chats_edit ends a
/// stuck one (MON-7: admins any, managers only their teams' agents'), and the contact's record
/// and the audit log name them. A call's contact ending hangs up the call.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/end", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ContactView), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn end_contact(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ContactView>> {
    let (contact, teams) = visible_contact(&app, &current.actor, &id).await?;
    let ended = if contact.agent == Some(current.user.id) {
        app.services
            .contacts
            .end(contact.id, "completed".to_owned())
            .await?
    } else {
        let agent = contact
            .agent
            .map(|id| (id, teams.get(&id).map_or(&[][..], Vec::as_slice)));
        if !current.actor.may_end_contact(agent) {
            return Err(ApiError::forbidden(
                "ending someone else's contact needs monitor_chats_edit for its agent",
            ));
        }
        let subject = if contact.channel.is_call() {
            format!("contact:{}", contact.id)
        } else {
            format!("chat:{}", contact.id)
        };
        end_stuck(&app, &current, &contact, subject).await?
    };
    Ok(Json(ContactView::from(&ended)))
}

/// Ends someone else's contact (MON-7): its record names the user, and so does the audit log.
async fn end_stuck(
    app: &AppState,
    current: &CurrentUser,
    contact: &Contact,
    subject: String,
) -> ApiResult<Contact> {
    let by = EndedBy {
        user: current.user.id,
        name: current.user.display_name.to_string(),
    };
    let ended = app
        .services
        .contacts
        .end_by(contact.id, "ended_by_supervisor".to_owned(), by)
        .await?;
    let with = match contact.agent {
        Some(agent) => format!("with {}", app.chat.agent_name(agent).await),
        None => "waiting in its queue".to_owned(),
    };
    let noun = if contact.channel.is_call() {
        "call"
    } else {
        "chat"
    };
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.user.id),
            "contact_ended",
            Some(subject),
            format!(
                "{} ({}) ended the {noun} of {} in {}, {with}",
                current.user.username,
                current.user.display_name,
                contact.customer.as_deref().unwrap_or("a customer"),
                contact.issue
            ),
        )
        .await;
    Ok(ended)
}

/// Ends a stuck call from the queued or connected lists (MON-7), with monitor_chats_edit for
/// its agent (admins any, managers their teams'; a call without an agent needs it
/// center-wide). The caller and any agent or number on it get a BYE (a ringing phone a
/// CANCEL); the call's contact and the audit log name the user, and its record says
/// `ended_by: supervisor`. A call still in the menu has no contact yet: it is hung up and
/// audited.
#[utoipa::path(post, path = "/api/v1/calls/{id}/end", tag = "live", security(("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)))]
async fn end_call(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let call = CallId::parse(&id)?;
    let teams = app.services.teams_by_user().await?;
    let live = app.voice.live().await?;
    let Some(record) = live.into_iter().find(|c| c.id == call) else {
        // Not live: an ended call (409) or none the user may see (404).
        let stored = app.services.store.get_call(call).await?;
        if !super::voice::visible(&current, &stored, &teams) {
            return Err(ApiError::not_found("call"));
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "call_ended",
            "the call has ended",
        ));
    };
    if !super::voice::visible(&current, &record, &teams) {
        return Err(ApiError::not_found("call"));
    }
    let agent = record
        .agent
        .map(|id| (id, teams.get(&id).map_or(&[][..], Vec::as_slice)));
    if !current.actor.may_end_contact(agent) {
        return Err(ApiError::forbidden(
            "ending a call needs monitor_chats_edit for its agent",
        ));
    }
    let subject = format!("call:{call}");
    let open = match record.contact {
        Some(contact) => app.services.contacts.open_contact(contact).await,
        None => None,
    };
    match open {
        Some(contact) => {
            end_stuck(&app, &current, &contact, subject).await?;
        }
        None => {
            app.voice.control(call, CallControl::HangUp).await?;
            app.services
                .audit
                .record(
                    Utc::now(),
                    Some(current.user.id),
                    "call_ended",
                    Some(subject),
                    format!(
                        "{} ({}) hung up the call from {} before it reached a queue",
                        current.user.username, current.user.display_name, record.caller
                    ),
                )
                .await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Resolves when the user's session is gone (signed out, expired, the user disabled), checked
/// every `SESSION_RECHECK`; a long-lived socket ends with it.
pub(super) async fn session_ended(app: &AppState, current: &CurrentUser) {
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.tick().await;
    loop {
        recheck.tick().await;
        let alive = app
            .services
            .store
            .get_session(&current.session.token_hash, Utc::now())
            .await;
        if !matches!(alive, Ok(Some(_))) {
            return;
        }
    }
}

/// The live event stream (WebSocket): a `hello`, then `presence_changed`, `contact_queued`,
/// `contact_assigned` and `contact_ended` events the user may watch, one JSON object per text
/// frame (see EventPayload). A slow reader gets `lagged` with the number of events it missed.
#[utoipa::path(get, path = "/api/v1/events", tag = "live", security(("session" = [])),
    responses((status = 101, description = "Switching to WebSocket; frames are EventPayload JSON"), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, description = "origin_not_allowed: the page's Origin is neither the server's own nor configured", body = super::error::ErrorBody)))]
async fn events(
    State(app): State<AppState>,
    current: CurrentUser,
    headers: axum::http::HeaderMap,
    super::extract::ApiWebSocket(upgrade): super::extract::ApiWebSocket,
) -> super::error::ApiResult<Response> {
    super::extract::check_origin(&headers, &app.config.security.allowed_origins)?;
    // Small buffers: a watcher only reads pings and writes events of a few hundred bytes, and
    // a center has hundreds of them open (docs/benchmarks.md, live pages).
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| stream_events(app, current, socket)))
}

/// How often a stream checks that its session still exists.
const SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

async fn stream_events(app: AppState, current: CurrentUser, mut socket: WebSocket) {
    app.services.metrics.event_subscribers.inc();
    let mut receiver = app.services.events.subscribe();
    let hello = EventPayload::Hello {
        user_id: current.user.id.to_string(),
        permissions: current
            .actor
            .role
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    };
    let mut recheck = tokio::time::interval(SESSION_RECHECK);
    recheck.tick().await;
    if send_json(&mut socket, &hello).await {
        loop {
            tokio::select! {
                event = receiver.recv() => match event {
                    Ok(event) => {
                        if !event.visible_to(&current.actor) {
                            continue;
                        }
                        // Encoded by the first watcher that sends it; the same text for the rest.
                        let Some(json) = event.encoded(event_json) else { continue };
                        if socket.send(Message::Text(json.to_owned().into())).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        if !send_json(&mut socket, &EventPayload::Lagged { missed }).await {
                            break;
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                incoming = socket.recv() => match incoming {
                    // The stream is one-way; anything but pings and close is ignored.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                _ = recheck.tick() => {
                    let alive = app.services.store.get_session(&current.session.token_hash, Utc::now()).await;
                    if !matches!(alive, Ok(Some(_))) {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                }
            }
        }
    }
    app.services.metrics.event_subscribers.dec();
}

async fn send_json(socket: &mut WebSocket, payload: &EventPayload) -> bool {
    match serde_json::to_string(payload) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}
