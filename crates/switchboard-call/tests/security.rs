//! What an attacker and a careless network try: replaying captured digest answers (for a
//! REGISTER or a trunk's INVITE), answers bound to another URI, forged nonces, guessing
//! passwords at network speed, and the matching rules RFC 2543 peers and merged requests need.

use crate::harness::peers::{sdp, Peer};
use crate::harness::{Center, CARRIER, ENGINE, NUMBER, PASSWORD, PBX, PBX_PASSWORD};
use std::time::Duration;
use switchboard_call::REALM;
use switchboard_sip::digest::{self, Credentials};
use switchboard_sip::{parse, Message, Response, Transport};

const PHONE1: &str = "203.0.113.1:5060";
const ATTACKER: &str = "192.0.2.66:5060";

fn message(text: String) -> Message {
    parse(text.as_bytes(), Transport::Udp).expect("a well-formed test message")
}

/// An Authorization value for a nonce, with a chosen nonce count.
fn authorization(
    user: &str,
    password: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let credentials = Credentials {
        username: user.into(),
        realm: REALM.into(),
        nonce: nonce.into(),
        uri: uri.into(),
        qop: Some("auth".into()),
        nc: Some(format!("{nc:08x}")),
        cnonce: Some("c0ffee".into()),
        ..Default::default()
    };
    let response =
        digest::expected_response(&digest::ha1(user, REALM, password), method, &credentials);
    format!(
        "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\""
    )
}

fn nonce_of(challenge: &Response) -> String {
    let header = challenge
        .headers
        .get("WWW-Authenticate")
        .expect("a challenge");
    digest::parse_challenge(header)
        .expect("a digest challenge")
        .1
}

/// A REGISTER for agent1 from `from` naming `contact`, with `auth`.
fn register(from: &str, contact: &str, n: u32, auth: Option<&str>) -> Message {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    message(format!(
        "REGISTER sip:{ENGINE} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-r-{n}\r\nFrom: <sip:agent1@{ENGINE}>;tag=r{n}\r\nTo: <sip:agent1@{ENGINE}>\r\nCall-ID: reg-{n}@{from}\r\nCSeq: {n} REGISTER\r\nContact: <sip:agent1@{contact}>\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
    ))
}

fn registered_contact(c: &Center) -> Vec<String> {
    c.engine
        .registrations(c.now)
        .into_iter()
        .map(|(_, contact, _)| contact)
        .collect()
}

#[test]
fn a_captured_register_answer_cannot_be_replayed() {
    let mut c = Center::new();
    let (phone, attacker) = (Peer::at(PHONE1), Peer::at(ATTACKER));
    c.deliver(phone.peer, register(PHONE1, PHONE1, 1, None));
    let nonce = nonce_of(&phone.expect_response(&mut c, 401));
    let uri = format!("sip:{ENGINE}");
    let answer = authorization("agent1", PASSWORD, &nonce, "REGISTER", &uri, 1);
    c.deliver(phone.peer, register(PHONE1, PHONE1, 2, Some(&answer)));
    phone.expect_response(&mut c, 200);
    // The same answer from elsewhere, binding the agent to the attacker: a new challenge.
    c.deliver(
        attacker.peer,
        register(ATTACKER, ATTACKER, 3, Some(&answer)),
    );
    let stale = attacker.expect_response(&mut c, 401);
    assert!(stale
        .headers
        .get("WWW-Authenticate")
        .unwrap_or_default()
        .contains("stale=true"));
    assert_eq!(registered_contact(&c), vec![format!("sip:agent1@{PHONE1}")]);
    // The phone itself goes on with the next nonce count.
    let next = authorization("agent1", PASSWORD, &nonce, "REGISTER", &uri, 2);
    c.deliver(phone.peer, register(PHONE1, PHONE1, 4, Some(&next)));
    phone.expect_response(&mut c, 200);
    // An answer bound to another Request-URI is malformed.
    let elsewhere = authorization(
        "agent1",
        PASSWORD,
        &nonce,
        "REGISTER",
        "sip:other.example",
        3,
    );
    c.deliver(phone.peer, register(PHONE1, PHONE1, 5, Some(&elsewhere)));
    phone.expect_response(&mut c, 400);
    // A nonce we never issued is not "stale": there is nothing to renew.
    let forged = authorization(
        "agent1",
        PASSWORD,
        "5f000000.abc.0123456789abcdef",
        "REGISTER",
        &uri,
        1,
    );
    c.deliver(
        attacker.peer,
        register(ATTACKER, ATTACKER, 6, Some(&forged)),
    );
    let fresh = attacker.expect_response(&mut c, 401);
    assert!(!fresh
        .headers
        .get("WWW-Authenticate")
        .unwrap_or_default()
        .contains("stale"));
}

#[test]
fn guessing_is_slowed_then_refused_while_the_phone_still_registers() {
    let mut c = Center::new();
    let (phone, attacker) = (Peer::at(PHONE1), Peer::at(ATTACKER));
    c.register("agent1", &phone);
    c.deliver(attacker.peer, register(ATTACKER, ATTACKER, 1, None));
    let nonce = nonce_of(&attacker.expect_response(&mut c, 401));
    let uri = format!("sip:{ENGINE}");
    let mut statuses = Vec::new();
    for n in 0..24u32 {
        let guess = authorization(
            "agent1",
            &format!("guess{n}"),
            &nonce,
            "REGISTER",
            &uri,
            n + 1,
        );
        c.deliver(
            attacker.peer,
            register(ATTACKER, ATTACKER, n + 2, Some(&guess)),
        );
        // Answers come at once, or only after the growing delay.
        let mut waited = Duration::ZERO;
        let answer = loop {
            if let Some(Message::Response(r)) = c.take(ATTACKER) {
                break r;
            }
            c.advance(Duration::from_millis(250));
            waited += Duration::from_millis(250);
            assert!(waited < Duration::from_secs(10), "no answer to guess {n}");
        };
        statuses.push((
            answer.status,
            waited,
            answer.headers.get("Retry-After").map(str::to_owned),
        ));
    }
    // Three wrong guesses are answered at once, then the waits grow.
    assert!(
        statuses[..3]
            .iter()
            .all(|(s, w, _)| *s == 403 && w.is_zero()),
        "{statuses:?}"
    );
    assert!(statuses[3].1 >= Duration::from_millis(500));
    assert!(statuses[6].1 > statuses[4].1);
    // From the twentieth failure on, the source is refused without looking.
    let (status, waited, retry) = &statuses[21];
    assert_eq!(*status, 503);
    assert!(waited.is_zero());
    assert!(retry
        .as_deref()
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r > 0));
    // Meanwhile the agent's phone, from its own address, registers again at once.
    c.deliver(phone.peer, phone.register("agent1", None));
    let nonce = nonce_of(&phone.expect_response(&mut c, 401));
    let answer = authorization("agent1", PASSWORD, &nonce, "REGISTER", &uri, 1);
    c.deliver(phone.peer, phone.register("agent1", Some(&answer)));
    phone.expect_response(&mut c, 200);
}

/// An INVITE from the PBX trunk (it proves itself with credentials) to `number`.
fn pbx_invite(from: &str, number: &str, call: u32, auth: Option<&str>) -> Message {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let body = sdp("192.0.2.50", 6000, "0", "sendrecv");
    message(format!(
        "INVITE sip:{number}@{ENGINE} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-pbx-{call}\r\nFrom: <sip:100@{from}>;tag=p{call}\r\nTo: <sip:{number}@{ENGINE}>\r\nCall-ID: pbx-{call}@{from}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{from}>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

#[test]
fn a_trunks_invite_answer_cannot_be_replayed_on_new_calls() {
    let mut c = Center::new();
    let pbx = Peer::at("192.0.2.50:5060");
    c.deliver(pbx.peer, pbx_invite("192.0.2.50:5060", NUMBER, 1, None));
    let nonce = nonce_of(&pbx.expect_response(&mut c, 401));
    let uri = format!("sip:{NUMBER}@{ENGINE}");
    let answer = authorization(PBX, PBX_PASSWORD, &nonce, "INVITE", &uri, 1);
    c.deliver(
        pbx.peer,
        pbx_invite("192.0.2.50:5060", NUMBER, 2, Some(&answer)),
    );
    pbx.expect_response(&mut c, 200);
    // The same answer on a new call: renewed, not accepted.
    c.deliver(
        pbx.peer,
        pbx_invite("192.0.2.50:5060", NUMBER, 3, Some(&answer)),
    );
    pbx.expect_response(&mut c, 401);
    // To another number, with the next count: the answer was for another Request-URI.
    let answer = authorization(PBX, PBX_PASSWORD, &nonce, "INVITE", &uri, 2);
    c.deliver(
        pbx.peer,
        pbx_invite("192.0.2.50:5060", "15550111", 4, Some(&answer)),
    );
    pbx.expect_response(&mut c, 400);
    assert_eq!(c.engine.live().len(), 1);
}

#[test]
fn an_rfc2543_caller_without_tags_or_magic_cookie_is_served() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let body = sdp("198.51.100.10", 6000, "0", "sendrecv");
    let invite = format!(
        "INVITE sip:{NUMBER}@{ENGINE} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER}\r\nFrom: <sip:old@{CARRIER}>\r\nTo: <sip:{NUMBER}@{ENGINE}>\r\nCall-ID: old@{CARRIER}\r\nCSeq: 1 INVITE\r\nContact: <sip:old@{CARRIER}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.deliver(carrier.peer, message(invite.clone()));
    let ok = carrier.expect_response(&mut c, 200);
    // Its retransmission is the same transaction: no second call.
    c.deliver(carrier.peer, message(invite));
    assert_eq!(c.engine.live().len(), 1);
    let to = ok.headers.get("To").expect("To").to_owned();
    let bye = format!(
        "BYE sip:switchboard@{ENGINE} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER}\r\nFrom: <sip:old@{CARRIER}>\r\nTo: {to}\r\nCall-ID: old@{CARRIER}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.deliver(carrier.peer, message(bye));
    let answers: Vec<u16> = std::iter::from_fn(|| c.take(CARRIER))
        .filter_map(|m| match m {
            Message::Response(r) => Some(r.status),
            _ => None,
        })
        .collect();
    assert!(
        answers.contains(&200) && !answers.contains(&481),
        "{answers:?}"
    );
    assert!(c.engine.live().is_empty());
}

#[test]
fn a_merged_invite_gets_482_and_the_first_call_stays_whole() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(NUMBER, Some(sdp("198.51.100.10", 6000, "0", "sendrecv")));
    let first = call.invite();
    let Message::Request(mut merged) = first.clone() else {
        unreachable!()
    };
    merged.headers.set(
        "Via",
        &format!("SIP/2.0/UDP {CARRIER};branch=z9hG4bK-by-another-path"),
    );
    c.deliver(carrier.peer, first);
    let ok = carrier.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(carrier.peer, Message::Request(merged));
    carrier.expect_response(&mut c, 482);
    assert_eq!(c.engine.live().len(), 1);
    c.deliver(carrier.peer, call.ack(""));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    assert!(c.engine.live().is_empty());
}

#[test]
fn an_escaped_number_is_found_and_an_invite_that_refuses_sdp_gets_406() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(
        "%31555%30100",
        Some(sdp("198.51.100.10", 6000, "0", "sendrecv")),
    );
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 200);
    let call = carrier.call(NUMBER, None);
    let Message::Request(mut invite) = call.invite() else {
        unreachable!()
    };
    invite.headers.push("Accept", "text/plain");
    c.deliver(carrier.peer, Message::Request(invite));
    let refused = carrier.expect_response(&mut c, 406);
    assert_eq!(refused.headers.get("Accept"), Some("application/sdp"));
}
