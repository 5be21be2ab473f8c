//! SIP over UDP and TCP: datagrams and stream frames in, parsed messages to the engine;
//! messages out to a peer's address (UDP) or connection (TCP, opened when needed). A message
//! that cannot be parsed is answered here (400, 413, 416, 505) or dropped, never passed on.
//!
//! TCP is bounded so that no peer can take the server's file descriptors: connections are
//! limited in total and per source address, a connection silent for the idle time is closed
//! (keep-alives and messages either way count as traffic), and when accepting fails (at the
//! descriptor limit) the accept loop backs off instead of spinning. The malformed-message log
//! line is rate-limited, with a count of what it left out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_sip::transaction::Peer;
use switchboard_sip::{frame, parse, Message, Rejection, Response, Transport as Wire};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

pub struct Inbound {
    pub message: Message,
    pub peer: Peer,
}

/// Bounds on SIP over TCP.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub per_source: usize,
    pub idle: Duration,
}

/// At most this many malformed-message lines per `LOG_WINDOW`.
const LOG_BURST: u64 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);

struct Connection {
    sender: mpsc::UnboundedSender<Vec<u8>>,
    /// Milliseconds since the transport started, at the last byte either way.
    last_active: Arc<AtomicU64>,
}

pub struct Transport {
    udp: Arc<UdpSocket>,
    streams: Mutex<HashMap<SocketAddr, Connection>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    limits: TcpLimits,
    started: Instant,
    /// Lines logged in the current window, lines left out, and when the window began.
    log: Mutex<(u64, u64, Instant)>,
}

impl Transport {
    /// Binds UDP and TCP on the same address (port 0 picks one free for both).
    pub async fn bind(
        addr: SocketAddr,
        inbound: mpsc::UnboundedSender<Inbound>,
        limits: TcpLimits,
    ) -> std::io::Result<(Arc<Self>, TcpListener)> {
        let mut last_error = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(addr).await?;
            let local = udp.local_addr()?;
            match TcpListener::bind(local).await {
                Ok(tcp) => {
                    let now = Instant::now();
                    let transport = Arc::new(Transport {
                        udp: Arc::new(udp),
                        streams: Mutex::new(HashMap::new()),
                        inbound,
                        limits,
                        started: now,
                        log: Mutex::new((0, 0, now)),
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

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn send(self: &Arc<Self>, peer: Peer, bytes: Vec<u8>) {
        match peer.transport {
            Wire::Udp => {
                if let Err(error) = self.udp.try_send_to(&bytes, peer.addr) {
                    tracing::debug!(%error, peer = %peer.addr, "SIP datagram not sent");
                }
            }
            Wire::Tcp => {
                let existing = self.streams.lock().ok().and_then(|s| {
                    s.get(&peer.addr)
                        .map(|c| (c.sender.clone(), c.last_active.clone()))
                });
                match existing {
                    Some((stream, active)) if stream.send(bytes.clone()).is_ok() => {
                        active.store(self.millis(), Ordering::Relaxed);
                    }
                    _ => {
                        let transport = self.clone();
                        tokio::spawn(async move {
                            match TcpStream::connect(peer.addr).await {
                                Ok(stream) => {
                                    if let Some(writer) = transport.attach(stream, peer.addr) {
                                        let _ = writer.send(bytes);
                                    }
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
                self.log_malformed(peer, &rejection);
                if let Some(answer) = rejection.answer {
                    self.send(peer, Message::Response(*answer).to_bytes());
                }
            }
        }
    }

    /// Logs a malformed message, at most `LOG_BURST` lines per `LOG_WINDOW`; the first line of
    /// the next window says how many were left out.
    fn log_malformed(&self, peer: Peer, rejection: &Rejection) {
        let Ok(mut log) = self.log.lock() else {
            return;
        };
        let (logged, dropped, since) = &mut *log;
        if since.elapsed() >= LOG_WINDOW {
            if *dropped > 0 {
                tracing::info!(
                    dropped = *dropped,
                    "malformed SIP messages not logged in the last window"
                );
            }
            (*logged, *dropped, *since) = (0, 0, Instant::now());
        }
        if *logged < LOG_BURST {
            *logged += 1;
            tracing::info!(peer = %peer.addr, status = rejection.status, detail = %rejection.detail, "malformed SIP message");
        } else {
            *dropped += 1;
        }
    }

    /// Accepts TCP connections until the listener fails for good. When accepting fails (out
    /// of descriptors), it waits, longer each time, instead of retrying at once.
    pub async fn run_tcp(self: Arc<Self>, listener: TcpListener) {
        let mut backoff = Duration::from_millis(10);
        loop {
            match listener.accept().await {
                Ok((stream, from)) => {
                    backoff = Duration::from_millis(10);
                    self.attach(stream, from);
                }
                Err(error) => {
                    tracing::warn!(%error, wait_ms = backoff.as_millis() as u64, "SIP TCP accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Whether another connection from `ip` fits the limits.
    fn admits(&self, streams: &HashMap<SocketAddr, Connection>, ip: IpAddr) -> bool {
        streams.len() < self.limits.max_connections
            && streams.keys().filter(|a| a.ip() == ip).count() < self.limits.per_source
    }

    /// Starts reading and writing a connection; returns where to queue outgoing messages, or
    /// `None` when the limits refuse it (it is closed at once).
    fn attach(
        self: &Arc<Self>,
        stream: TcpStream,
        from: SocketAddr,
    ) -> Option<mpsc::UnboundedSender<Vec<u8>>> {
        let (mut reader, mut writer) = stream.into_split();
        let (sender, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
        let last_active = Arc::new(AtomicU64::new(self.millis()));
        {
            let mut streams = self.streams.lock().ok()?;
            if !self.admits(&streams, from.ip()) {
                tracing::info!(peer = %from, "SIP TCP connection refused: too many connections");
                return None;
            }
            streams.insert(
                from,
                Connection {
                    sender: sender.clone(),
                    last_active: last_active.clone(),
                },
            );
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
            let idle = transport.limits.idle;
            let mut buffer = Vec::with_capacity(8192);
            let mut chunk = vec![0u8; 16 * 1024];
            'read: loop {
                // Silent for the idle time (since the last byte either way): closed.
                let quiet_for = transport
                    .millis()
                    .saturating_sub(last_active.load(Ordering::Relaxed));
                let left = idle.saturating_sub(Duration::from_millis(quiet_for));
                if left.is_zero() {
                    tracing::debug!(peer = %from, "idle SIP TCP connection closed");
                    break;
                }
                let read = match tokio::time::timeout(left, reader.read(&mut chunk)).await {
                    Err(_) => continue,
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(read)) => read,
                };
                last_active.store(transport.millis(), Ordering::Relaxed);
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
        Some(sender)
    }
}
