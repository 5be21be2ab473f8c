//! SIP over UDP and TCP: datagrams and stream frames in, parsed messages to the engine;
//! messages out to a peer's address (UDP) or connection (TCP, opened when needed). A message
//! that cannot be parsed is answered here (400, 413, 416, 505) or dropped, never passed on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use switchboard_sip::transaction::Peer;
use switchboard_sip::{frame, parse, Message, Rejection, Response, Transport as Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

pub struct Inbound {
    pub message: Message,
    pub peer: Peer,
}

pub struct Transport {
    udp: Arc<UdpSocket>,
    streams: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>,
    inbound: mpsc::UnboundedSender<Inbound>,
}

impl Transport {
    /// Binds UDP and TCP on the same address (port 0 picks one free for both).
    pub async fn bind(
        addr: SocketAddr,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> std::io::Result<(Arc<Self>, TcpListener)> {
        let mut last_error = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(addr).await?;
            let local = udp.local_addr()?;
            match TcpListener::bind(local).await {
                Ok(tcp) => {
                    let transport = Arc::new(Transport {
                        udp: Arc::new(udp),
                        streams: Mutex::new(HashMap::new()),
                        inbound,
                    });
                    return Ok((transport, tcp));
                }
                Err(error) if addr.port() == 0 => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no port free for UDP and TCP")))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    pub fn send(self: &Arc<Self>, peer: Peer, bytes: Vec<u8>) {
        match peer.transport {
            Wire::Udp => {
                if let Err(error) = self.udp.try_send_to(&bytes, peer.addr) {
                    tracing::debug!(%error, peer = %peer.addr, "SIP datagram not sent");
                }
            }
            Wire::Tcp => {
                let existing = self
                    .streams
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&peer.addr).cloned());
                match existing {
                    Some(stream) if stream.send(bytes.clone()).is_ok() => {}
                    _ => {
                        let transport = self.clone();
                        tokio::spawn(async move {
                            match TcpStream::connect(peer.addr).await {
                                Ok(stream) => {
                                    let writer = transport.attach(stream, peer.addr);
                                    let _ = writer.send(bytes);
                                }
                                Err(error) => {
                                    tracing::info!(%error, peer = %peer.addr, "SIP TCP connection failed")
                                }
                            }
                        });
                    }
                }
            }
        }
    }

    /// Serves datagrams until the socket fails.
    pub async fn run_udp(self: Arc<Self>) {
        let mut buffer = vec![0u8; 65_536];
        loop {
            let Ok((length, from)) = self.udp.recv_from(&mut buffer).await else {
                continue;
            };
            let bytes = &buffer[..length];
            // Keep-alives (RFC 5626): CRLF pairs.
            if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
                continue;
            }
            let peer = Peer {
                addr: from,
                transport: Wire::Udp,
            };
            self.deliver(parse(bytes, Wire::Udp), peer);
        }
    }

    fn deliver(self: &Arc<Self>, parsed: Result<Message, Rejection>, peer: Peer) {
        match parsed {
            Ok(message) => {
                let _ = self.inbound.send(Inbound { message, peer });
            }
            Err(rejection) => {
                tracing::info!(peer = %peer.addr, status = rejection.status, detail = %rejection.detail, "malformed SIP message");
                if let Some(answer) = rejection.answer {
                    self.send(peer, Message::Response(*answer).to_bytes());
                }
            }
        }
    }

    /// Accepts TCP connections until the listener fails.
    pub async fn run_tcp(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                continue;
            };
            self.attach(stream, from);
        }
    }

    /// Starts reading and writing a connection; returns where to queue outgoing messages.
    fn attach(
        self: &Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
    ) -> mpsc::UnboundedSender<Vec<u8>> {
        let (mut reader, mut writer) = stream.into_split();
        let (sender, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
        if let Ok(mut streams) = self.streams.lock() {
            streams.insert(from, sender.clone());
        }
        tokio::spawn(async move {
            while let Some(bytes) = outgoing.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let transport = self.clone();
        tokio::spawn(async move {
            let peer = Peer {
                addr: from,
                transport: Wire::Tcp,
            };
            let mut buffer = Vec::with_capacity(8192);
            let mut chunk = vec![0u8; 16 * 1024];
            'read: while let Ok(read) = reader.read(&mut chunk).await {
                if read == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..read]);
                loop {
                    match frame(&buffer) {
                        Ok(Some(length)) => {
                            let message: Vec<u8> = buffer.drain(..length).collect();
                            if length > 2 {
                                transport.deliver(parse(&message, Wire::Tcp), peer);
                            }
                        }
                        Ok(None) => break,
                        Err(rejection) => {
                            // The stream cannot be resynchronised: answer if possible, then close.
                            tracing::info!(peer = %from, detail = %rejection.detail, "unframeable SIP stream; closing");
                            let answer = match parse(&buffer, Wire::Udp) {
                                Ok(Message::Request(request)) => Some(Response::to(
                                    &request,
                                    rejection.status,
                                    rejection.reason,
                                    Some("unframed"),
                                )),
                                Err(parsed) => parsed.answer.map(|a| *a),
                                Ok(Message::Response(_)) => None,
                            };
                            if let Some(mut answer) = answer {
                                answer.headers.push(
                                    "Warning",
                                    &format!("399 switchboard \"{}\"", rejection.detail),
                                );
                                transport.send(peer, Message::Response(answer).to_bytes());
                            }
                            break 'read;
                        }
                    }
                }
            }
            if let Ok(mut streams) = transport.streams.lock() {
                streams.remove(&from);
            }
        });
        sender
    }
}
