//! The loop both chat protocols run on a connection: hand the outbox to the socket, hand each
//! text frame to the side's commands, answer frames no side can take with an error frame, and
//! stop when either end goes away.
//!
//! A connection that is cut rather than closed (a laptop lid shut, a network gone) sends no
//! close frame and may not even end the TCP stream, so the server pings every
//! `PING_EVERY` and gives up on a connection it has heard nothing from (not even a pong,
//! which browsers send by themselves) for `SILENT_LIMIT`.

use super::hub::Conn;
use super::protocol::{ServerEvent, MAX_FRAME_BYTES};
use super::ChatService;
use axum::extract::ws::{Message, WebSocket};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often the server pings a connection.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection silent this long is gone.
pub const SILENT_LIMIT: Duration = Duration::from_secs(45);

/// What one side does with a text frame: the frames to answer with.
pub trait Commands {
    fn handle(
        &mut self,
        chat: &ChatService,
        conn: &Conn,
        text: &str,
    ) -> impl Future<Output = Vec<Arc<str>>> + Send;
}

async fn send(socket: &mut WebSocket, frame: &str) -> bool {
    socket.send(Message::Text(frame.into())).await.is_ok()
}

/// Runs the connection until the client closes it, the socket fails, or the hub drops it as
/// too slow (the client then reconnects and catches up by sequence number).
pub async fn pump(
    chat: &ChatService,
    conn: &Conn,
    socket: &mut WebSocket,
    outbox: &mut mpsc::Receiver<Arc<str>>,
    commands: &mut impl Commands,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    loop {
        let frame = tokio::select! {
            incoming = socket.recv() => incoming,
            outgoing = outbox.recv() => match outgoing {
                Some(frame) if send(socket, &frame).await => continue,
                _ => break,
            },
            _ = ping.tick() => {
                if heard.elapsed() >= SILENT_LIMIT
                    || socket.send(Message::Ping(Vec::new().into())).await.is_err()
                {
                    break;
                }
                continue;
            }
        };
        heard = Instant::now();
        let replies = match frame {
            Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                vec![ServerEvent::error(
                    "frame_too_large",
                    format!("frames are at most {MAX_FRAME_BYTES} bytes"),
                    None,
                )
                .to_json()]
            }
            Some(Ok(Message::Text(text))) => commands.handle(chat, conn, &text).await,
            Some(Ok(Message::Binary(_))) => {
                vec![ServerEvent::error("invalid_message", "frames are JSON text", None).to_json()]
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        for reply in replies {
            if !send(socket, &reply).await {
                chat.hub.leave(conn.id);
                return;
            }
        }
    }
    chat.hub.leave(conn.id);
}
