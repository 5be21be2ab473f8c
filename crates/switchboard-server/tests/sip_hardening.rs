//! The SIP hardening rules end to end (issue items: dialog and transaction matching, parser
//! strictness, digest replay, brute force, connection limits, per-trunk limits), each over UDP
//! and over TCP from raw sockets. The rules themselves are tested in the sans-IO crates; these
//! cases show the server as a whole applies them on both transports.

use crate::{Backend, Server, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// One peer's connection to the server.
enum Wire {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

/// A connection, the answers that came for requests nobody waits on yet, and what was sent
/// (for failure messages).
pub(crate) struct Link {
    wire: Wire,
    early: Vec<String>,
    sent: Vec<(String, String)>,
}

impl Link {
    pub(crate) async fn open(transport: Transport, from: &str, sip: SocketAddr) -> Link {
        let ip: IpAddr = from.parse().unwrap();
        let wire = match transport {
            Transport::Udp => Wire::Udp(UdpSocket::bind((ip, 0)).await.unwrap(), sip),
            Transport::Tcp => {
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(ip, 0)).unwrap();
                Wire::Tcp(socket.connect(sip).await.unwrap(), Vec::new())
            }
        };
        Link {
            wire,
            early: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn local(&self) -> SocketAddr {
        match &self.wire {
            Wire::Udp(socket, _) => socket.local_addr().unwrap(),
            Wire::Tcp(stream, _) => stream.local_addr().unwrap(),
        }
    }

    fn token(&self) -> &'static str {
        match self.wire {
            Wire::Udp(..) => "UDP",
            Wire::Tcp(..) => "TCP",
        }
    }

    pub(crate) async fn send(&mut self, message: &Message) {
        let bytes = message.render(self.token(), self.local());
        self.sent.push((
            message.call_id.clone(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        match &mut self.wire {
            Wire::Udp(socket, sip) => {
                socket.send_to(&bytes, *sip).await.unwrap();
            }
            Wire::Tcp(stream, _) => stream.write_all(&bytes).await.unwrap(),
        }
    }

    /// The next message the server sends, if one comes within `within`; `None` also when a
    /// stream was closed.
    async fn next(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.receive())
            .await
            .ok()
            .flatten()
    }

    async fn receive(&mut self) -> Option<String> {
        match &mut self.wire {
            Wire::Udp(socket, _) => {
                let mut buffer = vec![0u8; 65536];
                let n = socket.recv(&mut buffer).await.ok()?;
                Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
            }
            Wire::Tcp(stream, pending) => loop {
                if let Some(message) = frame(pending) {
                    return Some(message);
                }
                let mut buffer = [0u8; 8192];
                let n = stream.read(&mut buffer).await.ok()?;
                if n == 0 {
                    return None;
                }
                pending.extend_from_slice(&buffer[..n]);
            },
        }
    }

    /// The next final response for `call_id` (provisional ones and other calls' skipped).
    pub(crate) async fn answer(&mut self, call_id: &str) -> String {
        match self.answer_within(call_id, Duration::from_secs(5)).await {
            Some(answer) => answer,
            None => {
                let sent: Vec<&String> = self
                    .sent
                    .iter()
                    .filter(|(id, _)| id == call_id)
                    .map(|(_, m)| m)
                    .collect();
                panic!("no answer for {call_id}; sent: {sent:#?}")
            }
        }
    }

    /// The next final response for `call_id`; final responses for other requests are kept
    /// for whoever asks for them later.
    async fn answer_within(&mut self, call_id: &str, within: Duration) -> Option<String> {
        let is_for = |message: &String| header(message, "Call-ID").as_deref() == Some(call_id);
        if let Some(at) = self.early.iter().position(is_for) {
            return Some(self.early.remove(at));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left).await?;
            if message.starts_with("SIP/2.0 ") && !message.starts_with("SIP/2.0 1") {
                if is_for(&message) {
                    return Some(message);
                }
                self.early.push(message);
            }
        }
    }
}

/// One whole message off the front of a stream's bytes, framed by Content-Length.
fn frame(pending: &mut Vec<u8>) -> Option<String> {
    let text = String::from_utf8_lossy(pending).into_owned();
    let end = text.find("\r\n\r\n")? + 4;
    let length: usize = header(&text[..end], "Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if pending.len() < end + length {
        return None;
    }
    let message = String::from_utf8_lossy(&pending[..end + length]).into_owned();
    pending.drain(..end + length);
    Some(message)
}

pub(crate) fn header(message: &str, name: &str) -> Option<String> {
    message.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

pub(crate) fn status(message: &str) -> u16 {
    message
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn to_tag(message: &str) -> String {
    let to = header(message, "To").expect("a To header");
    to.split(";tag=").nth(1).expect("a To tag").to_owned()
}

fn fresh() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

const OFFER: &str = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// A request, rendered for the link that sends it (its transport and sent-by in the Via).
#[derive(Clone)]
pub(crate) struct Message {
    method: String,
    uri: String,
    /// `None`: an RFC 2543 Via without a branch.
    branch: Option<String>,
    from: String,
    from_tag: Option<String>,
    to: String,
    to_tag: Option<String>,
    pub(crate) call_id: String,
    cseq: u32,
    pub(crate) extra: String,
    body: String,
    /// A Via written out whole (with `{sent_by}` and `{transport}` filled in), for malformed
    /// cases.
    via: Option<String>,
}

impl Message {
    fn new(method: &str, uri: &str) -> Message {
        Message {
            method: method.into(),
            uri: uri.into(),
            branch: Some(format!("z9hG4bK{}", fresh())),
            from: "<sip:peer@127.0.0.1>".into(),
            from_tag: Some(fresh()[..8].to_owned()),
            to: format!("<{uri}>"),
            to_tag: None,
            call_id: format!("{}@peer", fresh()),
            cseq: 1,
            extra: String::new(),
            body: String::new(),
            via: None,
        }
    }

    pub(crate) fn invite(uri: &str) -> Message {
        let mut message = Message::new("INVITE", uri);
        message.extra = "Content-Type: application/sdp\r\nContact: <sip:peer@127.0.0.1>\r\n".into();
        message.body = OFFER.into();
        message
    }

    /// A request in the dialog an answer to this INVITE set up.
    pub(crate) fn in_dialog(&self, method: &str, answer: &str, cseq: u32) -> Message {
        Message {
            method: method.into(),
            branch: Some(format!("z9hG4bK{}", fresh())),
            to_tag: Some(to_tag(answer)),
            cseq,
            extra: String::new(),
            body: String::new(),
            ..self.clone()
        }
    }

    pub(crate) fn ack(&self, answer: &str) -> Message {
        let mut ack = self.in_dialog("ACK", answer, self.cseq);
        // An ACK for a 2xx is its own transaction, but a branchless INVITE's ACK stays
        // branchless.
        if self.branch.is_none() {
            ack.branch = None;
        }
        ack
    }

    fn render(&self, transport: &str, sent_by: SocketAddr) -> Vec<u8> {
        let via = match (&self.via, &self.branch) {
            (Some(via), _) => via
                .replace("{transport}", transport)
                .replace("{sent_by}", &sent_by.to_string()),
            (None, Some(branch)) => format!("SIP/2.0/{transport} {sent_by};branch={branch}"),
            (None, None) => format!("SIP/2.0/{transport} {sent_by}"),
        };
        let from_tag = self
            .from_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {from}{from_tag}\r\n\
             To: {to}{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}\
             Content-Length: {length}\r\n\r\n{body}",
            method = self.method,
            uri = self.uri,
            from = self.from,
            to = self.to,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra,
            length = self.body.len(),
            body = self.body,
        )
        .into_bytes()
    }
}

/// Ends a call the IVR answered: ACK, then BYE, which must be answered 200.
pub(crate) async fn hang_up(link: &mut Link, invite: &Message, answer: &str, what: &str) {
    link.send(&invite.ack(answer)).await;
    let bye = invite.in_dialog("BYE", answer, invite.cseq + 1);
    let bye = Message {
        branch: invite
            .branch
            .as_ref()
            .map(|_| format!("z9hG4bK{}", fresh())),
        ..bye
    };
    link.send(&bye).await;
    let answer = link.answer(&bye.call_id).await;
    assert_eq!(status(&answer), 200, "{what}: BYE answered {answer}");
}

/// Items 1 and 2: dialog and transaction matching, and the parser's strictness.
#[tokio::test]
async fn dialogs_transactions_and_parsing_over_udp_and_tcp() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let ivr = format!("sip:15550100@{sip}");
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut link = Link::open(transport, "127.0.0.1", sip).await;
        let what = |case: &str| format!("{transport:?}, {case}");

        // An RFC 2543 peer: no From tag. Its call is answered and its BYE ends it.
        let invite = Message {
            from_tag: None,
            ..Message::invite(&ivr)
        };
        link.send(&invite).await;
        let answer = link.answer(&invite.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("no From tag"));
        hang_up(&mut link, &invite, &answer, &what("no From tag")).await;

        // A branchless INVITE sent twice is one call: the same answer, the same dialog.
        let invite = Message {
            branch: None,
            ..Message::invite(&ivr)
        };
        link.send(&invite).await;
        let first = link.answer(&invite.call_id).await;
        assert_eq!(status(&first), 200, "{}", what("branchless"));
        link.send(&invite).await;
        // Over UDP the 200 is sent again; over TCP (where nothing is retransmitted) the
        // repeat is absorbed. Either way it is the same dialog, not a second call.
        let again = link
            .answer_within(&invite.call_id, Duration::from_secs(2))
            .await;
        if matches!(transport, Transport::Udp) {
            assert!(again.is_some(), "{}", what("branchless again"));
        }
        if let Some(again) = again {
            assert_eq!(status(&again), 200, "{}", what("branchless again"));
            assert_eq!(to_tag(&first), to_tag(&again), "{}", what("one dialog"));
        }
        hang_up(&mut link, &invite, &first, &what("branchless")).await;

        // A merged request (same Call-ID, From tag and CSeq, another branch) gets 482, and the
        // first call still ends normally.
        let invite = Message::invite(&ivr);
        link.send(&invite).await;
        let answer = link.answer(&invite.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("before the merge"));
        let merged = Message {
            branch: Some(format!("z9hG4bK{}", fresh())),
            ..invite.clone()
        };
        link.send(&merged).await;
        let refused = link.answer(&merged.call_id).await;
        assert_eq!(status(&refused), 482, "{}: {refused}", what("merged"));
        hang_up(&mut link, &invite, &answer, &what("merged")).await;

        // Two peers using the same branch are two transactions: each gets its own answer.
        let options = Message::new("OPTIONS", &ivr);
        let mut other = Link::open(transport, "127.0.0.1", sip).await;
        link.send(&options).await;
        assert_eq!(status(&link.answer(&options.call_id).await), 200);
        let reused = Message {
            call_id: format!("{}@other", fresh()),
            ..options.clone()
        };
        other.send(&reused).await;
        let answer = other.answer(&reused.call_id).await;
        assert_eq!(
            status(&answer),
            200,
            "{}",
            what("a branch reused elsewhere")
        );

        // The parser: an unterminated quote and stray separators are 400s.
        let unterminated = Message {
            from: "\"Unterminated <sip:peer@127.0.0.1>".into(),
            ..Message::invite(&ivr)
        };
        link.send(&unterminated).await;
        let answer = link.answer(&unterminated.call_id).await;
        assert_eq!(status(&answer), 400, "{}", what("unterminated quote"));
        let mut separators = Message::invite(&ivr);
        separators.extra =
            "Content-Type: application/sdp\r\nContact: <sip:peer@127.0.0.1>;;,;expires=60\r\n"
                .into();
        link.send(&separators).await;
        let answer = link.answer(&separators.call_id).await;
        assert_eq!(status(&answer), 400, "{}", what("stray separators"));

        // A display name with quoted-pair control characters is valid (RFC 3261 §25.1).
        let quoted = Message {
            from: "\"J\\\x01o\\\x0bhn\" <sip:peer@127.0.0.1>".into(),
            ..Message::new("OPTIONS", &ivr)
        };
        link.send(&quoted).await;
        let answer = link.answer(&quoted.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("quoted pairs"));

        // A %-escaped Request-URI user is the same number.
        let escaped = Message::invite(&format!("sip:%31555%30100@{sip}"));
        link.send(&escaped).await;
        let answer = link.answer(&escaped.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("%-escapes"));
        hang_up(&mut link, &escaped, &answer, &what("%-escapes")).await;

        // An INVITE that accepts no SDP cannot be answered with SDP: 406.
        let mut picky = Message::invite(&ivr);
        picky.extra.push_str("Accept: text/plain\r\n");
        link.send(&picky).await;
        let answer = link.answer(&picky.call_id).await;
        assert_eq!(status(&answer), 406, "{}", what("Accept"));
    }
}

/// Answers a REGISTER challenge for `username`; `uri` is what the answer covers.
fn register(sip: SocketAddr, username: &str, contact_port: u16) -> Message {
    let mut message = Message::new("REGISTER", &format!("sip:{sip}"));
    message.from = format!("<sip:{username}@{sip}>");
    message.to = message.from.clone();
    message.extra =
        format!("Contact: <sip:{username}@127.0.0.1:{contact_port}>\r\nExpires: 60\r\n");
    message
}

fn authorized(request: &Message, challenge: &str, password: &str, uri: &str) -> Message {
    let header_value = header(challenge, "WWW-Authenticate").expect("a challenge");
    let (realm, nonce) = switchboard_sip::digest::parse_challenge(&header_value).unwrap();
    let username = request
        .from
        .trim_start_matches("<sip:")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let answer = switchboard_sip::digest::answer(
        &username,
        password,
        &realm,
        &nonce,
        &request.method,
        uri,
        &fresh()[..8],
    );
    let mut message = request.clone();
    message.branch = Some(format!("z9hG4bK{}", fresh()));
    message.cseq += 1;
    message.extra = format!("{}Authorization: {answer}\r\n", request.extra);
    message
}

/// A REGISTER with the right password from `link`: challenged, then accepted.
async fn registers(link: &mut Link, sip: SocketAddr, username: &str, what: &str) {
    let request = register(sip, username, 5070);
    link.send(&request).await;
    let challenge = link.answer(&request.call_id).await;
    assert_eq!(status(&challenge), 401, "{what}");
    let signed = authorized(&request, &challenge, PASSWORD, &request.uri);
    link.send(&signed).await;
    let answer = link.answer(&signed.call_id).await;
    assert_eq!(status(&answer), 200, "{what}: {answer}");
}

/// Items 3 and 4: a captured answer cannot be replayed, forged nonces are not "stale", the
/// answer covers its Request-URI, and guessing passwords is slowed, then refused, without
/// locking out the real phone.
#[tokio::test]
async fn digest_replay_and_guessing_over_udp_and_tcp() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    for (transport, account, attacker) in [
        (Transport::Udp, "agent1", "127.0.0.2"),
        (Transport::Tcp, "agent2", "127.0.0.3"),
    ] {
        let what = |case: &str| format!("{transport:?}, {case}");
        let mut phone = Link::open(transport, "127.0.0.1", sip).await;

        // Replay: the phone's answer, captured and sent again from elsewhere with another
        // Contact, does not move the binding.
        let request = register(sip, account, 5070);
        phone.send(&request).await;
        let challenge = phone.answer(&request.call_id).await;
        let signed = authorized(&request, &challenge, PASSWORD, &request.uri);
        phone.send(&signed).await;
        assert_eq!(status(&phone.answer(&signed.call_id).await), 200);
        let mut thief = Link::open(transport, attacker, sip).await;
        let mut replay = signed.clone();
        replay.branch = Some(format!("z9hG4bK{}", fresh()));
        replay.extra = replay.extra.replace("127.0.0.1:5070", "127.0.0.9:5070");
        thief.send(&replay).await;
        let answer = thief.answer(&replay.call_id).await;
        assert_ne!(status(&answer), 200, "{}: {answer}", what("replayed"));

        // A nonce the server never issued is challenged afresh, not called stale.
        let mut forged = request.clone();
        forged.branch = Some(format!("z9hG4bK{}", fresh()));
        forged.cseq = 5;
        forged.extra.push_str(&format!(
            "Authorization: Digest username=\"{account}\", realm=\"switchboard\", nonce=\"5f0.forged.0000000000000000\", uri=\"{}\", response=\"00000000000000000000000000000000\"\r\n",
            request.uri
        ));
        thief.send(&forged).await;
        let answer = thief.answer(&forged.call_id).await;
        assert_eq!(status(&answer), 401, "{}", what("forged nonce"));
        let challenge_header = header(&answer, "WWW-Authenticate").unwrap();
        assert!(
            !challenge_header.contains("stale=true"),
            "{}: {challenge_header}",
            what("forged nonce")
        );

        // The answer must cover the Request-URI it comes with.
        let request = register(sip, account, 5070);
        thief.send(&request).await;
        let challenge = thief.answer(&request.call_id).await;
        let elsewhere = authorized(&request, &challenge, PASSWORD, "sip:elsewhere.example");
        thief.send(&elsewhere).await;
        let answer = thief.answer(&elsewhere.call_id).await;
        assert_eq!(status(&answer), 400, "{}: {answer}", what("other uri"));

        // Guessing: 25 wrong passwords from one address. The answers slow down and then the
        // address is refused with 503 and Retry-After.
        let mut pending = Vec::new();
        for _ in 0..25 {
            let request = register(sip, account, 5070);
            thief.send(&request).await;
            let challenge = thief.answer(&request.call_id).await;
            assert_eq!(status(&challenge), 401, "{}", what("guess challenged"));
            let guess = authorized(&request, &challenge, "guess", &request.uri);
            thief.send(&guess).await;
            pending.push(guess.call_id);
        }
        let mut refused = 0;
        for call_id in &pending {
            // Delayed refusals come within the policy's longest delay.
            if let Some(answer) = thief.answer_within(call_id, Duration::from_secs(12)).await {
                assert!(
                    matches!(status(&answer), 403 | 503),
                    "{}: {answer}",
                    what("guess")
                );
                if status(&answer) == 503 {
                    assert!(header(&answer, "Retry-After").is_some(), "{answer}");
                    refused += 1;
                }
            }
        }
        assert!(refused >= 1, "{}: never refused", what("guessing"));

        // The real phone, from its own address and with the right password, still registers.
        registers(
            &mut phone,
            sip,
            account,
            &what("the real phone after the guessing"),
        )
        .await;
    }
}

/// Item 5: connections over TCP are limited per source and closed when idle; HTTP serves
/// throughout.
#[tokio::test]
async fn tcp_connections_are_limited_and_idle_ones_closed() {
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.voice.tcp_per_source = 4;
        config.voice.tcp_idle_seconds = 1;
    })
    .await;
    let sip = server.sip().await;
    let uri = format!("sip:15550100@{sip}");
    let mut links = Vec::new();
    for _ in 0..4 {
        links.push(Link::open(Transport::Tcp, "127.0.0.5", sip).await);
    }
    // The fifth from the same address is closed at once.
    let mut fifth = Link::open(Transport::Tcp, "127.0.0.5", sip).await;
    fifth.send(&Message::new("OPTIONS", &uri)).await;
    assert_eq!(fifth.next(Duration::from_secs(3)).await, None, "fifth");
    // Another address is served meanwhile, and so is HTTP.
    let mut elsewhere = Link::open(Transport::Tcp, "127.0.0.6", sip).await;
    let options = Message::new("OPTIONS", &uri);
    elsewhere.send(&options).await;
    assert_eq!(status(&elsewhere.answer(&options.call_id).await), 200);
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // An idle connection is closed by the server.
    let mut idle = links.pop().unwrap();
    assert_eq!(idle.next(Duration::from_secs(10)).await, None, "idle");
    // The UDP side is not limited by any of that.
    let mut udp = Link::open(Transport::Udp, "127.0.0.5", sip).await;
    let options = Message::new("OPTIONS", &uri);
    udp.send(&options).await;
    assert_eq!(status(&udp.answer(&options.call_id).await), 200);
}

/// Item 6: a trunk's concurrent-call limit answers 503 with Retry-After beyond it, over UDP
/// and TCP, and frees up when the call ends.
#[tokio::test]
async fn a_trunk_over_its_limit_gets_503_over_udp_and_tcp() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/voice/trunks",
            json!({"name": "Small carrier", "direction": "inbound", "addresses": ["127.0.0.4"],
                   "max_calls": 1}),
        )
        .await;
    let ivr = format!("sip:15550100@{sip}");
    for transport in [Transport::Udp, Transport::Tcp] {
        let what = |case: &str| format!("{transport:?}, {case}");
        let mut link = Link::open(transport, "127.0.0.4", sip).await;
        let first = Message::invite(&ivr);
        link.send(&first).await;
        let answer = link.answer(&first.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("first call"));
        let second = Message::invite(&ivr);
        link.send(&second).await;
        let refused = link.answer(&second.call_id).await;
        assert_eq!(
            status(&refused),
            503,
            "{}: {refused}",
            what("over the limit")
        );
        assert!(header(&refused, "Retry-After").is_some(), "{refused}");
        hang_up(&mut link, &first, &answer, &what("first call")).await;
        // Once it has ended, the trunk may call again.
        let third = Message::invite(&ivr);
        link.send(&third).await;
        let answer = link.answer(&third.call_id).await;
        assert_eq!(status(&answer), 200, "{}", what("after the first ended"));
        hang_up(&mut link, &third, &answer, &what("third call")).await;
    }
}
