//! A live event stream client over a real WebSocket.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub struct EventStream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl EventStream {
    /// Opens any WebSocket on the server, with a cookie or without.
    pub async fn connect(
        server: &crate::Server,
        path: &str,
        cookie: Option<String>,
    ) -> EventStream {
        let url = format!("ws://{}{path}", server.address);
        let mut request = url.into_client_request().unwrap();
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("socket opens");
        EventStream { socket }
    }

    /// Opens a WebSocket as `connect` does, or returns the status and body of the refused
    /// handshake.
    pub async fn try_connect(
        server: &crate::Server,
        path: &str,
        cookie: Option<String>,
    ) -> Result<EventStream, (reqwest::StatusCode, String)> {
        let url = format!("ws://{}{path}", server.address);
        let mut request = url.into_client_request().unwrap();
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(EventStream { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = reqwest::StatusCode::from_u16(response.status().as_u16()).unwrap();
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err((status, body))
            }
            Err(other) => panic!("the handshake failed: {other}"),
        }
    }

    /// Reads what is left until the server closes the stream (a close frame or the end of
    /// the stream), and returns it.
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.socket.next())
                    .await
                    .expect("the stream closes");
            match frame {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return before,
                Some(Ok(Message::Text(text))) => {
                    before.push(serde_json::from_str(&text).expect("events are JSON"))
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("frame sent");
    }

    /// Sends raw text (for malformed frames).
    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("frame sent");
    }

    /// Opens the stream as the user of `session` and reads the `hello`.
    pub async fn open(server: &crate::Server, session: &crate::Session) -> (EventStream, Value) {
        let url = format!("ws://{}/api/v1/events", server.address);
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", session.cookie_pair().parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("event stream opens");
        let mut stream = EventStream { socket };
        let hello = stream.next().await;
        assert_eq!(hello["type"], "hello");
        (stream, hello)
    }

    /// The next event. The timeout only keeps a broken test from hanging; it asserts nothing.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.socket.next())
                    .await
                    .expect("an event arrives")
                    .expect("the stream is open")
                    .expect("a frame");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("events are JSON")
                }
                Message::Close(_) => panic!("stream closed"),
                _ => continue,
            }
        }
    }

    /// Reads events until one matches, returning it and everything read before it.
    pub async fn until(&mut self, matches: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let event = self.next().await;
            if matches(&event) {
                return (event, before);
            }
            before.push(event);
        }
    }

    /// Cuts the connection as a lost network would: the TCP stream is dropped with no close
    /// frame.
    pub fn cut(self) {
        drop(self.socket);
    }

    pub async fn close(mut self) {
        self.socket.send(Message::Close(None)).await.ok();
    }
}
