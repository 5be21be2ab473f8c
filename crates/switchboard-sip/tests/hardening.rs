//! Matching and strictness that probing found wanting: RFC 2543 peers (no magic cookie, no
//! From tag), two peers reusing one branch, merged requests (§8.2.2.2), and the RFC 4475 cases
//! the parser let through or could not answer.

use std::net::SocketAddr;
use std::time::Instant;
use switchboard_sip::dialog::Dialog;
use switchboard_sip::fields;
use switchboard_sip::transaction::{Event, Peer, Timers, Transactions};
use switchboard_sip::{parse, Message, Response, Transport};

fn at(addr: &str) -> Peer {
    Peer {
        addr: addr.parse::<SocketAddr>().unwrap(),
        transport: Transport::Udp,
    }
}

fn message(text: &str) -> Message {
    parse(text.as_bytes(), Transport::Udp).unwrap()
}

fn events(tx: &mut Transactions) -> Vec<Event> {
    std::iter::from_fn(|| tx.poll_event()).collect()
}

fn sent(tx: &mut Transactions) -> Vec<(SocketAddr, String)> {
    std::iter::from_fn(|| tx.poll_transmit())
        .map(|(peer, bytes)| (peer.addr, String::from_utf8(bytes).unwrap()))
        .collect()
}

/// An INVITE as an RFC 2543 peer sends it: a branch without the magic cookie (or none) and
/// no From tag.
fn rfc2543_invite(via: &str) -> String {
    format!(
        "INVITE sip:15550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via}\r\nFrom: <sip:old@10.0.0.9>\r\nTo: <sip:15550100@127.0.0.1>\r\nCall-ID: old-1@10.0.0.9\r\nCSeq: 1 INVITE\r\nContact: <sip:old@10.0.0.9>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_retransmitted_rfc2543_invite_is_one_transaction() {
    for via in ["10.0.0.9:5060", "10.0.0.9:5060;branch=1234"] {
        let (now, mut tx) = (Instant::now(), Transactions::new(Timers::default()));
        let peer = at("10.0.0.9:5060");
        tx.receive(now, message(&rfc2543_invite(via)), peer);
        tx.receive(now, message(&rfc2543_invite(via)), peer);
        let requests = events(&mut tx)
            .into_iter()
            .filter(|e| matches!(e, Event::Request { .. }))
            .count();
        assert_eq!(requests, 1, "{via}: one call, not two");
        // The retransmission got the 100 Trying again.
        assert_eq!(sent(&mut tx).len(), 2);
    }
}

#[test]
fn a_dialog_with_a_peer_that_sends_no_from_tag_matches_its_bye() {
    let invite = match message(&rfc2543_invite("10.0.0.9:5060")) {
        Message::Request(r) => r,
        _ => unreachable!(),
    };
    let dialog = Dialog::as_uas(&invite, "ours", "<sip:switchboard@127.0.0.1>");
    let bye = match message("BYE sip:switchboard@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060\r\nFrom: <sip:old@10.0.0.9>\r\nTo: <sip:15550100@127.0.0.1>;tag=ours\r\nCall-ID: old-1@10.0.0.9\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n") {
        Message::Request(r) => r,
        _ => unreachable!(),
    };
    assert!(dialog.matches(&bye));
    let mut stranger = bye.clone();
    stranger.headers.set("From", "<sip:old@10.0.0.9>;tag=other");
    assert!(!dialog.matches(&stranger));
}

#[test]
fn two_peers_reusing_a_branch_are_two_transactions() {
    let (now, mut tx) = (Instant::now(), Transactions::new(Timers::default()));
    let text = |host: &str| {
        format!("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch=z9hG4bK-same\r\nFrom: <sip:a@{host}>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: c-{host}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    };
    tx.receive(now, message(&text("10.0.0.1:5060")), at("10.0.0.1:5060"));
    tx.receive(now, message(&text("10.0.0.2:5060")), at("10.0.0.2:5060"));
    let keys: Vec<_> = events(&mut tx)
        .into_iter()
        .filter_map(|e| match e {
            Event::Request {
                request,
                key: Some(key),
                ..
            } => Some((request, key)),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 2);
    for (request, key) in keys {
        tx.respond(now, &key, Response::to(&request, 200, "OK", Some("t")));
    }
    let to: Vec<SocketAddr> = sent(&mut tx).into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        to,
        [
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap()
        ]
    );
}

#[test]
fn a_merged_request_gets_482() {
    let (now, mut tx) = (Instant::now(), Transactions::new(Timers::default()));
    let text = |branch: &str| super::invite().replace("z9hG4bK-1-0", branch);
    let peer = at("127.0.0.1:5061");
    tx.receive(now, message(&text("z9hG4bK-first")), peer);
    assert_eq!(events(&mut tx).len(), 1);
    sent(&mut tx);
    // The same Call-ID, From tag and CSeq by another path (another branch).
    tx.receive(now, message(&text("z9hG4bK-second")), peer);
    assert!(events(&mut tx).is_empty(), "no second call");
    let answers = sent(&mut tx);
    assert_eq!(answers.len(), 1);
    assert!(answers[0].1.starts_with("SIP/2.0 482 Loop Detected"));
    assert!(answers[0].1.contains("branch=z9hG4bK-second"));
}

fn status_of(text: &str) -> Option<u16> {
    match parse(text.as_bytes(), Transport::Udp) {
        Ok(_) => None,
        Err(rejection) => Some(rejection.answer.map_or(0, |a| a.status)),
    }
}

#[test]
fn rfc_4475_cases_the_parser_let_through_are_refused() {
    let good = super::invite();
    // §3.1.2.6: an unterminated quoted string in a display name.
    let unquoted = good.replace("From: sipp <", "From: \"sipp <");
    assert_eq!(status_of(&unquoted), Some(400));
    let to = good.replace("To: <sip:15550100", "To: \"Bob <sip:15550100");
    assert_eq!(status_of(&to), Some(400));
    // §3.1.2.1: extraneous separators in Via and Contact.
    let via = good.replace("branch=z9hG4bK-1-0", "branch=z9hG4bK-1-0;;,;,,");
    assert_eq!(status_of(&via), Some(400));
    let contact = good.replace(
        "Contact: sip:sipp@127.0.0.1:5061",
        "Contact: <sip:sipp@127.0.0.1:5061>;;,;,,",
    );
    assert_eq!(status_of(&contact), Some(400));
    // But quoted commas and semicolons are text, and a list of two is fine.
    let quoted = good.replace("From: sipp <", "From: \"sipp;, the tester\" <");
    assert_eq!(status_of(&quoted), None);
    let two = good.replace(
        "Contact: sip:sipp@127.0.0.1:5061",
        "Contact: <sip:a@1.2.3.4>, <sip:b@1.2.3.4>",
    );
    assert_eq!(status_of(&two), None);
}

#[test]
fn quoted_pairs_with_control_characters_are_accepted() {
    // RFC 3261 §25.1: "\" followed by %x00-09 / %x0B-0C / %x0E-7F inside a quoted string.
    let good = super::invite();
    let odd = good.replace("From: sipp <", "From: \"sipp \\\u{1}\\\u{0}\\\"x\" <");
    let Ok(Message::Request(request)) = parse(odd.as_bytes(), Transport::Udp) else {
        panic!("a valid display name was refused")
    };
    assert!(request.headers.get("From").unwrap().contains('\u{1}'));
    // A bare control character outside a quoted pair is still refused, with an answer.
    let bare = good.replace("From: sipp <", "From: sipp\u{1} <");
    assert!(status_of(&bare).is_some());
}

#[test]
fn escaped_uri_users_are_unescaped() {
    assert_eq!(fields::unescape("%31555%30100"), "15550100");
    assert_eq!(fields::unescape("plain"), "plain");
    assert_eq!(fields::unescape("50%"), "50%");
    assert_eq!(fields::unescape("%zz%4"), "%zz%4");
}
