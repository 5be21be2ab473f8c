//! SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state), sans-IO: messages and time
//! go in, datagrams to send, timers and events for the transaction user come out.
//!
//! The layer absorbs retransmissions (resending the last response), retransmits over UDP
//! (timers A, E, G and the 2xx of an INVITE until its ACK), answers a new INVITE with 100 Trying,
//! acknowledges non-2xx final responses of client INVITEs itself, and times every transaction out
//! (B, F, H, the ACK wait), so no transaction can hang.

use crate::fields::{branch, cseq, sent_by, tag};
use crate::message::{Headers, Message, Method, Request, Response, Transport};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a message comes from or goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// RFC 3261's timer values.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// A transaction's identity: the top Via's branch and sent-by, and the method (ACK and CANCEL
/// name their INVITE's transaction with the method INVITE where it matters).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    /// The branch (RFC 3261 magic cookie `z9hG4bK…`), or for a request of an RFC 2543 peer a
    /// digest of what §17.2.3 matches such requests by.
    pub branch: String,
    /// The top Via's sent-by: two peers that happen to use one branch are two transactions.
    pub sent_by: String,
    pub method: Method,
}

const MAGIC_COOKIE: &str = "z9hG4bK";

impl Key {
    /// The transaction a request belongs to (an ACK belongs to its INVITE's).
    pub fn of_request(request: &Request) -> Option<Key> {
        let headers = &request.headers;
        let method = match &request.method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let sent_by = sent_by(headers)?;
        let branch = match branch(headers) {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => branch.to_owned(),
            // RFC 2543: the Request-URI, From tag, Call-ID, CSeq number and top Via together.
            _ => {
                let via = headers.all("Via").into_iter().next().unwrap_or_default();
                let from_tag = headers.get("From").and_then(tag).unwrap_or_default();
                let number = cseq(headers).map_or(0, |(n, _)| n);
                let call_id = headers.get("Call-ID").unwrap_or_default();
                let text = format!("{}|{from_tag}|{call_id}|{number}|{via}", request.uri);
                format!("rfc2543-{}", crate::digest::md5_hex(&text))
            }
        };
        Some(Key {
            branch,
            sent_by,
            method,
        })
    }

    /// The client transaction a response answers (its top Via is ours).
    fn of_response(headers: &Headers, method: &Method) -> Option<Key> {
        Some(Key {
            branch: branch(headers)?.to_owned(),
            sent_by: sent_by(headers)?,
            method: method.clone(),
        })
    }

    /// The INVITE transaction a CANCEL with this key cancels.
    pub fn invite(&self) -> Key {
        Key {
            method: Method::Invite,
            ..self.clone()
        }
    }
}

/// What the transaction user must act on.
#[derive(Debug)]
pub enum Event {
    /// A new request: a new server transaction (respond through `respond` with `key`), or an
    /// ACK to a 2xx, which has no transaction (`key` is then `None`).
    Request {
        request: Request,
        peer: Peer,
        key: Option<Key>,
    },
    /// A response to a request sent with `send_request` (2xx retransmissions of an INVITE too,
    /// so the ACK can be sent again).
    Response { response: Response, key: Key },
    /// A client transaction got no final response in time (treat as 408).
    Timeout { key: Key },
    /// A 2xx to an INVITE was never acknowledged (the dialog should be ended with BYE).
    AckTimeout { call_id: String },
}

enum ServerState {
    /// INVITE before a final response; non-INVITE before a final response.
    Proceeding,
    /// A final response was sent; retransmitted requests get it again.
    Completed,
    /// INVITE: the ACK to a non-2xx arrived; absorbing stragglers.
    Confirmed,
    /// INVITE: a 2xx was sent; retransmitted INVITEs are absorbed (RFC 6026).
    Accepted,
}

struct ServerTx {
    peer: Peer,
    state: ServerState,
    last: Option<Vec<u8>>,
    /// Retransmission interval for G (non-2xx over UDP).
    interval: Duration,
    generation: u64,
    /// Its entry in `Transactions::merges`, removed with it.
    merge: Option<MergeKey>,
}

/// What §8.2.2.2 compares to find merged requests: Call-ID, From tag, CSeq number and method.
type MergeKey = (String, String, u32, Method);

fn merge_key(request: &Request) -> Option<MergeKey> {
    let headers = &request.headers;
    if request.method != Method::Invite || headers.get("To").and_then(tag).is_some() {
        return None;
    }
    let (number, method) = cseq(headers)?;
    Some((
        headers.get("Call-ID")?.to_owned(),
        headers
            .get("From")
            .and_then(tag)
            .unwrap_or_default()
            .to_owned(),
        number,
        method,
    ))
}

enum ClientState {
    Calling,
    Proceeding,
    Completed,
    /// INVITE got a 2xx; later 2xx are passed up for re-ACKing until timer M.
    Accepted,
}

struct ClientTx {
    peer: Peer,
    request: Request,
    bytes: Vec<u8>,
    state: ClientState,
    interval: Duration,
    generation: u64,
    ack: Option<Vec<u8>>,
}

/// A 2xx to an INVITE, resent over UDP until its ACK (RFC 3261 §13.3.1.4).
struct PendingAck {
    peer: Peer,
    bytes: Vec<u8>,
    interval: Duration,
    generation: u64,
}

#[derive(Clone, Debug)]
enum TimerRef {
    /// Retransmit a final response (G).
    ServerRetransmit,
    /// End a server transaction; kind 1 is the overall limit.
    ServerEnd(u8),
    /// Retransmit a request (A, E).
    ClientRetransmit,
    /// End a client transaction; kind 0 is a timeout (B, F).
    ClientEnd(u8),
    AckRetransmit(String, u32),
    AckGiveUp(String, u32),
}

/// The state of every transaction of one SIP endpoint.
pub struct Transactions {
    timers_config: Timers,
    server: HashMap<Key, ServerTx>,
    /// Live server transactions of requests outside dialogs, for finding merged requests.
    merges: HashMap<MergeKey, Key>,
    client: HashMap<Key, ClientTx>,
    /// 2xx responses awaiting ACK, by (Call-ID, CSeq number).
    pending_acks: HashMap<(String, u32), PendingAck>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_payloads: HashMap<u64, (u64, TimerRef, Key)>,
    next_timer: u64,
    transmits: VecDeque<(Peer, Vec<u8>)>,
    events: VecDeque<Event>,
    next_generation: u64,
}

impl Transactions {
    pub fn new(timers: Timers) -> Self {
        Transactions {
            timers_config: timers,
            server: HashMap::new(),
            merges: HashMap::new(),
            client: HashMap::new(),
            pending_acks: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_payloads: HashMap::new(),
            next_timer: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// How many transactions (and unacknowledged 2xx) are alive.
    pub fn len(&self) -> usize {
        self.server.len() + self.client.len() + self.pending_acks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn schedule(&mut self, at: Instant, generation: u64, timer: TimerRef, key: Key) {
        self.next_timer += 1;
        self.timers.push(Reverse((at, self.next_timer)));
        self.timer_payloads
            .insert(self.next_timer, (generation, timer, key));
    }

    /// Takes a message from the network.
    pub fn receive(&mut self, now: Instant, message: Message, peer: Peer) {
        match message {
            Message::Request(request) => self.receive_request(now, request, peer),
            Message::Response(response) => self.receive_response(now, response),
        }
    }

    fn receive_request(&mut self, now: Instant, request: Request, peer: Peer) {
        let Some(key) = Key::of_request(&request) else {
            // No usable Via: served without retransmission matching.
            let key = None;
            self.events.push_back(Event::Request { request, peer, key });
            return;
        };
        if request.method == Method::Ack {
            let t4 = self.timers_config.t4;
            if let Some(tx) = self.server.get_mut(&key) {
                let mut confirmed = None;
                if matches!(tx.state, ServerState::Completed) {
                    tx.state = ServerState::Confirmed;
                    let wait = if peer.transport == Transport::Udp {
                        t4
                    } else {
                        Duration::ZERO
                    };
                    confirmed = Some((now + wait, tx.generation));
                }
                let accepted = matches!(tx.state, ServerState::Accepted);
                if let Some((at, generation)) = confirmed {
                    self.schedule(at, generation, TimerRef::ServerEnd(0), key);
                }
                if !accepted {
                    return;
                }
            }
            // An ACK to a 2xx: stop resending the 2xx and tell the transaction user.
            if let (Some(call_id), Some((number, _))) =
                (request.headers.get("Call-ID"), cseq(&request.headers))
            {
                self.pending_acks.remove(&(call_id.to_owned(), number));
            }
            self.events.push_back(Event::Request {
                request,
                peer,
                key: None,
            });
            return;
        }
        if let Some(tx) = self.server.get(&key) {
            // A retransmission: answer with the last response, if any.
            if let Some(last) = &tx.last {
                if !matches!(tx.state, ServerState::Accepted) {
                    self.transmits.push_back((tx.peer, last.clone()));
                }
            }
            return;
        }
        // RFC 3261 §8.2.2.2: an INVITE outside a dialog that has the From tag, Call-ID and
        // CSeq of a live transaction but is not that transaction (it came another way) is a
        // merged request: refused with 482, or a second call would answer it. Other requests
        // create nothing, so answering them twice is harmless and they are not checked.
        let merge = merge_key(&request);
        if let Some(merge) = &merge {
            if self
                .merges
                .get(merge)
                .is_some_and(|other| *other != key && self.server.contains_key(other))
            {
                let loop_detected = Response::to(&request, 482, "Loop Detected", Some("merged"));
                self.transmits
                    .push_back((peer, Message::Response(loop_detected).to_bytes()));
                return;
            }
            self.merges.insert(merge.clone(), key.clone());
        }
        let generation = self.generation();
        let mut tx = ServerTx {
            peer,
            state: ServerState::Proceeding,
            last: None,
            interval: self.timers_config.t1,
            generation,
            merge,
        };
        if request.method == Method::Invite {
            let trying = Message::Response(Response::to(&request, 100, "Trying", None)).to_bytes();
            self.transmits.push_back((peer, trying.clone()));
            tx.last = Some(trying);
        }
        // However its user behaves, a server transaction ends: a non-INVITE after 64*T1, an
        // INVITE after three minutes (Timer C's spirit).
        let limit = if request.method == Method::Invite {
            now + Duration::from_secs(180)
        } else {
            now + self.timers_config.t1 * 64
        };
        self.schedule(limit, generation, TimerRef::ServerEnd(1), key.clone());
        self.server.insert(key.clone(), tx);
        self.events.push_back(Event::Request {
            request,
            peer,
            key: Some(key),
        });
    }

    /// Sends a response in a server transaction. Returns false when the transaction is gone
    /// (it timed out, or the key is unknown).
    pub fn respond(&mut self, now: Instant, key: &Key, response: Response) -> bool {
        let status = response.status;
        let call = response.headers.get("Call-ID").map(str::to_owned);
        let number = cseq(&response.headers).map(|(n, _)| n);
        let bytes = Message::Response(response).to_bytes();
        let t1 = self.timers_config.t1;
        let generation = self.generation();
        let Some(tx) = self.server.get_mut(key) else {
            return false;
        };
        if !matches!(tx.state, ServerState::Proceeding) {
            return false;
        }
        let peer = tx.peer;
        self.transmits.push_back((peer, bytes.clone()));
        tx.last = Some(bytes.clone());
        if status < 200 {
            return true;
        }
        tx.generation = generation;
        let udp = peer.transport == Transport::Udp;
        let end_wait = if udp { t1 * 64 } else { Duration::ZERO };
        if key.method == Method::Invite && status < 300 {
            tx.state = ServerState::Accepted;
            self.schedule(
                now + t1 * 64,
                generation,
                TimerRef::ServerEnd(2),
                key.clone(),
            );
            if let (Some(call_id), Some(number)) = (call, number) {
                let timer_key = Key {
                    branch: call_id.clone(),
                    sent_by: String::new(),
                    method: Method::Invite,
                };
                self.pending_acks.insert(
                    (call_id.clone(), number),
                    PendingAck {
                        peer,
                        bytes,
                        interval: t1,
                        generation,
                    },
                );
                if udp {
                    self.schedule(
                        now + t1,
                        generation,
                        TimerRef::AckRetransmit(call_id.clone(), number),
                        timer_key.clone(),
                    );
                }
                self.schedule(
                    now + t1 * 64,
                    generation,
                    TimerRef::AckGiveUp(call_id, number),
                    timer_key,
                );
            }
        } else if key.method == Method::Invite {
            tx.state = ServerState::Completed;
            tx.interval = t1;
            if udp {
                self.schedule(
                    now + t1,
                    generation,
                    TimerRef::ServerRetransmit,
                    key.clone(),
                );
            }
            // Timer H: give up waiting for the ACK.
            self.schedule(
                now + t1 * 64,
                generation,
                TimerRef::ServerEnd(0),
                key.clone(),
            );
        } else {
            tx.state = ServerState::Completed;
            self.schedule(
                now + end_wait,
                generation,
                TimerRef::ServerEnd(0),
                key.clone(),
            );
        }
        true
    }

    /// Whether a server transaction is still waiting for its final response.
    pub fn is_pending(&self, key: &Key) -> bool {
        self.server
            .get(key)
            .is_some_and(|tx| matches!(tx.state, ServerState::Proceeding))
    }

    /// Sends a request in a new client transaction (its top Via must carry a fresh branch).
    /// ACK to a 2xx is sent with `send_stateless` instead.
    pub fn send_request(&mut self, now: Instant, request: Request, peer: Peer) -> Option<Key> {
        let key = Key::of_request(&request)?;
        let bytes = Message::Request(request.clone()).to_bytes();
        self.transmits.push_back((peer, bytes.clone()));
        let generation = self.generation();
        let t1 = self.timers_config.t1;
        if peer.transport == Transport::Udp {
            self.schedule(
                now + t1,
                generation,
                TimerRef::ClientRetransmit,
                key.clone(),
            );
        }
        // Timers B and F.
        self.schedule(
            now + t1 * 64,
            generation,
            TimerRef::ClientEnd(0),
            key.clone(),
        );
        self.client.insert(
            key.clone(),
            ClientTx {
                peer,
                request,
                bytes,
                state: ClientState::Calling,
                interval: t1,
                generation,
                ack: None,
            },
        );
        Some(key)
    }

    /// Sends bytes outside any transaction (the ACK to a 2xx).
    pub fn send_stateless(&mut self, message: Message, peer: Peer) {
        self.transmits.push_back((peer, message.to_bytes()));
    }

    fn receive_response(&mut self, now: Instant, response: Response) {
        let Some((_, method)) = cseq(&response.headers) else {
            return;
        };
        let Some(key) = Key::of_response(&response.headers, &method) else {
            return;
        };
        let t4 = self.timers_config.t4;
        let t1 = self.timers_config.t1;
        let generation = self.generation();
        let Some(tx) = self.client.get_mut(&key) else {
            return;
        };
        let udp = tx.peer.transport == Transport::Udp;
        let status = response.status;
        match tx.state {
            ClientState::Completed => {
                if let Some(ack) = &tx.ack {
                    self.transmits.push_back((tx.peer, ack.clone()));
                }
                return;
            }
            ClientState::Accepted => {
                if (200..300).contains(&status) {
                    self.events.push_back(Event::Response { response, key });
                }
                return;
            }
            ClientState::Calling | ClientState::Proceeding => {}
        }
        if status < 200 {
            tx.state = ClientState::Proceeding;
            if key.method == Method::Invite {
                // Timer A stops once the INVITE is answered at all.
                tx.generation = generation;
                self.schedule(
                    now + t1 * 64 * 6,
                    generation,
                    TimerRef::ClientEnd(0),
                    key.clone(),
                );
            }
            self.events.push_back(Event::Response { response, key });
            return;
        }
        tx.generation = generation;
        if key.method == Method::Invite && status < 300 {
            tx.state = ClientState::Accepted;
            // Timer M: keep matching 2xx retransmissions.
            self.schedule(
                now + t1 * 64,
                generation,
                TimerRef::ClientEnd(1),
                key.clone(),
            );
        } else if key.method == Method::Invite {
            let ack = Message::Request(ack_for(&tx.request, &response)).to_bytes();
            self.transmits.push_back((tx.peer, ack.clone()));
            tx.ack = Some(ack);
            tx.state = ClientState::Completed;
            let wait = if udp {
                Duration::from_secs(32)
            } else {
                Duration::ZERO
            };
            self.schedule(now + wait, generation, TimerRef::ClientEnd(1), key.clone());
        } else {
            tx.state = ClientState::Completed;
            let wait = if udp { t4 } else { Duration::ZERO };
            self.schedule(now + wait, generation, TimerRef::ClientEnd(1), key.clone());
        }
        self.events.push_back(Event::Response { response, key });
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, ..))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.timers.pop() else {
                break;
            };
            if let Some((generation, timer, key)) = self.timer_payloads.remove(&id) {
                self.fire(now, generation, timer, key);
            }
        }
    }

    fn fire(&mut self, now: Instant, generation: u64, timer: TimerRef, key: Key) {
        let t2 = self.timers_config.t2;
        match timer {
            TimerRef::ServerRetransmit => {
                let Some(tx) = self.server.get_mut(&key) else {
                    return;
                };
                if tx.generation != generation || !matches!(tx.state, ServerState::Completed) {
                    return;
                }
                if let Some(last) = &tx.last {
                    self.transmits.push_back((tx.peer, last.clone()));
                }
                tx.interval = (tx.interval * 2).min(t2);
                let at = now + tx.interval;
                self.schedule(at, generation, TimerRef::ServerRetransmit, key);
            }
            TimerRef::ServerEnd(kind) => {
                let Some(tx) = self.server.get(&key) else {
                    return;
                };
                // Kind 1 is the overall limit, which holds whatever the generation.
                if kind != 1 && tx.generation != generation {
                    return;
                }
                if let Some(tx) = self.server.remove(&key) {
                    if let Some(merge) = tx.merge {
                        if self.merges.get(&merge) == Some(&key) {
                            self.merges.remove(&merge);
                        }
                    }
                }
            }
            TimerRef::ClientRetransmit => {
                let Some(tx) = self.client.get_mut(&key) else {
                    return;
                };
                let resend = match tx.state {
                    ClientState::Calling => true,
                    ClientState::Proceeding => key.method != Method::Invite,
                    _ => false,
                };
                if tx.generation != generation || !resend {
                    return;
                }
                self.transmits.push_back((tx.peer, tx.bytes.clone()));
                tx.interval = if key.method == Method::Invite {
                    tx.interval * 2
                } else if matches!(tx.state, ClientState::Proceeding) {
                    t2
                } else {
                    (tx.interval * 2).min(t2)
                };
                let at = now + tx.interval;
                self.schedule(at, generation, TimerRef::ClientRetransmit, key);
            }
            TimerRef::ClientEnd(kind) => {
                let Some(tx) = self.client.get(&key) else {
                    return;
                };
                if tx.generation != generation {
                    return;
                }
                let timed_out =
                    kind == 0 && matches!(tx.state, ClientState::Calling | ClientState::Proceeding);
                self.client.remove(&key);
                if timed_out {
                    self.events.push_back(Event::Timeout { key });
                }
            }
            TimerRef::AckRetransmit(call_id, number) => {
                let id = (call_id, number);
                let Some(pending) = self.pending_acks.get_mut(&id) else {
                    return;
                };
                if pending.generation != generation {
                    return;
                }
                self.transmits
                    .push_back((pending.peer, pending.bytes.clone()));
                pending.interval = (pending.interval * 2).min(t2);
                let at = now + pending.interval;
                self.schedule(at, generation, TimerRef::AckRetransmit(id.0, id.1), key);
            }
            TimerRef::AckGiveUp(call_id, number) => {
                let id = (call_id, number);
                if self
                    .pending_acks
                    .get(&id)
                    .is_some_and(|p| p.generation == generation)
                {
                    self.pending_acks.remove(&id);
                    self.events.push_back(Event::AckTimeout { call_id: id.0 });
                }
            }
        }
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The request of a live client transaction (to build a CANCEL for it).
    pub fn client_request(&self, key: &Key) -> Option<(&Request, Peer)> {
        self.client.get(key).map(|tx| (&tx.request, tx.peer))
    }

    /// Whether a client INVITE has had a provisional response and no final one (so it may be
    /// cancelled).
    pub fn is_ringing(&self, key: &Key) -> bool {
        self.client
            .get(key)
            .is_some_and(|tx| matches!(tx.state, ClientState::Proceeding))
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same branch, the response's To.
fn ack_for(request: &Request, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = request.headers.all("Via").first() {
        headers.push("Via", via);
    }
    for route in request.headers.all("Route") {
        headers.push("Route", route);
    }
    for name in ["From", "Call-ID"] {
        if let Some(value) = request.headers.get(name) {
            headers.push(name, value);
        }
    }
    if let Some(to) = response.headers.get("To") {
        headers.push("To", to);
    }
    let number = cseq(&request.headers).map_or(1, |(n, _)| n);
    headers.push("CSeq", &format!("{number} ACK"));
    headers.push("Max-Forwards", "70");
    Request {
        method: Method::Ack,
        uri: request.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// The CANCEL for a client INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, top Via
/// and CSeq number.
pub fn cancel_for(request: &Request) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = request.headers.all("Via").first() {
        headers.push("Via", via);
    }
    for route in request.headers.all("Route") {
        headers.push("Route", route);
    }
    for name in ["From", "To", "Call-ID"] {
        if let Some(value) = request.headers.get(name) {
            headers.push(name, value);
        }
    }
    let number = cseq(&request.headers).map_or(1, |(n, _)| n);
    headers.push("CSeq", &format!("{number} CANCEL"));
    headers.push("Max-Forwards", "70");
    Request {
        method: Method::Cancel,
        uri: request.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// Whether a response's To tag matches (for matching responses to dialogs).
pub fn to_tag(response: &Response) -> Option<&str> {
    response.headers.get("To").and_then(tag)
}
