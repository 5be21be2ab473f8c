//! The test's SIP peers: a carrier that places calls (and keeps each call's dialog), and
//! agents' phones that register, answer, refuse and hang up. Messages are written as text and
//! parsed by `switchboard-sip`, so the engine sees exactly what a real peer would send.

use super::{udp, Center, ENGINE};
use std::cell::Cell;
use switchboard_sip::transaction::Peer as Address;
use switchboard_sip::{fields, parse, Message, Method, Request, Response, Transport};

fn message(text: String) -> Message {
    match parse(text.as_bytes(), Transport::Udp) {
        Ok(message) => message,
        Err(rejection) => panic!(
            "test message does not parse: {} in\n{text}",
            rejection.detail
        ),
    }
}

/// An audio offer or answer on `port` of `ip`.
pub fn sdp(ip: &str, port: u16, codecs: &str, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {codecs} 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

fn with_body(head: String, body: &str, content_type: &str) -> Message {
    let text = if body.is_empty() {
        format!("{head}Content-Length: 0\r\n\r\n")
    } else {
        format!(
            "{head}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    message(text)
}

/// A SIP endpoint at a fixed address.
pub struct Peer {
    pub peer: Address,
    pub host: String,
    next: Cell<u32>,
}

impl Peer {
    pub fn at(address: &str) -> Peer {
        Peer {
            peer: udp(address),
            host: address.to_owned(),
            next: Cell::new(0),
        }
    }

    pub fn ip(&self) -> String {
        self.peer.addr.ip().to_string()
    }

    fn next(&self) -> u32 {
        self.next.set(self.next.get() + 1);
        self.next.get()
    }

    fn branch(&self) -> String {
        format!(
            "z9hG4bK-{}-{}",
            self.peer.addr.to_string().replace([':', '.'], "-"),
            self.next()
        )
    }

    /// The next message the engine sent here, which must be a response with `status` (a 100
    /// Trying before it is skipped).
    pub fn expect_response(&self, center: &mut Center, status: u16) -> Response {
        loop {
            match center.take(&self.host) {
                Some(Message::Response(r)) if r.status == 100 && status != 100 => continue,
                Some(Message::Response(r)) if r.status == status => return r,
                other => panic!("{} expected a {status}, got {other:?}", self.host),
            }
        }
    }

    /// The next message the engine sent here, which must be a `method` request.
    pub fn expect_request(&self, center: &mut Center, method: Method) -> Request {
        match center.take(&self.host) {
            Some(Message::Request(r)) if r.method == method => r,
            other => panic!("{} expected a {method:?}, got {other:?}", self.host),
        }
    }

    /// Nothing more was sent here.
    pub fn expect_nothing(&self, center: &mut Center) {
        if let Some(message) = center.take(&self.host) {
            panic!("{} expected nothing, got {message:?}", self.host);
        }
    }

    pub fn register(&self, username: &str, authorization: Option<&str>) -> Message {
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let n = self.next();
        message(format!(
            "REGISTER sip:{ENGINE} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nFrom: <sip:{username}@{ENGINE}>;tag=r{n}\r\nTo: <sip:{username}@{ENGINE}>\r\nCall-ID: reg-{username}@{}\r\nCSeq: {n} REGISTER\r\nContact: <sip:{username}@{}>;expires=600\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n",
            self.host, self.branch(), self.host, self.host
        ))
    }

    /// Starts a call to `number`; `offer` is the SDP body (none for a late offer).
    pub fn call(&self, number: &str, offer: Option<String>) -> Outgoing {
        let n = self.next();
        let call = Outgoing {
            from: format!("<sip:5551234@{}>;tag=c{n}", self.host),
            to: format!("<sip:{number}@{ENGINE}>"),
            call_id: format!("call-{n}@{}", self.host),
            uri: format!("sip:{number}@{ENGINE}"),
            via_host: self.host.clone(),
            invite_branch: self.branch(),
            cseq: Cell::new(1),
            to_tag: std::cell::RefCell::new(None),
            offer,
        };
        call
    }

    /// An agent's phone, signed in as `username`, dialling `number`.
    pub fn dial(&self, username: &str, number: &str, offer: Option<String>) -> Outgoing {
        let mut call = self.call(number, offer);
        call.from = format!("<sip:{username}@{ENGINE}>;tag=d{}", self.next());
        call
    }

    /// Our answer to an INVITE the engine sent here.
    pub fn answer(&self, invite: &Request, status: u16, body: Option<String>) -> Message {
        let mut response = Response::to(invite, status, "Answer", Some("phone"));
        if status < 300 {
            response
                .headers
                .push("Contact", &format!("<sip:phone@{}>", self.host));
        }
        if let Some(body) = body {
            response.headers.push("Content-Type", "application/sdp");
            response.body = body.into_bytes();
        }
        Message::Response(response)
    }

    /// Rings: answers an INVITE the engine sent here with 180.
    pub fn ring(&self, center: &mut Center, invite: &Request) {
        center.deliver(self.peer, self.answer(invite, 180, None));
    }

    /// Answers an INVITE the engine sent here with 180, then 200 and an SDP answer on `port`.
    pub fn pick_up(&self, center: &mut Center, invite: &Request, port: u16) {
        let body = sdp(&self.ip(), port, "0 8", "sendrecv");
        self.ring(center, invite);
        center.deliver(self.peer, self.answer(invite, 200, Some(body)));
        self.expect_request(center, Method::Ack);
    }

    /// A request within the dialog the engine's `invite` created here (we answered it with the
    /// To tag `phone`).
    pub fn in_dialog(&self, invite: &Request, method: &str, cseq: u32, body: &str) -> Message {
        let to = invite.headers.get("To").unwrap_or_default();
        let from = invite.headers.get("From").unwrap_or_default();
        let call_id = invite.headers.get("Call-ID").unwrap_or_default();
        let target = invite
            .headers
            .get("Contact")
            .map(fields::uri_of)
            .unwrap_or(ENGINE)
            .to_owned();
        with_body(
            format!(
                "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nFrom: {to};tag=phone\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n",
                self.host,
                self.branch()
            ),
            body,
            "application/sdp",
        )
    }

    /// Our 200 to a request the engine sent within a dialog.
    pub fn ok(&self, request: &Request) -> Message {
        Message::Response(Response::to(request, 200, "OK", None))
    }
}

/// A call the carrier places, and its dialog once answered.
pub struct Outgoing {
    pub from: String,
    pub to: String,
    pub call_id: String,
    uri: String,
    via_host: String,
    pub invite_branch: String,
    cseq: Cell<u32>,
    pub to_tag: std::cell::RefCell<Option<String>>,
    offer: Option<String>,
}

impl Outgoing {
    fn head(&self, method: &str, cseq: u32, branch: &str, to: &str) -> String {
        format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:5551234@{}>\r\nMax-Forwards: 70\r\n",
            self.uri, self.via_host, self.from, self.call_id, self.via_host
        )
    }

    pub fn invite(&self) -> Message {
        let head = self.head("INVITE", 1, &self.invite_branch, &self.to);
        with_body(head, self.offer.as_deref().unwrap_or(""), "application/sdp")
    }

    /// The INVITE again after a challenge, with digest credentials: CSeq 2, a new branch.
    pub fn invite_authorized(&self, authorization: &str) -> Message {
        let head = self.head(
            "INVITE",
            2,
            &format!("{}-auth", self.invite_branch),
            &self.to,
        );
        let head = format!("{head}Authorization: {authorization}\r\n");
        with_body(head, self.offer.as_deref().unwrap_or(""), "application/sdp")
    }

    /// The ACK for a final refusal of the authorized INVITE.
    pub fn ack_authorized_refusal(&self) -> Message {
        let head = self.head(
            "ACK",
            2,
            &format!("{}-auth", self.invite_branch),
            &self.to_with_tag(),
        );
        with_body(head, "", "")
    }

    /// The ACK for the engine's 2xx answer to the authorized INVITE.
    pub fn ack_authorized(&self) -> Message {
        let head = self.head(
            "ACK",
            2,
            &format!("{}-auth-ack", self.invite_branch),
            &self.to_with_tag(),
        );
        with_body(head, "", "")
    }

    /// Notes the To tag of the engine's answer.
    pub fn answered(&self, response: &Response) {
        let tag = response
            .headers
            .get("To")
            .and_then(fields::tag)
            .map(str::to_owned);
        *self.to_tag.borrow_mut() = tag;
    }

    fn to_with_tag(&self) -> String {
        match self.to_tag.borrow().as_ref() {
            Some(tag) => format!("{};tag={tag}", self.to),
            None => self.to.clone(),
        }
    }

    pub fn ack(&self, body: &str) -> Message {
        let head = self.head(
            "ACK",
            1,
            &format!("{}-ack", self.invite_branch),
            &self.to_with_tag(),
        );
        with_body(head, body, "application/sdp")
    }

    /// The ACK for a final refusal of our INVITE: in the INVITE's own transaction (§17.1.1.3).
    pub fn ack_refusal(&self) -> Message {
        let head = self.head("ACK", 1, &self.invite_branch, &self.to_with_tag());
        with_body(head, "", "")
    }

    /// The ACK for the last re-INVITE sent with `request`.
    pub fn ack_last(&self) -> Message {
        let n = self.cseq.get();
        let head = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}-{n}-ack\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {n} ACK\r\nMax-Forwards: 70\r\n",
            self.uri, self.via_host, self.invite_branch, self.from, self.to_with_tag(), self.call_id
        );
        with_body(head, "", "")
    }

    pub fn cancel(&self) -> Message {
        let head = format!(
            "CANCEL {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\n",
            self.uri, self.via_host, self.invite_branch, self.from, self.to, self.call_id
        );
        with_body(head, "", "")
    }

    /// A new request within the dialog.
    pub fn request(&self, method: &str, body: &str, content_type: &str) -> Message {
        self.cseq.set(self.cseq.get() + 1);
        let n = self.cseq.get();
        let head = self.head(
            method,
            n,
            &format!("{}-{n}", self.invite_branch),
            &self.to_with_tag(),
        );
        with_body(head, body, content_type)
    }

    pub fn bye(&self) -> Message {
        self.request("BYE", "", "")
    }
}
