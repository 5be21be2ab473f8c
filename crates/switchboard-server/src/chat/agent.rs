//! An agent's adapter connection (`/api/v1/agent/ws`, signed in with the session cookie; the
//! HTTP layer hands over the signed-in agent as an `Actor`). Agents act only on chats assigned
//! to them; anything else gets an `error` frame and the connection stays open.
//!
//! The same connection carries the browser phone's signalling (docs/browser-phone.md): after
//! `phone_ready` the connection is a browser session of the voice engine until it closes; the
//! voice task sends it `call_ring` and `call_stop` and checks every leg it names.
//!
//! A supervisor's portal has a phone of its own (`/api/v1/monitor/ws`, `serve_monitor_phone`):
//! the same phone frames and nothing else, for their monitor legs alone. It is no adapter: it
//! joins no chats, counts for no attendance and never rings for a routed call.

use super::protocol::{parse_agent, AgentCommand, ServerEvent, Tones};
use super::{parse_chat_id, ChatError, ChatService};
use axum::extract::ws::{Message, WebSocket};
use std::sync::Arc;
use switchboard_core::chat::Sender;
use switchboard_core::{Actor, Channel, ContactId, ContactStatus, QueueId, UserId};
use switchboard_services::contacts::TransferTarget;

/// Messages per `history` answer at most.
const HISTORY_BATCH: u32 = 500;

pub async fn serve(
    chat: Arc<ChatService>,
    voice: Arc<crate::app::App>,
    actor: Actor,
    mut socket: WebSocket,
) {
    let (conn, mut outbox) = chat.hub.connect();
    let agent = actor.user_id;
    chat.hub.join_agent(agent, &conn);
    chat.attendance.agent_connected(agent, conn.id);
    let mut chats = Vec::new();
    if let Ok(open) = chat.store.open_contacts().await {
        for contact in open.iter().filter(|c| {
            c.agent == Some(agent) && matches!(c.channel, Channel::Web | Channel::Mobile)
        }) {
            if let Ok(view) = chat.agent_chat(contact).await {
                chats.push(view);
            }
        }
    }
    let welcome = ServerEvent::Welcome {
        visitor_id: None,
        visitor_token: None,
        user_id: Some(agent.to_string()),
        chats: Vec::new(),
        agent_chats: chats,
        tones: Some(tones(&chat, agent).await),
        presence: chat
            .store
            .get_user(agent)
            .await
            .ok()
            .map(|user| user.presence.current().to_string()),
    };
    if socket
        .send(Message::Text(welcome.to_json().to_string().into()))
        .await
        .is_err()
    {
        chat.hub.leave(conn.id);
        chat.attendance.closed(conn.id);
        return;
    }
    let mut session = AgentSession {
        phone: PhoneSession {
            user: agent,
            app: voice,
            online: false,
            monitor_only: false,
        },
    };
    super::connection::pump(&chat, &conn, &mut socket, &mut outbox, &mut session).await;
    chat.attendance.closed(conn.id);
    session.phone.closed(conn.id);
}

/// A supervisor's portal phone (MON-1, MON-2 in the browser): phone frames only, on a
/// connection that carries their monitor legs and nothing else.
pub async fn serve_monitor_phone(
    chat: Arc<ChatService>,
    app: Arc<crate::app::App>,
    user: UserId,
    mut socket: WebSocket,
) {
    let (conn, mut outbox) = chat.hub.connect();
    let mut session = PhoneSession {
        user,
        app,
        online: false,
        monitor_only: true,
    };
    super::connection::pump(&chat, &conn, &mut socket, &mut outbox, &mut session).await;
    session.closed(conn.id);
}

/// An agent's connection: its phone, and (through `agent`) the chats it handles.
struct AgentSession {
    phone: PhoneSession,
}

/// A connection's browser phone: whose, and whether it said `phone_ready`.
struct PhoneSession {
    user: UserId,
    /// For the voice service (the browser phone's signalling).
    app: Arc<crate::app::App>,
    /// Said `phone_ready`: a browser session of the voice engine until the connection closes.
    online: bool,
    /// A portal's phone: it carries the user's monitor legs only.
    monitor_only: bool,
}

impl PhoneSession {
    fn closed(&self, conn: u64) {
        if self.online {
            self.app.voice.phone_offline(conn);
        }
    }
}

impl super::connection::Commands for PhoneSession {
    async fn handle(
        &mut self,
        _chat: &ChatService,
        conn: &super::hub::Conn,
        text: &str,
    ) -> Vec<Arc<str>> {
        match parse_agent(text) {
            Ok(command) => match phone(self, conn, command).await {
                Ok(frames) => frames,
                Err(_) => vec![ServerEvent::error(
                    "unknown_type",
                    "this connection carries the phone's frames only",
                    None,
                )
                .to_json()],
            },
            Err(e) => vec![ServerEvent::error(e.code, e.message, e.client_id).to_json()],
        }
    }
}

impl super::connection::Commands for AgentSession {
    async fn handle(
        &mut self,
        chat: &ChatService,
        conn: &super::hub::Conn,
        text: &str,
    ) -> Vec<Arc<str>> {
        match parse_agent(text) {
            Ok(command) => match phone(&mut self.phone, conn, command).await {
                Ok(frames) => frames,
                Err(command) => handle(chat, conn, self.phone.user, command).await,
            },
            Err(e) => vec![ServerEvent::error(e.code, e.message, e.client_id).to_json()],
        }
    }
}

/// The browser phone's commands; any other command is handed back.
async fn phone(
    session: &mut PhoneSession,
    conn: &super::hub::Conn,
    command: AgentCommand,
) -> Result<Vec<Arc<str>>, AgentCommand> {
    let voice = &session.app.voice;
    let leg = |leg_id: &str| leg_id.parse::<u64>().ok();
    let not_ringing = |leg_id: String| {
        ServerEvent::error(
            "not_found",
            "no such call is ringing on this adapter",
            Some(leg_id),
        )
        .to_json()
    };
    Ok(match command {
        AgentCommand::PhoneReady => {
            if !session.online {
                if let Err(error) =
                    voice.phone_online(session.user, conn.clone(), session.monitor_only)
                {
                    return Ok(vec![ServerEvent::error(
                        "voice_off",
                        error.to_string(),
                        None,
                    )
                    .to_json()]);
                }
                session.online = true;
            }
            vec![ServerEvent::PhoneReady {
                session_id: conn.id.to_string(),
            }
            .to_json()]
        }
        AgentCommand::CallAnswer { leg_id, sdp } => {
            let Some(id) = leg(&leg_id).filter(|_| session.online) else {
                return Ok(vec![not_ringing(leg_id)]);
            };
            match voice.phone_answer(conn.id, id, sdp).await {
                Ok(sdp) => vec![ServerEvent::CallSdp { leg_id, sdp }.to_json()],
                Err(crate::voice::PhoneError::NotRinging) => vec![not_ringing(leg_id)],
                Err(error) => {
                    vec![
                        ServerEvent::error("media_refused", error.to_string(), Some(leg_id))
                            .to_json(),
                    ]
                }
            }
        }
        AgentCommand::CallDecline { leg_id } | AgentCommand::CallHangup { leg_id }
            if !session.online || leg(&leg_id).is_none() =>
        {
            vec![not_ringing(leg_id)]
        }
        AgentCommand::CallDecline { leg_id } => {
            let _ = voice.phone_leg(conn.id, leg(&leg_id).unwrap_or_default(), false);
            Vec::new()
        }
        AgentCommand::CallHangup { leg_id } => {
            let _ = voice.phone_leg(conn.id, leg(&leg_id).unwrap_or_default(), true);
            Vec::new()
        }
        other => return Err(other),
    })
}

/// The agent's tones as URLs (NTF-3).
pub async fn tones(chat: &ChatService, agent: UserId) -> Tones {
    let settings = chat.store.notification_settings(agent).await.ok().flatten();
    let url = |tone: &str| format!("/api/v1/tones/{tone}");
    match settings {
        Some(s) => Tones {
            new_chat: url(&s.new_chat_tone),
            new_message: url(&s.new_message_tone),
            repeat_seconds: s.repeat_seconds,
            new_call: url(&s.new_call_tone),
            call_repeat_seconds: s.call_repeat_seconds,
        },
        None => Tones {
            new_chat: url(crate::tones::DEFAULT_NEW_CHAT),
            new_message: url(crate::tones::DEFAULT_NEW_MESSAGE),
            repeat_seconds: Some(5),
            new_call: url(crate::tones::DEFAULT_NEW_CALL),
            call_repeat_seconds: Some(crate::tones::DEFAULT_CALL_REPEAT),
        },
    }
}

/// The agent's own open chat, or an error.
async fn own_chat(
    service: &ChatService,
    agent: UserId,
    chat_id: &str,
) -> Result<ContactId, ChatError> {
    let chat = parse_chat_id(chat_id)?;
    let contact = match service.contacts.open_contact(chat).await {
        Some(contact) => contact,
        None => {
            return Err(match service.store.get_contact(chat).await {
                Ok(c) if c.agent == Some(agent) => ChatError::Ended,
                Ok(_) => ChatError::Forbidden,
                Err(_) => ChatError::NotFound,
            })
        }
    };
    if contact.agent != Some(agent) || contact.status != ContactStatus::Assigned {
        return Err(ChatError::Forbidden);
    }
    Ok(chat)
}

async fn handle(
    service: &ChatService,
    conn: &super::hub::Conn,
    agent: UserId,
    command: AgentCommand,
) -> Vec<Arc<str>> {
    let result: Result<Vec<Arc<str>>, (ChatError, Option<String>)> = async {
        match command {
            AgentCommand::Ping => Ok(vec![ServerEvent::Pong.to_json()]),
            // Taken by `phone` before this match.
            AgentCommand::PhoneReady
            | AgentCommand::CallAnswer { .. }
            | AgentCommand::CallDecline { .. }
            | AgentCommand::CallHangup { .. } => Ok(Vec::new()),
            AgentCommand::Accept { chat_id } => {
                let chat = own_chat(service, agent, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                let frame = service
                    .accept(chat, agent, conn)
                    .await
                    .map_err(|e| (e, None))?;
                Ok(vec![frame])
            }
            AgentCommand::Message {
                chat_id,
                client_id,
                text,
                attachment_id,
            } => {
                let reference = Some(client_id.clone());
                let chat = own_chat(service, agent, &chat_id)
                    .await
                    .map_err(|e| (e, reference.clone()))?;
                let ack = service
                    .post(
                        chat,
                        Sender::Agent(agent),
                        super::Draft {
                            client_id: &client_id,
                            text: &text,
                            attachment: attachment_id.as_deref(),
                        },
                        conn,
                    )
                    .await
                    .map_err(|e| (e, reference))?;
                Ok(vec![ack.to_json()])
            }
            AgentCommand::Typing { chat_id, active } => {
                let chat = own_chat(service, agent, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                let frame = ServerEvent::Typing {
                    chat_id,
                    from: "agent".into(),
                    active,
                }
                .to_json();
                service.hub.to_chat(chat, &frame, None);
                Ok(Vec::new())
            }
            AgentCommand::History { chat_id, after_seq } => {
                let chat = parse_chat_id(&chat_id).map_err(|e| (e, None))?;
                let contact = service
                    .store
                    .get_contact(chat)
                    .await
                    .map_err(|_| (ChatError::NotFound, None))?;
                if contact.agent != Some(agent) {
                    return Err((ChatError::Forbidden, None));
                }
                let batch = service
                    .store
                    .messages(chat, after_seq.max(0), HISTORY_BATCH)
                    .await
                    .map_err(|e| (e.into(), None))?;
                let mut messages = Vec::with_capacity(batch.len());
                for message in &batch {
                    messages.push(service.message_view(message).await);
                }
                let last_seq = batch.last().map_or(after_seq, |m| m.seq);
                Ok(vec![ServerEvent::History {
                    chat_id,
                    messages,
                    last_seq,
                }
                .to_json()])
            }
            AgentCommand::Transfer {
                chat_id,
                queue_id,
                agent_id,
            } => {
                let chat = own_chat(service, agent, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                let target = match (queue_id, agent_id) {
                    (Some(queue), None) => TransferTarget::Queue(
                        QueueId::parse(&queue).map_err(|_| (ChatError::NotFound, None))?,
                    ),
                    (None, Some(to)) => TransferTarget::Agent(
                        UserId::parse(&to).map_err(|_| (ChatError::NotFound, None))?,
                    ),
                    _ => {
                        return Err((
                            ChatError::Invalid("name exactly one of queue_id and agent_id".into()),
                            None,
                        ))
                    }
                };
                if let TransferTarget::Queue(queue) = target {
                    service
                        .check_transfer(chat, queue)
                        .await
                        .map_err(|e| (e, None))?;
                    if service
                        .deflect_transfer(chat, queue)
                        .await
                        .map_err(|e| (e, None))?
                    {
                        return Ok(Vec::new());
                    }
                }
                service
                    .contacts
                    .transfer(chat, target)
                    .await
                    .map_err(|e| (e.into(), None))?;
                Ok(Vec::new())
            }
            AgentCommand::End { chat_id } => {
                let chat = own_chat(service, agent, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                service
                    .contacts
                    .end(chat, "completed".into())
                    .await
                    .map_err(|e| (e.into(), None))?;
                Ok(Vec::new())
            }
        }
    }
    .await;
    result.unwrap_or_else(|(error, reference)| vec![error.frame(reference)])
}
