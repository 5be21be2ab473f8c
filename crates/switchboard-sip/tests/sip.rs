//! The SIP message layer: valid messages (including the unusual-but-legal forms RFC 4475
//! lists), malformed ones with the answer each must get, framing on streams, and no panic on
//! any input.

mod hardening;
mod voice_protocols;

use proptest::prelude::*;
use switchboard_sip::{frame, parse, Message, Method, Response, Transport};

/// An INVITE as a carrier trunk (or sipp's uac scenario) sends it, with an SDP body.
fn invite() -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:15550100@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0\r\n\
         From: sipp <sip:sipp@127.0.0.1:5061>;tag=1\r\n\
         To: <sip:15550100@127.0.0.1:5060>\r\n\
         Call-ID: 1-4242@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: sip:sipp@127.0.0.1:5061\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn request(text: &str) -> switchboard_sip::Request {
    match parse(text.as_bytes(), Transport::Udp) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn a_carrier_invite_parses() {
    let r = request(&invite());
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri, "sip:15550100@127.0.0.1:5060");
    assert_eq!(r.headers.get("call-id"), Some("1-4242@127.0.0.1"));
    assert!(String::from_utf8(r.body.clone())
        .unwrap()
        .contains("telephone-event"));
}

#[test]
fn legal_but_unusual_forms_parse() {
    // Compact header names, folded lines, odd spacing around colons, several Via in one header,
    // an extension method, an unknown header, a tel URI.
    let text = "NEWMETHOD tel:+15550100 SIP/2.0\r\n\
                v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-a ,SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK-b\r\n\
                f: \"Ann, the caller\" <sip:ann@example.org>;tag=x\r\n\
                t  :<sip:bob@example.org>\r\n\
                i: abc\r\n\
                CSeq: 9\r\n NEWMETHOD\r\n\
                X-Odd-Header: some\r\n\tfolded value\r\n\
                l: 0\r\n\r\n";
    let r = request(text);
    assert_eq!(r.method, Method::Other("NEWMETHOD".into()));
    assert_eq!(r.headers.all("Via").len(), 2);
    assert_eq!(
        r.headers.get("From"),
        Some("\"Ann, the caller\" <sip:ann@example.org>;tag=x")
    );
    assert_eq!(
        r.headers.all("From").len(),
        1,
        "a comma inside quotes does not split"
    );
    assert_eq!(r.headers.get("CSeq"), Some("9 NEWMETHOD"));
    assert_eq!(r.headers.get("x-odd-header"), Some("some folded value"));
    // A datagram may carry bytes past Content-Length: they are not part of the message.
    let r = request(&format!("{}trailing", invite()));
    assert!(!String::from_utf8(r.body).unwrap().contains("trailing"));
}

/// (name, message, status, whether a response can be built)
fn malformed() -> Vec<(&'static str, String, u16, bool)> {
    let good = invite();
    vec![
        ("version 7.0", good.replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1), 505, true),
        ("unknown URI scheme", good.replacen("sip:15550100@127.0.0.1:5060 SIP", "soap.beep://127.0.0.1 SIP", 1), 416, true),
        ("space in Request-URI", good.replacen("sip:15550100@127.0.0.1:5060", "sip:1555 0100@127.0.0.1", 1), 400, true),
        ("Request-URI in angle brackets", good.replacen("sip:15550100@127.0.0.1:5060 SIP", "<sip:15550100@127.0.0.1> SIP", 1), 400, true),
        ("no scheme", good.replacen("sip:15550100@127.0.0.1:5060 SIP", "15550100 SIP", 1), 400, true),
        ("CSeq method mismatch", good.replacen("CSeq: 1 INVITE", "CSeq: 1 BYE", 1), 400, true),
        ("CSeq not a number", good.replacen("CSeq: 1 INVITE", "CSeq: one INVITE", 1), 400, true),
        ("CSeq over 2^31", good.replacen("CSeq: 1 INVITE", "CSeq: 4294967295 INVITE", 1), 400, true),
        ("Content-Length larger than the body", good.replacen("Content-Length: ", "Content-Length: 9", 1), 400, true),
        ("negative Content-Length", good.replacen("Content-Length: ", "Content-Length: -", 1), 400, true),
        ("two Content-Length", good.replacen("Max-Forwards: 70", "Max-Forwards: 70\r\nl: 3", 1), 400, true),
        ("two Call-ID", good.replacen("Max-Forwards: 70", "Max-Forwards: 70\r\nCall-ID: other", 1), 400, true),
        ("Max-Forwards not a number", good.replacen("Max-Forwards: 70", "Max-Forwards: seventy", 1), 400, true),
        ("Max-Forwards over 255", good.replacen("Max-Forwards: 70", "Max-Forwards: 300", 1), 400, true),
        ("header line without colon", good.replacen("Max-Forwards: 70", "Max-Forwards 70", 1), 400, true),
        ("header name with a space", good.replacen("Max-Forwards: 70", "Max Forwards: 70", 1), 400, true),
        ("method with a bad character", good.replacen("INVITE sip:", "INV@TE sip:", 1), 400, true),
        ("request line with two spaces", good.replacen("INVITE sip:", "INVITE  sip:", 1), 400, true),
        ("missing Via", good.replacen("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0\r\n", "", 1), 400, false),
        ("missing Call-ID", good.replacen("Call-ID: 1-4242@127.0.0.1\r\n", "", 1), 400, false),
        ("missing From", good.replacen("From: sipp <sip:sipp@127.0.0.1:5061>;tag=1\r\n", "", 1), 400, false),
        ("no empty line", good.split("\r\n\r\n").next().unwrap().to_owned(), 400, false),
        ("control character in the Call-ID: no Call-ID to answer with", good.replacen("Call-ID: 1", "Call-ID: \u{FFFD}", 1).replace('\u{FFFD}', "\u{0}"), 400, false),
        ("response with a bad status", "SIP/2.0 99 Too Low\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n".into(), 400, false),
        ("response from the future", "SIP/3.0 200 OK\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n".into(), 400, false),
        ("empty", String::new(), 400, false),
        ("garbage", "\u{1}\u{2}hello\r\n\r\n".into(), 400, false),
    ]
}

#[test]
fn malformed_messages_get_the_right_answer_or_are_dropped() {
    for (name, text, status, answerable) in malformed() {
        let rejection = match parse(text.as_bytes(), Transport::Udp) {
            Err(r) => r,
            Ok(m) => panic!("{name}: accepted {m:?}"),
        };
        assert_eq!(rejection.status, status, "{name}: {}", rejection.detail);
        assert_eq!(
            rejection.answer.is_some(),
            answerable,
            "{name}: {}",
            rejection.detail
        );
        if let Some(answer) = rejection.answer {
            assert_eq!(answer.status, status, "{name}");
            // The answer itself is a well-formed response.
            let bytes = Message::Response(*answer).to_bytes();
            assert!(
                matches!(parse(&bytes, Transport::Udp), Ok(Message::Response(_))),
                "{name}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn a_response_copies_what_it_must_and_tags_the_to() {
    let text = invite().replacen(
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0",
        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-p, SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0",
        1,
    );
    let r = request(&text);
    let ringing = Response::to(&r, 180, "Ringing", Some("sb1"));
    assert_eq!(
        ringing.headers.all("Via"),
        r.headers.all("Via"),
        "every Via, in order"
    );
    assert_eq!(
        ringing.headers.get("To"),
        Some("<sip:15550100@127.0.0.1:5060>;tag=sb1")
    );
    assert_eq!(
        Response::to(&r, 100, "Trying", Some("sb1"))
            .headers
            .get("To"),
        Some("<sip:15550100@127.0.0.1:5060>"),
        "no tag on 100"
    );
    let tagged = request(&text.replacen(
        "To: <sip:15550100@127.0.0.1:5060>",
        "To: <sip:15550100@127.0.0.1:5060>;tag=abc",
        1,
    ));
    assert_eq!(
        Response::to(&tagged, 200, "OK", Some("sb1"))
            .headers
            .get("To"),
        Some("<sip:15550100@127.0.0.1:5060>;tag=abc"),
        "an existing tag stays"
    );
    let bytes = Message::Response(ringing).to_bytes();
    assert_eq!(
        parse(&bytes, Transport::Udp).unwrap().to_bytes(),
        bytes,
        "writes out as it reads"
    );
}

#[test]
fn a_message_survives_the_round_trip() {
    let original = parse(invite().as_bytes(), Transport::Udp).unwrap();
    assert_eq!(
        parse(&original.to_bytes(), Transport::Tcp).unwrap(),
        original
    );
}

#[test]
fn streams_are_framed_by_content_length() {
    let one = invite();
    let two = format!("{one}{one}");
    assert_eq!(frame(two.as_bytes()).unwrap(), Some(one.len()));
    assert_eq!(
        frame(&one.as_bytes()[..one.len() - 1]).unwrap(),
        None,
        "wait for the rest of the body"
    );
    assert_eq!(frame(b"\r\nINVITE").unwrap(), Some(2), "keep-alive");
    let no_length = one.replacen(
        &format!(
            "Content-Length: {}\r\n",
            one.split("Content-Length: ")
                .nth(1)
                .unwrap()
                .split("\r\n")
                .next()
                .unwrap()
        ),
        "",
        1,
    );
    assert!(
        frame(no_length.as_bytes()).is_err(),
        "a stream message needs Content-Length"
    );
    assert!(matches!(parse(no_length.as_bytes(), Transport::Tcp), Err(r) if r.status == 400));
    assert!(
        frame(&vec![b'a'; 70 * 1024]).is_err(),
        "no unbounded buffering"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&bytes, Transport::Udp);
        let _ = parse(&bytes, Transport::Tcp);
        let _ = frame(&bytes);
    }

    #[test]
    fn damaged_messages_never_panic_and_answers_are_sane(position in 0usize..700, byte in any::<u8>(), cut in 0usize..700) {
        let mut bytes = invite().into_bytes();
        let at = position % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(1).min(bytes.len()));
        match parse(&bytes, Transport::Udp) {
            Ok(message) => { let _ = message.to_bytes(); }
            Err(rejection) => {
                prop_assert!(matches!(rejection.status, 400 | 413 | 416 | 505));
                if let Some(answer) = rejection.answer {
                    prop_assert!(parse(&Message::Response(*answer).to_bytes(), Transport::Udp).is_ok());
                }
            }
        }
    }
}
