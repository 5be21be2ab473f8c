//! An in-memory center for the call engine, in virtual time: the engine, a network that
//! delivers what it sends to the test's SIP peers, a media plane, a prompt renderer that answers
//! at once, and a contact service modelled on the real one with the core's routing engine.
//! Nothing sleeps: `advance` moves the clock from one engine timeout to the next.

pub mod media;
pub mod peers;
pub mod routing;

use chrono::{DateTime, TimeZone, Utc};
use media::Media;
use peers::Peer as SipPeer;
use routing::Routing;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_call::{
    BrowserOp, CallControl, CallError, CallMetric, Directory, Engine, EngineConfig, Input, Output,
    ReplyToken, Sound, REALM,
};
use switchboard_core::voice::{
    CallRecord, DialRule, Did, HeaderFlag, Network, PhoneNumber, Trunk, TrunkDirection,
};
use switchboard_core::{CallId, Channel, Name, QueueId, QueueKind, QueueNode, TrunkId, UserId};
use switchboard_sip::transaction::Peer;
use switchboard_sip::{digest, Message, Transport};

pub const ENGINE: &str = "192.0.2.1:5060";
pub const CARRIER: &str = "198.51.100.10:5060";
pub const CARRIER_OUT: &str = "198.51.100.20:5060";
pub const NUMBER: &str = "15550100";
pub const PASSWORD: &str = "phone-secret";
/// An inbound trunk that proves itself with credentials instead of its address.
pub const PBX: &str = "pbx";
pub const PBX_PASSWORD: &str = "pbx-secret";

pub fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test addresses are valid")
}

pub fn udp(text: &str) -> Peer {
    Peer {
        addr: addr(text),
        transport: Transport::Udp,
    }
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

pub struct Queues {
    pub sales: QueueId,
    pub support: QueueId,
}

pub struct Agents {
    pub agent1: UserId,
    pub agent2: UserId,
}

/// Everything a story drives.
pub struct Center {
    pub engine: Engine,
    pub now: Instant,
    pub start: Instant,
    pub wall: DateTime<Utc>,
    /// What the engine sent, by destination address, in order.
    pub inbox: HashMap<SocketAddr, VecDeque<Message>>,
    pub media: Media,
    pub routing: Routing,
    /// Every record the engine asked to store, in order.
    pub records: Vec<CallRecord>,
    pub metrics: Vec<CallMetric>,
    /// Every render request: the leg and what to play.
    pub renders: Vec<(switchboard_call::LegId, Vec<Sound>, Option<Sound>)>,
    pub replies: HashMap<u64, Result<CallRecord, CallError>>,
    /// What browser sessions were told, in order.
    pub browser: Vec<BrowserOp>,
    /// Numbers agents dialled from their phones, waiting for the shell's decision.
    pub phone_dials: Vec<(CallId, UserId, String)>,
    /// Voicemails the engine said were left, in order.
    pub voicemails: Vec<switchboard_call::VoicemailLeft>,
    /// Callbacks waiting callers asked for: (contact, queue, number).
    pub callbacks_asked: Vec<(switchboard_core::ContactId, QueueId, String)>,
    next_token: u64,
    /// The voice configuration last handed to the engine.
    pub directory: Directory,
    pub queues: Queues,
    pub agents: Agents,
}

impl Center {
    pub fn new() -> Center {
        let start = Instant::now();
        let wall = Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("a valid date");
        let config = EngineConfig {
            ring: Duration::from_secs(2),
            ..EngineConfig::new(addr(ENGINE), addr(ENGINE).ip(), "nonce-secret".into(), 7)
        };
        let engine = Engine::new(start, wall, config);
        let queues = Queues {
            sales: QueueId::from_uuid(uuid(1)),
            support: QueueId::from_uuid(uuid(2)),
        };
        let agents = Agents {
            agent1: UserId::from_uuid(uuid(11)),
            agent2: UserId::from_uuid(uuid(12)),
        };
        let node = |id, name: &str, position| QueueNode {
            id,
            channel: Channel::Voice,
            parent: None,
            name: Name::parse("name", name).expect("a valid name"),
            kind: QueueKind::Leaf,
            position,
            priority: 0,
            languages: Vec::new(),
        };
        let mut directory = Directory {
            trunks: vec![
                Trunk {
                    id: TrunkId::from_uuid(uuid(21)),
                    name: Name::parse("name", "carrier").expect("a valid name"),
                    direction: TrunkDirection::Inbound,
                    addresses: vec![Network::parse("198.51.100.0/24").expect("a valid network")],
                    username: None,
                    secret: None,
                    host: None,
                    port: None,
                    tcp: false,
                    caller_id: None,
                    dial_rules: Vec::new(),
                    max_calls: None,
                    max_calls_per_second: None,
                    header_flags: vec![
                        HeaderFlag::new("X-Verified-Customer", "reserved_verified_customer")
                            .expect("a valid flag"),
                        HeaderFlag::new("X-Fraud-Risk", "reserved_bad_actor")
                            .expect("a valid flag"),
                    ],
                    emergency: false,
                },
                Trunk {
                    id: TrunkId::from_uuid(uuid(23)),
                    name: Name::parse("name", "office pbx").expect("a valid name"),
                    direction: TrunkDirection::Inbound,
                    addresses: Vec::new(),
                    username: Some(PBX.into()),
                    secret: Some(digest::ha1(PBX, REALM, PBX_PASSWORD)),
                    host: None,
                    port: None,
                    tcp: false,
                    caller_id: None,
                    dial_rules: Vec::new(),
                    max_calls: None,
                    max_calls_per_second: None,
                    header_flags: vec![],
                    emergency: false,
                },
                Trunk {
                    id: TrunkId::from_uuid(uuid(22)),
                    name: Name::parse("name", "carrier out").expect("a valid name"),
                    direction: TrunkDirection::Outbound,
                    addresses: Vec::new(),
                    username: Some("center".into()),
                    secret: Some("trunk-password".into()),
                    host: Some("carrier.example".into()),
                    port: Some(5060),
                    tcp: false,
                    caller_id: Some(PhoneNumber::parse("caller_id", "15550199").expect("valid")),
                    dial_rules: vec![DialRule::new("0", 1, "+44").expect("a valid rule")],
                    max_calls: None,
                    max_calls_per_second: None,
                    header_flags: vec![],
                    emergency: false,
                },
            ],
            dids: vec![Did {
                number: PhoneNumber::parse("number", NUMBER).expect("a valid number"),
                entry: None,
                language: None,
            }],
            nodes: vec![
                node(queues.sales, "Sales", 1),
                node(queues.support, "Support", 2),
            ],
            ..Directory::default()
        };
        directory
            .resolved
            .insert(TrunkId::from_uuid(uuid(22)), addr(CARRIER_OUT));
        for (user, name) in [(agents.agent1, "agent1"), (agents.agent2, "agent2")] {
            directory
                .phones
                .insert(name.into(), (user, digest::ha1(name, REALM, PASSWORD)));
        }
        let mut routing = Routing::new(
            &[queues.sales, queues.support],
            &[
                (agents.agent1, vec![queues.sales]),
                (agents.agent2, vec![queues.sales, queues.support]),
            ],
            wall,
        );
        routing.available(agents.agent1, wall);
        routing.available(agents.agent2, wall);
        let mut center = Center {
            engine,
            now: start,
            start,
            wall,
            inbox: HashMap::new(),
            media: Media::default(),
            routing,
            records: Vec::new(),
            metrics: Vec::new(),
            renders: Vec::new(),
            replies: HashMap::new(),
            browser: Vec::new(),
            phone_dials: Vec::new(),
            voicemails: Vec::new(),
            callbacks_asked: Vec::new(),
            next_token: 0,
            directory: directory.clone(),
            queues,
            agents,
        };
        center.input(Input::Directory(directory));
        center
    }

    /// Changes the voice configuration, as an admin's edit does.
    pub fn configure(&mut self, change: impl FnOnce(&mut Directory)) {
        change(&mut self.directory);
        let directory = self.directory.clone();
        self.input(Input::Directory(directory));
    }

    pub fn wall_now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.now - self.start).unwrap_or_default()
    }

    pub fn input(&mut self, input: Input) {
        self.engine.handle_input(self.now, input);
        self.settle();
    }

    /// A SIP message from `from` reaches the engine.
    pub fn deliver(&mut self, from: Peer, message: Message) {
        self.input(Input::Sip {
            message,
            peer: from,
        });
    }

    /// Moves virtual time forward, waking the engine and the media rooms at each of their
    /// timeouts on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            let next = [self.engine.poll_timeout(), self.media.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|n| *n <= until) else {
                break;
            };
            self.now = self.now.max(next);
            self.engine.handle_timeout(self.now);
            for event in self.media.handle_timeout(self.now) {
                self.engine.handle_input(self.now, Input::Media(event));
            }
            self.settle();
        }
        self.now = until;
        self.settle();
    }

    /// An RTP packet from `from` reaches our media port `port`.
    pub fn rtp(&mut self, port: u16, packet: Vec<u8>) {
        for event in self.media.receive(self.now, port, packet) {
            self.engine.handle_input(self.now, Input::Media(event));
        }
        self.settle();
    }

    /// Sends `seconds` of a tone from each of `streams` (to our port), 20 ms at a time, letting
    /// time pass between packets.
    pub fn talk(&mut self, streams: &mut [(u16, &mut media::Tone)], duration: Duration) {
        let packets = duration.as_millis() / 20;
        for _ in 0..packets {
            for (port, tone) in streams.iter_mut() {
                let packet = tone.next_packet();
                self.rtp(*port, packet);
            }
            self.advance(Duration::from_millis(20));
        }
    }

    /// Carries out the engine's outputs (and the inputs they cause) until it has nothing left.
    pub fn settle(&mut self) {
        if !self.media.slow {
            for event in std::mem::take(&mut self.media.held) {
                self.engine.handle_input(self.now, Input::Media(event));
            }
        }
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::CallbackAsked {
                    contact,
                    queue,
                    number,
                    ..
                } => self.callbacks_asked.push((contact, queue, number)),
                Output::Transmit { peer, bytes } => {
                    let message = switchboard_sip::parse(&bytes, peer.transport)
                        .expect("the engine sends only well-formed SIP");
                    self.inbox.entry(peer.addr).or_default().push_back(message);
                }
                Output::Media(op) => {
                    for event in self.media.apply(self.now, op) {
                        self.engine.handle_input(self.now, Input::Media(event));
                    }
                }
                Output::Render {
                    leg,
                    token,
                    sounds,
                    then,
                    repeat,
                } => {
                    // Every sound renders as a second of 300 Hz, so a story can tell what a
                    // caller hears from the people they talk to: looped when it loops, else
                    // once per sound (and then the room reports the playback done).
                    let tone: Arc<[i16]> = (0..8000)
                        .map(|n| {
                            ((n as f32 / 8000.0 * 300.0 * std::f32::consts::TAU).sin() * 6000.0)
                                as i16
                        })
                        .collect();
                    let (parts, then_loop) = if then.is_none() && !repeat {
                        (vec![tone; sounds.len()], None)
                    } else {
                        (Vec::new(), Some(tone))
                    };
                    self.renders.push((leg, sounds, then));
                    self.engine.handle_input(
                        self.now,
                        Input::Rendered {
                            leg,
                            token,
                            parts,
                            then_loop,
                        },
                    );
                }
                Output::Routing(request) => {
                    let wall = self.wall_now();
                    for input in self.routing.handle(wall, request) {
                        self.engine.handle_input(self.now, input);
                    }
                }
                Output::Call(record) => self.records.push(record),
                Output::PhoneDial {
                    call,
                    agent,
                    number,
                } => self.phone_dials.push((call, agent, number)),
                Output::Browser(op) => self.browser.push(op),
                Output::Metric(metric) => self.metrics.push(metric),
                Output::Reply { token, result } => {
                    self.replies.insert(token.0, result);
                }
                Output::Voicemail(left) => self.voicemails.push(left),
            }
        }
    }

    /// The next message the engine sent to `to`, if any.
    pub fn take(&mut self, to: &str) -> Option<Message> {
        self.inbox.get_mut(&addr(to))?.pop_front()
    }

    /// An API command; returns its answer when it came at once.
    pub fn command(
        &mut self,
        call: CallId,
        control: CallControl,
    ) -> Option<Result<CallRecord, CallError>> {
        self.next_token += 1;
        let token = self.next_token;
        self.input(Input::Command {
            token: ReplyToken(token),
            call,
            control,
        });
        self.replies.remove(&token)
    }

    /// An agent places a call; returns the engine's answer.
    pub fn dial(
        &mut self,
        agent: UserId,
        number: &str,
        from: Option<switchboard_call::SessionId>,
    ) -> Result<CallRecord, CallError> {
        self.dial_with(agent, number, from, None)
    }

    /// An agent places a call, an emergency call with `emergency`; returns the engine's answer.
    pub fn dial_with(
        &mut self,
        agent: UserId,
        number: &str,
        from: Option<switchboard_call::SessionId>,
        emergency: Option<switchboard_call::EmergencyDial>,
    ) -> Result<CallRecord, CallError> {
        self.next_token += 1;
        let token = self.next_token;
        self.input(Input::Dial {
            token: ReplyToken(token),
            agent,
            number: number.into(),
            from,
            emergency: emergency.map(Box::new),
        });
        self.replies
            .remove(&token)
            .expect("a dial is answered at once")
    }

    /// A scheduled callback's contact reached `agent`: returns the engine's answer.
    pub fn callback_dial(
        &mut self,
        contact: switchboard_core::ContactId,
        agent: UserId,
        number: &str,
        queue: QueueId,
    ) -> Result<CallRecord, CallError> {
        self.next_token += 1;
        let token = self.next_token;
        self.input(Input::CallbackDial {
            token: ReplyToken(token),
            contact,
            agent,
            number: number.into(),
            queue,
        });
        self.replies
            .remove(&token)
            .expect("a callback dial is answered at once")
    }

    /// The newest stored record of a call.
    pub fn record(&self, call: CallId) -> Option<&CallRecord> {
        self.records.iter().rev().find(|r| r.id == call)
    }

    /// The newest stored record of the only call so far.
    pub fn the_call(&self) -> &CallRecord {
        self.records.last().expect("a call was recorded")
    }

    /// Registers an agent's phone with digest authentication, from `phone`.
    pub fn register(&mut self, username: &str, phone: &SipPeer) {
        let first = phone.register(username, None);
        self.deliver(phone.peer, first);
        let challenge = phone.expect_response(self, 401);
        let header = challenge
            .headers
            .get("WWW-Authenticate")
            .expect("a challenge")
            .to_owned();
        let (realm, nonce) = digest::parse_challenge(&header).expect("a digest challenge");
        let answer = digest::answer(
            username,
            PASSWORD,
            &realm,
            &nonce,
            "REGISTER",
            &format!("sip:{}", ENGINE),
            "0a4f113b",
        );
        let second = phone.register(username, Some(&answer));
        self.deliver(phone.peer, second);
        phone.expect_response(self, 200);
    }
}
