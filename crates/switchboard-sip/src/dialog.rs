//! Dialogs (RFC 3261 §12): what both ends remember after an INVITE is answered, and the
//! requests sent within one (ACK, BYE, re-INVITE, INFO).

use crate::fields::{cseq, tag, uri_of};
use crate::message::{Headers, Method, Request, Response};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    /// Our From (as UAC) or To (as UAS) value, with our tag.
    pub local: String,
    /// The peer's, with their tag.
    pub remote: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Where requests within the dialog go (the peer's Contact).
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// Our Contact header value.
    pub contact: String,
}

impl Dialog {
    /// The dialog a UAS creates when it answers `request` (an INVITE) with `local_tag`.
    pub fn as_uas(request: &Request, local_tag: &str, contact: &str) -> Dialog {
        let headers = &request.headers;
        let to = headers.get("To").unwrap_or_default();
        let local = if tag(to).is_some() {
            to.to_owned()
        } else {
            format!("{to};tag={local_tag}")
        };
        let remote = headers.get("From").unwrap_or_default().to_owned();
        Dialog {
            call_id: headers.get("Call-ID").unwrap_or_default().to_owned(),
            remote_tag: tag(&remote).unwrap_or_default().to_owned(),
            local,
            remote,
            local_tag: local_tag.to_owned(),
            remote_target: headers
                .get("Contact")
                .map(uri_of)
                .unwrap_or(request.uri.as_str())
                .to_owned(),
            route_set: headers
                .all("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_cseq: 0,
            contact: contact.to_owned(),
        }
    }

    /// The dialog a UAC holds once `response` (a 2xx or a 1xx with a To tag) answers `request`.
    pub fn as_uac(request: &Request, response: &Response) -> Dialog {
        let local = request.headers.get("From").unwrap_or_default().to_owned();
        let remote = response.headers.get("To").unwrap_or_default().to_owned();
        let mut route_set: Vec<String> = response
            .headers
            .all("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        Dialog {
            call_id: request
                .headers
                .get("Call-ID")
                .unwrap_or_default()
                .to_owned(),
            local_tag: tag(&local).unwrap_or_default().to_owned(),
            remote_tag: tag(&remote).unwrap_or_default().to_owned(),
            local,
            remote,
            remote_target: response
                .headers
                .get("Contact")
                .map(uri_of)
                .unwrap_or(request.uri.as_str())
                .to_owned(),
            route_set,
            local_cseq: cseq(&request.headers).map_or(1, |(n, _)| n),
            contact: request
                .headers
                .get("Contact")
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// A new request within the dialog, with the next CSeq and a Via for `via` (sent-by and
    /// branch), e.g. `SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK…;rport`.
    pub fn request(&mut self, method: Method, via: &str) -> Request {
        self.local_cseq += 1;
        let number = self.local_cseq;
        self.build(method, via, number)
    }

    /// The ACK to a 2xx for the INVITE with CSeq `number`.
    pub fn ack(&self, number: u32, via: &str) -> Request {
        self.build(Method::Ack, via, number)
    }

    fn build(&self, method: Method, via: &str, number: u32) -> Request {
        let mut headers = Headers::default();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        for route in &self.route_set {
            headers.push("Route", route);
        }
        headers.push("From", &self.local);
        headers.push("To", &self.remote);
        headers.push("Call-ID", &self.call_id);
        headers.push("CSeq", &format!("{number} {}", method.as_str()));
        if !self.contact.is_empty() {
            headers.push("Contact", &self.contact);
        }
        Request {
            method,
            uri: self.remote_target.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// Whether an in-dialog request belongs to this dialog (Call-ID and both tags). A peer
    /// that sent no From tag (RFC 2543) has the empty tag on both sides (§12.2.2).
    pub fn matches(&self, request: &Request) -> bool {
        let headers = &request.headers;
        headers.get("Call-ID") == Some(self.call_id.as_str())
            && headers.get("From").and_then(tag).unwrap_or_default() == self.remote_tag
            && headers.get("To").and_then(tag) == Some(self.local_tag.as_str())
    }
}
