//! Watching a chat (MON-3): a read-only connection for a supervisor. It gets the chat as they
//! see it, every message so far, then each new message and each move of the chat as it
//! happens, until the chat ends or they close it.
//!
//! A watcher is invisible: it joins no room of the chat's own (the hub keeps watchers apart),
//! so the consumer and the agent get no frame, event or message because of it, and nothing is
//! stored. The watcher joins before the history is read, so nothing stored in between is
//! missed; a message in both is sent once (by its sequence number). A watcher too slow to keep
//! up is closed, like any chat connection, and its client opens it again.

use super::connection::{PING_EVERY, SILENT_LIMIT};
use super::hub::WatchFrame;
use super::protocol::{ServerEvent, MAX_FRAME_BYTES};
use super::{ChatError, ChatService};
use axum::extract::ws::{Message, WebSocket};
use std::sync::Arc;
use switchboard_core::ContactId;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Messages per `history` frame.
const HISTORY_BATCH: u32 = 500;

/// Runs a watching connection until the chat ends, the watcher closes it, or it falls behind.
pub async fn serve(service: Arc<ChatService>, chat: ContactId, mut socket: WebSocket) {
    let (watcher, mut outbox) = service.hub.watch(chat);
    match catch_up(&service, chat, &mut socket).await {
        Ok(Some(last_seq)) => pump(&mut socket, &mut outbox, last_seq).await,
        Ok(None) => {}
        Err(error) => {
            let _ = send(&mut socket, &error.frame(None)).await;
        }
    }
    service.hub.unwatch(chat, watcher);
    let _ = socket.send(Message::Close(None)).await;
}

/// Sends the chat and its history; the last sequence number sent, or `None` when the chat
/// has ended already (the watcher was told, and there is nothing to follow).
async fn catch_up(
    service: &ChatService,
    chat: ContactId,
    socket: &mut WebSocket,
) -> Result<Option<i64>, ChatError> {
    // Read after joining: an end before the join is seen here, one after it in the outbox.
    let contact = service.store.get_contact(chat).await?;
    let details = service.watched_chat(&contact).await?;
    if !send(socket, &ServerEvent::Watching { chat: details }.to_json()).await {
        return Ok(None);
    }
    let mut last_seq = 0;
    loop {
        let batch = service
            .store
            .messages(chat, last_seq, HISTORY_BATCH)
            .await?;
        let full = batch.len() == HISTORY_BATCH as usize;
        let mut messages = Vec::with_capacity(batch.len());
        for message in &batch {
            messages.push(service.message_view(message).await);
            last_seq = last_seq.max(message.seq);
        }
        let frame = ServerEvent::History {
            chat_id: chat.to_string(),
            messages,
            last_seq,
        }
        .to_json();
        if !send(socket, &frame).await {
            return Ok(None);
        }
        if !full {
            break;
        }
    }
    if !contact.status.is_open() {
        let ended = ServerEvent::ChatEnded {
            chat_id: chat.to_string(),
            reason: contact.end_reason.unwrap_or_else(|| "ended".into()),
        }
        .to_json();
        let _ = send(socket, &ended).await;
        return Ok(None);
    }
    Ok(Some(last_seq))
}

/// Hands the watcher's frames to the socket; answers `ping` and refuses anything else, since
/// a watcher says nothing to the chat.
async fn pump(socket: &mut WebSocket, outbox: &mut mpsc::Receiver<WatchFrame>, last_seq: i64) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            outgoing = outbox.recv() => match outgoing {
                // Already in the history.
                Some(WatchFrame { seq: Some(seq), .. }) if seq <= last_seq => {}
                Some(WatchFrame { frame, .. }) => {
                    if !send(socket, &frame).await {
                        return;
                    }
                }
                // The chat ended (its end was the last frame), or the watcher fell behind.
                None => return,
            },
            incoming = socket.recv() => {
                heard = Instant::now();
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) if text.len() <= MAX_FRAME_BYTES && is_ping(&text) => ServerEvent::Pong,
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => ServerEvent::error(
                        "read_only",
                        "a watcher only reads; the chat hears nothing from it",
                        None,
                    ),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                if !send(socket, &reply.to_json()).await {
                    return;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= SILENT_LIMIT
                    || socket.send(Message::Ping(Vec::new().into())).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

fn is_ping(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|frame| frame.get("type").and_then(|t| t.as_str()) == Some("ping"))
}

async fn send(socket: &mut WebSocket, frame: &str) -> bool {
    socket.send(Message::Text(frame.into())).await.is_ok()
}
