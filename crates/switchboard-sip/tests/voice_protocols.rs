//! Transactions (with time as an input), dialogs, digest authentication and SDP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_sip::dialog::Dialog;
use switchboard_sip::transaction::{Event, Peer, Timers, Transactions};
use switchboard_sip::{digest, parse, sdp, Message, Method, Response, Transport};

fn peer() -> Peer {
    Peer {
        addr: "127.0.0.1:5061".parse::<SocketAddr>().unwrap(),
        transport: Transport::Udp,
    }
}

fn message(text: &str) -> Message {
    parse(text.as_bytes(), Transport::Udp).unwrap()
}

fn invite(branch: &str) -> Message {
    message(&super::invite().replace("z9hG4bK-1-0", branch))
}

fn drain(tx: &mut Transactions) -> Vec<String> {
    let mut sent = Vec::new();
    while let Some((_, bytes)) = tx.poll_transmit() {
        sent.push(String::from_utf8(bytes).unwrap());
    }
    sent
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap()
}

#[test]
fn a_server_invite_transaction_absorbs_retransmissions_and_resends_its_final_response() {
    let start = Instant::now();
    let mut tx = Transactions::new(Timers::default());
    tx.receive(start, invite("z9hG4bKa"), peer());
    // 100 Trying at once, and one event for the transaction user.
    assert_eq!(
        drain(&mut tx)
            .iter()
            .map(|m| first_line(m))
            .collect::<Vec<_>>(),
        ["SIP/2.0 100 Trying"]
    );
    let Some(Event::Request {
        request,
        key: Some(key),
        ..
    }) = tx.poll_event()
    else {
        panic!("no request")
    };
    assert!(tx.poll_event().is_none());
    // A retransmitted INVITE gets the 100 again, and no second event.
    tx.receive(start, invite("z9hG4bKa"), peer());
    assert_eq!(drain(&mut tx).len(), 1);
    assert!(tx.poll_event().is_none());
    // A 486: retransmitted on timer G (500 ms, 1 s, 2 s, 4 s, 4 s…) until the ACK.
    assert!(tx.respond(
        start,
        &key,
        Response::to(&request, 486, "Busy Here", Some("t"))
    ));
    assert_eq!(first_line(&drain(&mut tx)[0]), "SIP/2.0 486 Busy Here");
    let mut at = start;
    let mut resent = Vec::new();
    for _ in 0..8 {
        at = tx.poll_timeout().unwrap();
        tx.handle_timeout(at);
        resent.push((at - start).as_millis());
        drain(&mut tx);
        if (at - start) > Duration::from_secs(7) {
            break;
        }
    }
    assert_eq!(&resent[..4], [500, 1500, 3500, 7500]);
    // The ACK stops it; nothing reaches the transaction user.
    let ack = super::invite()
        .replace("z9hG4bK-1-0", "z9hG4bKa")
        .replace("INVITE sip", "ACK sip")
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    tx.receive(at, message(&ack), peer());
    assert!(tx.poll_event().is_none());
    // Timer I ends it (T4 over UDP), and no timer stays behind.
    let mut now = at;
    while let Some(next) = tx.poll_timeout() {
        now = next;
        tx.handle_timeout(now);
        drain(&mut tx);
    }
    assert!(tx.is_empty(), "{} left", tx.len());
    assert!(now - start < Duration::from_secs(200));
}

#[test]
fn a_2xx_is_resent_until_its_ack_and_an_unacknowledged_one_is_reported() {
    let start = Instant::now();
    let mut tx = Transactions::new(Timers::default());
    tx.receive(start, invite("z9hG4bKb"), peer());
    drain(&mut tx);
    let Some(Event::Request {
        request,
        key: Some(key),
        ..
    }) = tx.poll_event()
    else {
        panic!()
    };
    tx.respond(start, &key, Response::to(&request, 200, "OK", Some("t")));
    assert_eq!(drain(&mut tx).len(), 1);
    // Never acknowledged: resent with T1 doubling to T2, then reported after 64*T1.
    let mut resends = 0;
    let mut report = None;
    while let Some(next) = tx.poll_timeout() {
        tx.handle_timeout(next);
        resends += drain(&mut tx).len();
        if let Some(Event::AckTimeout { call_id }) = tx.poll_event() {
            report = Some((next - start, call_id));
        }
    }
    let (after, call_id) = report.expect("AckTimeout");
    assert_eq!(after, Duration::from_secs(32));
    assert_eq!(call_id, "1-4242@127.0.0.1");
    assert!((9..=12).contains(&resends), "{resends} resends");
    assert!(tx.is_empty());
}

#[test]
fn a_client_transaction_retransmits_times_out_and_acknowledges_failures() {
    let start = Instant::now();
    let mut tx = Transactions::new(Timers::default());
    let Message::Request(request) = invite("z9hG4bKc") else {
        panic!()
    };
    let key = tx.send_request(start, request.clone(), peer()).unwrap();
    assert_eq!(drain(&mut tx).len(), 1);
    // No answer at all: timer A resends, timer B gives up after 64*T1.
    let mut sends = 0;
    let mut timed_out = None;
    while let Some(next) = tx.poll_timeout() {
        tx.handle_timeout(next);
        sends += drain(&mut tx).len();
        if let Some(Event::Timeout { key: k }) = tx.poll_event() {
            timed_out = Some((next - start, k));
        }
    }
    let (after, k) = timed_out.expect("timeout");
    assert_eq!(k, key);
    assert_eq!(after, Duration::from_secs(32));
    assert_eq!(sends, 6, "resent at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    // A second INVITE answered 486: the transaction sends the ACK itself, with the same branch.
    let Message::Request(request) = invite("z9hG4bKd") else {
        panic!()
    };
    tx.send_request(start, request.clone(), peer()).unwrap();
    drain(&mut tx);
    let busy = Response::to(&request, 486, "Busy Here", Some("callee"));
    tx.receive(start, Message::Response(busy.clone()), peer());
    let sent = drain(&mut tx);
    assert!(
        sent[0].starts_with("ACK sip:15550100@127.0.0.1:5060 SIP/2.0"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("branch=z9hG4bKd") && sent[0].contains("tag=callee"),
        "{}",
        sent[0]
    );
    assert!(
        matches!(tx.poll_event(), Some(Event::Response { response, .. }) if response.status == 486)
    );
    // The 486 again: ACKed again, not reported again.
    tx.receive(start, Message::Response(busy), peer());
    assert_eq!(drain(&mut tx).len(), 1);
    assert!(tx.poll_event().is_none());
}

#[test]
fn dialogs_build_requests_within_them() {
    let Message::Request(request) = invite("z9hG4bKe") else {
        panic!()
    };
    let mut uas = Dialog::as_uas(&request, "local", "<sip:switchboard@127.0.0.1:5060>");
    assert_eq!(uas.remote_target, "sip:sipp@127.0.0.1:5061");
    let bye = uas.request(Method::Bye, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx");
    assert_eq!(bye.uri, "sip:sipp@127.0.0.1:5061");
    assert_eq!(
        bye.headers.get("From"),
        Some("<sip:15550100@127.0.0.1:5060>;tag=local")
    );
    assert_eq!(
        bye.headers.get("To"),
        Some("sipp <sip:sipp@127.0.0.1:5061>;tag=1")
    );
    assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
    // The peer's requests in the dialog match it; others do not.
    let mut theirs = request.clone();
    theirs
        .headers
        .set("To", "<sip:15550100@127.0.0.1:5060>;tag=local");
    assert!(uas.matches(&theirs));
    theirs
        .headers
        .set("To", "<sip:15550100@127.0.0.1:5060>;tag=other");
    assert!(!uas.matches(&theirs));
}

#[test]
fn digest_matches_rfc_2617_and_refuses_wrong_answers() {
    // RFC 2617 §3.5's example (with HTTP's method and URI).
    let credentials = digest::parse(
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
         response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    let ha1 = digest::ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
    assert!(digest::verify(&ha1, "GET", &credentials));
    assert!(!digest::verify(&ha1, "POST", &credentials));
    assert!(!digest::verify(
        &digest::ha1("Mufasa", "testrealm@host.com", "wrong"),
        "GET",
        &credentials
    ));
    // Our own answer to a challenge verifies.
    let answer = digest::answer(
        "agent1",
        "pw",
        "switchboard",
        "n1",
        "REGISTER",
        "sip:127.0.0.1",
        "c1",
    );
    let parsed = digest::parse(&answer).unwrap();
    assert!(digest::verify(
        &digest::ha1("agent1", "switchboard", "pw"),
        "REGISTER",
        &parsed
    ));
    assert_eq!(
        digest::parse_challenge(&digest::challenge("switchboard", "n1", false)),
        Some(("switchboard".into(), "n1".into()))
    );
    // Not digest, or missing parts: no credentials.
    assert!(digest::parse("Basic abc").is_none());
    assert!(digest::parse("Digest realm=\"x\"").is_none());
}

#[test]
fn sdp_offers_and_answers_g711_with_telephone_events() {
    let offer = sdp::parse(
        b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n\
          m=audio 6000 RTP/AVP 18 8 0 101\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
    )
    .unwrap();
    assert_eq!(offer.address.to_string(), "10.0.0.2");
    assert_eq!(offer.port, 6000);
    assert_eq!(offer.telephone_event, Some(101));
    assert_eq!(sdp::choose_codec(&offer), Some(sdp::PCMA));
    assert!(offer.direction.is_hold());
    assert_eq!(offer.direction.answer(), sdp::Direction::RecvOnly);
    let written = sdp::write(
        7,
        1,
        "127.0.0.1".parse().unwrap(),
        20000,
        &[sdp::PCMU],
        Some(101),
        sdp::Direction::SendRecv,
    );
    let back = sdp::parse(&written).unwrap();
    assert_eq!(
        (back.port, back.payloads.clone(), back.telephone_event),
        (20000, vec![0, 101], Some(101))
    );
    // Old-style hold and bad descriptions.
    let hold = sdp::parse(b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n").unwrap();
    assert!(hold.direction.is_hold());
    assert_eq!(
        sdp::parse(b"v=0\r\nm=video 1 RTP/AVP 96\r\n"),
        Err(sdp::SdpError::NoAudio)
    );
    assert_eq!(
        sdp::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n"),
        Err(sdp::SdpError::NoAddress)
    );
    assert!(sdp::parse(b"v=0\r\nc=IN IP4 nowhere\r\nm=audio 1 RTP/AVP 0\r\n").is_err());
    assert!(sdp::parse(&[0xff, 0xfe]).is_err());
}
