//! A consumer's widget connection (`/chat/v1/ws`). The first frame is `hello`; after it the
//! widget starts or resumes chats and sends messages. Every bad frame gets an `error` frame and
//! closes nothing; only a failed `hello` ends the connection.

use super::protocol::{parse_consumer, ConsumerCommand, ServerEvent};
use super::{parse_chat_id, ChatError, ChatService};
use crate::secret;
use axum::extract::ws::{Message, WebSocket};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::chat::Sender;
use switchboard_core::{ContactId, IdentityId, VisitorId};
use switchboard_store::{Identity, Visitor};
use uuid::Uuid;

/// How long a new connection may take to say `hello`.
const HELLO_WITHIN: Duration = Duration::from_secs(15);
/// Messages sent per `resume` frame batch.
const RESUME_BATCH: u32 = 200;

/// Asks whether this connection may make a new visitor: `Err(wait)` when its source address
/// has made too many lately.
pub type AdmitVisitor = Box<dyn FnOnce() -> Result<(), chrono::Duration> + Send>;

pub async fn serve(chat: Arc<ChatService>, mut socket: WebSocket, admit_visitor: AdmitVisitor) {
    let (conn, mut outbox) = chat.hub.connect();
    let visitor = match tokio::time::timeout(HELLO_WITHIN, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => match parse_consumer(&text) {
            Ok(ConsumerCommand::Hello {
                visitor_id,
                visitor_token,
                identity_token,
            }) => {
                hello(
                    &chat,
                    &mut socket,
                    &conn,
                    visitor_id,
                    visitor_token,
                    identity_token,
                    admit_visitor,
                )
                .await
            }
            Ok(_) => Err(
                ServerEvent::error("hello_first", "the first frame must be hello", None).to_json(),
            ),
            Err(e) => Err(ServerEvent::error(e.code, e.message, e.client_id).to_json()),
        },
        _ => Err(ServerEvent::error("hello_first", "say hello first", None).to_json()),
    };
    let mut session = match visitor {
        Ok(visitor) => Session {
            visitor,
            owned: HashSet::new(),
        },
        Err(frame) => {
            let _ = socket.send(Message::Text(frame.to_string().into())).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    super::connection::pump(&chat, &conn, &mut socket, &mut outbox, &mut session).await;
    chat.attendance.closed(conn.id);
}

/// Finds or makes the visitor, applies an identity token, and welcomes them.
async fn hello(
    service: &ChatService,
    socket: &mut WebSocket,
    conn: &super::hub::Conn,
    visitor_id: Option<String>,
    visitor_token: Option<String>,
    identity_token: Option<String>,
    admit_visitor: AdmitVisitor,
) -> Result<Visitor, Arc<str>> {
    let refuse = || {
        ServerEvent::error(
            "unauthorized",
            "unknown visitor or wrong token; start afresh without a visitor id",
            None,
        )
        .to_json()
    };
    let (mut visitor, new_token) = match visitor_id {
        Some(id) => {
            let id = VisitorId::parse(&id).map_err(|_| refuse())?;
            let visitor = service.store.get_visitor(id).await.map_err(|_| refuse())?;
            let token = visitor_token.ok_or_else(refuse)?;
            if !secret::constant_time_eq(&secret::sha256_hex(&token), &visitor.token_hash) {
                return Err(refuse());
            }
            (visitor, None)
        }
        None => {
            if let Err(wait) = admit_visitor() {
                return Err(ServerEvent::error(
                    "too_many_visitors",
                    format!(
                        "too many new visitors from this address; try again in {} seconds",
                        wait.num_seconds().max(1)
                    ),
                    None,
                )
                .to_json());
            }
            let token = secret::random_token(24);
            let visitor = Visitor {
                id: VisitorId::from_uuid(Uuid::now_v7()),
                token_hash: secret::sha256_hex(&token),
                identity: None,
                created_at: Utc::now(),
            };
            service
                .store
                .create_visitor(&visitor)
                .await
                .map_err(|e| ChatError::from(e).frame(None))?;
            (visitor, Some(token))
        }
    };
    let mut chats = Vec::new();
    for chat in service
        .store
        .open_chats_of_visitor(visitor.id)
        .await
        .map_err(|e| ChatError::from(e).frame(None))?
    {
        service.join(chat, conn);
        if let Ok(contact) = service.store.get_contact(chat).await {
            chats.push(service.chat_info(&contact).await);
        }
    }
    let welcome = ServerEvent::Welcome {
        visitor_id: Some(visitor.id.to_string()),
        visitor_token: new_token,
        user_id: None,
        chats,
        agent_chats: Vec::new(),
        tones: None,
        presence: None,
    };
    socket
        .send(Message::Text(welcome.to_json().to_string().into()))
        .await
        .map_err(|_| refuse())?;
    if let Some(token) = identity_token {
        let reply = identify(service, &mut visitor, &token)
            .await
            .unwrap_or_else(|e| e.frame(None));
        socket
            .send(Message::Text(reply.to_string().into()))
            .await
            .map_err(|_| refuse())?;
    }
    Ok(visitor)
}

/// Verifies an identity token and merges the visitor's anonymous history into the identity.
async fn identify(
    service: &ChatService,
    visitor: &mut Visitor,
    token: &str,
) -> Result<Arc<str>, ChatError> {
    let secret_text = service
        .store
        .integration_settings(&secret::random_token(32))
        .await?
        .identity_secret;
    let claims = crate::identity::verify(token, &secret_text, Utc::now().timestamp())
        .map_err(|e| ChatError::Invalid(e.to_string()))?;
    let identity = Identity {
        id: IdentityId::from_uuid(Uuid::now_v7()),
        external_id: claims.subject,
        email: claims.email,
        name: claims.name,
        phone: claims.phone,
        created_at: Utc::now(),
    };
    let outcome = service
        .store
        .identify_visitor(visitor.id, &identity)
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::Conflict(message) => ChatError::Invalid(message),
            other => other.into(),
        })?;
    visitor.identity = Some(outcome.identity.id);
    crate::crm::enqueue(
        &service.jobs,
        crate::crm::Event::IdentityMerged {
            visitor: visitor.id,
            identity: outcome.identity.id,
        },
    )
    .await;
    Ok(ServerEvent::Identified {
        external_id: outcome.identity.external_id,
        merged_tickets: outcome.merged_tickets,
        merged_chats: outcome.merged_chats,
    }
    .to_json())
}

/// What one connection knows: who it is, and which chats it has checked are theirs (a chat's
/// visitor never changes, so one check per chat and connection is enough).
struct Session {
    visitor: Visitor,
    owned: HashSet<ContactId>,
}

impl super::connection::Commands for Session {
    async fn handle(
        &mut self,
        chat: &ChatService,
        conn: &super::hub::Conn,
        text: &str,
    ) -> Vec<Arc<str>> {
        match parse_consumer(text) {
            Ok(command) => handle(chat, conn, self, command).await,
            Err(e) => vec![ServerEvent::error(e.code, e.message, e.client_id).to_json()],
        }
    }
}

impl Session {
    /// The visitor's own chat, or an error.
    async fn own_chat(
        &mut self,
        service: &ChatService,
        chat_id: &str,
    ) -> Result<ContactId, ChatError> {
        let chat = parse_chat_id(chat_id)?;
        if self.owned.contains(&chat) {
            return Ok(chat);
        }
        let session = service
            .store
            .get_chat(chat)
            .await
            .map_err(|_| ChatError::NotFound)?;
        if session.visitor != self.visitor.id {
            return Err(ChatError::Forbidden);
        }
        self.owned.insert(chat);
        Ok(chat)
    }
}

async fn handle(
    service: &ChatService,
    conn: &super::hub::Conn,
    session: &mut Session,
    command: ConsumerCommand,
) -> Vec<Arc<str>> {
    let result: Result<Vec<Arc<str>>, (ChatError, Option<String>)> = async {
        match command {
            ConsumerCommand::Hello { .. } => {
                Err((ChatError::Invalid("hello was said already".into()), None))
            }
            ConsumerCommand::Ping => Ok(vec![ServerEvent::Pong.to_json()]),
            ConsumerCommand::Start {
                client_id,
                queue_id,
                language,
                properties,
            } => {
                let chat = service
                    .start(
                        &session.visitor,
                        conn,
                        &queue_id,
                        language.as_deref(),
                        properties.as_ref(),
                    )
                    .await
                    .map_err(|e| (e, Some(client_id.clone())))?;
                let chat = match chat {
                    super::Started::Chat(chat) => chat,
                    super::Started::Closed {
                        queue,
                        message,
                        offers,
                    } => {
                        return Ok(vec![ServerEvent::QueueClosed {
                            client_id,
                            queue_id: queue.to_string(),
                            message,
                            offers: service.offers_frame(&offers).await,
                        }
                        .to_json()]);
                    }
                };
                let standing = match parse_chat_id(&chat.chat_id) {
                    Ok(id) => service.standing_frame(id).await,
                    Err(_) => Vec::new(),
                };
                let mut frames = vec![ServerEvent::ChatStarted { client_id, chat }.to_json()];
                frames.extend(standing);
                Ok(frames)
            }
            ConsumerCommand::Message {
                chat_id,
                client_id,
                text,
                attachment_id,
            } => {
                let reference = Some(client_id.clone());
                let chat = session
                    .own_chat(service, &chat_id)
                    .await
                    .map_err(|e| (e, reference.clone()))?;
                let ack = service
                    .post(
                        chat,
                        Sender::Consumer,
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
            ConsumerCommand::Typing { chat_id, active } => {
                let chat = session
                    .own_chat(service, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                if let Some(agent) = service
                    .contacts
                    .open_contact(chat)
                    .await
                    .and_then(|c| c.agent)
                {
                    let frame = ServerEvent::Typing {
                        chat_id,
                        from: "consumer".into(),
                        active,
                    }
                    .to_json();
                    service.hub.to_agent(agent, &frame, None);
                }
                Ok(Vec::new())
            }
            ConsumerCommand::Resume { chat_id, after_seq } => {
                let chat = session
                    .own_chat(service, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                service.join(chat, conn);
                let mut frames = Vec::new();
                let mut last = after_seq.max(0);
                loop {
                    let batch = service
                        .store
                        .messages(chat, last, RESUME_BATCH)
                        .await
                        .map_err(|e| (e.into(), None))?;
                    for message in &batch {
                        last = message.seq;
                        frames.push(
                            ServerEvent::Message {
                                chat_id: chat_id.clone(),
                                message: service.message_view(message).await,
                            }
                            .to_json(),
                        );
                    }
                    if batch.len() < RESUME_BATCH as usize {
                        break;
                    }
                }
                let status = service
                    .store
                    .get_contact(chat)
                    .await
                    .map(|c| c.status.as_str().to_owned())
                    .unwrap_or_default();
                frames.push(
                    ServerEvent::Resumed {
                        chat_id,
                        last_seq: last,
                        status,
                    }
                    .to_json(),
                );
                frames.extend(service.standing_frame(chat).await);
                Ok(frames)
            }
            ConsumerCommand::Identify { identity_token } => Ok(vec![identify(
                service,
                &mut session.visitor,
                &identity_token,
            )
            .await
            .map_err(|e| (e, None))?]),
            ConsumerCommand::Properties {
                chat_id,
                properties,
            } => {
                let chat = session
                    .own_chat(service, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                let flags = service
                    .set_properties(chat, properties)
                    .await
                    .map_err(|e| (e, None))?;
                Ok(vec![ServerEvent::Properties {
                    chat_id,
                    properties: flags,
                }
                .to_json()])
            }
            ConsumerCommand::LeaveMessage {
                client_id,
                queue_id,
                chat_id,
                email,
                name,
                text,
            } => {
                let delivery = service
                    .leave_message(
                        &session.visitor,
                        super::offers::LeaveMessage {
                            client_id: &client_id,
                            queue: &queue_id,
                            chat: chat_id.as_deref(),
                            email: &email,
                            name: name.as_deref(),
                            text: &text,
                        },
                    )
                    .await
                    .map_err(|e| (e, Some(client_id.clone())))?;
                Ok(vec![ServerEvent::MessageLeft {
                    client_id,
                    delivery,
                }
                .to_json()])
            }
            ConsumerCommand::End { chat_id } => {
                let chat = session
                    .own_chat(service, &chat_id)
                    .await
                    .map_err(|e| (e, None))?;
                service
                    .contacts
                    .end(chat, "ended_by_consumer".into())
                    .await
                    .map_err(|e| (e.into(), None))?;
                Ok(Vec::new())
            }
        }
    }
    .await;
    result.unwrap_or_else(|(error, reference)| vec![error.frame(reference)])
}
