//! SIP messages: parsing (strict, with the answer to give when a message is refused), building
//! responses to requests, and writing messages out.

use std::fmt::Write as _;

/// The largest message accepted (a datagram cannot be larger; a stream message over this is
/// refused rather than buffered).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How the message arrived: a datagram is one message; a stream is framed by Content-Length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A SIP method. Extension methods are kept by name; whether they are served is the UAS's call
/// (501 Not Implemented), not the parser's.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Refer,
    Message,
    Other(String),
}

impl Method {
    const KNOWN: [(Method, &'static str); 13] = [
        (Method::Invite, "INVITE"),
        (Method::Ack, "ACK"),
        (Method::Bye, "BYE"),
        (Method::Cancel, "CANCEL"),
        (Method::Options, "OPTIONS"),
        (Method::Register, "REGISTER"),
        (Method::Info, "INFO"),
        (Method::Prack, "PRACK"),
        (Method::Update, "UPDATE"),
        (Method::Subscribe, "SUBSCRIBE"),
        (Method::Notify, "NOTIFY"),
        (Method::Refer, "REFER"),
        (Method::Message, "MESSAGE"),
    ];

    /// Parses a method token (case-sensitive, as RFC 3261 §7.1 says).
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.chars().all(is_token_char) {
            return None;
        }
        Some(
            Self::KNOWN
                .iter()
                .find(|(_, name)| *name == text)
                .map_or_else(|| Method::Other(text.to_owned()), |(m, _)| m.clone()),
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Other(name) => name,
            known => Self::KNOWN
                .iter()
                .find(|(m, _)| m == known)
                .map_or("", |(_, name)| name),
        }
    }
}

/// `token` characters (RFC 3261 §25.1).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Compact forms (RFC 3261 §7.3.3) and the usual spelling of the headers we read.
const NAMES: [(&str, &str); 16] = [
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("max-forwards", "Max-Forwards"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("via", "Via"),
];

/// Headers that may appear once only.
const SINGLE: [&str; 6] = [
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Content-Length",
    "Max-Forwards",
];

fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some((_, full)) = NAMES.iter().find(|(short, _)| *short == lower) {
        return (*full).to_owned();
    }
    match lower.as_str() {
        "from" => "From".into(),
        "to" => "To".into(),
        "contact" => "Contact".into(),
        _ => name.to_owned(),
    }
}

/// Headers in order, names in their long form. Lookups ignore case.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, with comma-separated values split (for Via, Contact, …).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_commas(v))
            .collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((canonical(name), value.to_owned()));
    }

    /// Replaces every value of the header with one.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.push(name, value);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Splits a header value on commas that are outside quotes and angle brackets.
fn split_commas(value: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut angle) = (Vec::new(), 0, false, false);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// A message that cannot be taken, and the response to send when one can be built (a request
/// with the headers a response copies). Without one, the message is dropped (RFC 3261 §18.3).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
    /// What was wrong, for logs (and the response's Warning header).
    pub detail: String,
    pub answer: Option<Box<Response>>,
}

/// How long the first complete message in a stream buffer is, if the buffer holds one; `Err`
/// when the buffer cannot start a valid message (the stream should then be closed).
pub fn frame(buffer: &[u8]) -> Result<Option<usize>, Rejection> {
    // Keep-alive CRLFs between messages (RFC 5626) are skipped by the caller as 2-byte frames.
    if buffer.starts_with(b"\r\n") {
        return Ok(Some(2));
    }
    let Some(head_end) = find(buffer, b"\r\n\r\n") else {
        if buffer.len() > MAX_MESSAGE {
            return Err(bare(
                400,
                "Bad Request",
                "no end of headers within the size limit".into(),
            ));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| bare(400, "Bad Request", "headers are not UTF-8".into()))?;
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if canonical(name.trim()) == "Content-Length" {
                length = Some(value.trim().parse::<usize>().map_err(|_| {
                    bare(400, "Bad Request", "Content-Length is not a number".into())
                })?);
            }
        }
    }
    let length = length.ok_or_else(|| {
        bare(
            400,
            "Bad Request",
            "a stream message needs Content-Length".into(),
        )
    })?;
    let total = head_end + 4 + length;
    if total > MAX_MESSAGE {
        return Err(bare(
            413,
            "Request Entity Too Large",
            "message over the size limit".into(),
        ));
    }
    Ok((buffer.len() >= total).then_some(total))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bare(status: u16, reason: &'static str, detail: String) -> Rejection {
    Rejection {
        status,
        reason,
        detail,
        answer: None,
    }
}

/// Parses one message: a whole datagram, or one frame of a stream (see `frame`).
pub fn parse(bytes: &[u8], transport: Transport) -> Result<Message, Rejection> {
    if bytes.len() > MAX_MESSAGE {
        return Err(bare(
            413,
            "Request Entity Too Large",
            "message over the size limit".into(),
        ));
    }
    let (head_end, body_start) = match find(bytes, b"\r\n\r\n") {
        Some(end) => (end, end + 4),
        None => {
            return Err(bare(
                400,
                "Bad Request",
                "no empty line after the headers".into(),
            ))
        }
    };
    let head = std::str::from_utf8(&bytes[..head_end])
        .map_err(|_| bare(400, "Bad Request", "headers are not UTF-8".into()))?;
    let mut lines = unfold(head).into_iter();
    let start = lines.next().unwrap_or_default();
    let mut headers = Headers::default();
    let mut bad_header = None;
    for line in lines {
        match line.split_once(':') {
            Some((name, value))
                if !name.trim().is_empty()
                    && name.trim_end().chars().all(is_token_char)
                    && !name.starts_with([' ', '\t'])
                    && value_chars_ok(value) =>
            {
                headers.push(name.trim_end(), value.trim());
            }
            _ => bad_header = Some(line),
        }
    }
    let raw_body = &bytes[body_start..];

    if let Some(rest) = start.strip_prefix("SIP/") {
        return parse_response(rest, headers, raw_body, transport, bad_header)
            .map(Message::Response);
    }
    parse_request(&start, headers, raw_body, transport, bad_header).map(Message::Request)
}

/// Joins continuation lines (starting with a space or tab) to the line before (§7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        // The start line is never continued: only header lines (the second line on) are.
        let continues = line.starts_with([' ', '\t']) && lines.len() > 1;
        match lines.last_mut() {
            Some(last) if continues => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// The body, checked against Content-Length: a datagram may carry trailing bytes (ignored), never
/// fewer than announced (§18.3).
fn body(headers: &Headers, raw: &[u8], transport: Transport) -> Result<Vec<u8>, String> {
    let Some(text) = headers.get("Content-Length") else {
        return match transport {
            Transport::Udp => Ok(raw.to_vec()),
            Transport::Tcp => Err("a stream message needs Content-Length".into()),
        };
    };
    let length: usize = text
        .parse()
        .map_err(|_| format!("Content-Length `{text}` is not a number"))?;
    if raw.len() < length {
        return Err(format!(
            "Content-Length is {length} but the body has {} bytes",
            raw.len()
        ));
    }
    Ok(raw[..length].to_vec())
}

fn parse_response(
    rest: &str,
    headers: Headers,
    raw: &[u8],
    transport: Transport,
    bad_header: Option<String>,
) -> Result<Response, Rejection> {
    let drop = |detail: String| bare(400, "Bad Request", detail);
    let mut parts = rest.splitn(3, ' ');
    let (version, code, reason) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if version != "2.0" {
        return Err(drop(format!("response version SIP/{version}")));
    }
    let status: u16 = code
        .parse()
        .ok()
        .filter(|s| (100..700).contains(s) && code.len() == 3)
        .ok_or_else(|| drop(format!("status `{code}`")))?;
    if let Some(line) = bad_header {
        return Err(drop(format!(
            "malformed header line `{}`",
            line.chars().take(60).collect::<String>()
        )));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if headers.count(name) == 0 {
            return Err(drop(format!("response without {name}")));
        }
    }
    let body = body(&headers, raw, transport).map_err(drop)?;
    Ok(Response {
        status,
        reason: reason.to_owned(),
        headers,
        body,
    })
}

fn parse_request(
    start: &str,
    headers: Headers,
    raw: &[u8],
    transport: Transport,
    bad_header: Option<String>,
) -> Result<Request, Rejection> {
    // From here on a refusal is answered when the request has what a response copies.
    let answerable = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .all(|name| headers.count(name) > 0);
    let refuse = |status: u16, reason: &'static str, detail: String| {
        let answer = answerable.then(|| {
            let mut response = Response::to_headers(&headers, status, reason, None);
            response.headers.push(
                "Warning",
                &format!(
                    "399 switchboard \"{}\"",
                    detail
                        .chars()
                        .filter(|c| !c.is_control())
                        .map(|c| if c == '"' { '\'' } else { c })
                        .take(120)
                        .collect::<String>()
                ),
            );
            Box::new(response)
        });
        Rejection {
            status,
            reason,
            detail,
            answer,
        }
    };
    let parts: Vec<&str> = start.split(' ').collect();
    let [method_text, uri, version] = parts[..] else {
        return Err(refuse(
            400,
            "Bad Request",
            format!(
                "request line `{}`",
                start.chars().take(80).collect::<String>()
            ),
        ));
    };
    let method = Method::parse(method_text).ok_or_else(|| {
        refuse(
            400,
            "Bad Request",
            format!(
                "method `{}`",
                method_text.chars().take(40).collect::<String>()
            ),
        )
    })?;
    if !version.starts_with("SIP/") {
        return Err(refuse(
            400,
            "Bad Request",
            format!("version `{}`", version.chars().take(20).collect::<String>()),
        ));
    }
    if version != "SIP/2.0" {
        return Err(refuse(
            505,
            "Version Not Supported",
            format!("version `{}`", version.chars().take(20).collect::<String>()),
        ));
    }
    if let Some(line) = bad_header {
        return Err(refuse(
            400,
            "Bad Request",
            format!(
                "malformed header line `{}`",
                line.chars().take(60).collect::<String>()
            ),
        ));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if headers.count(name) == 0 {
            return Err(refuse(400, "Bad Request", format!("missing {name}")));
        }
    }
    for name in SINGLE {
        if headers.count(name) > 1 {
            return Err(refuse(
                400,
                "Bad Request",
                format!("{name} appears more than once"),
            ));
        }
    }
    for (name, list) in [
        ("From", false),
        ("To", false),
        ("Contact", true),
        ("Via", true),
    ] {
        for value in headers.all(name) {
            if let Err(problem) = check_structure(value, list) {
                return Err(refuse(400, "Bad Request", format!("{name}: {problem}")));
            }
        }
    }
    let cseq = headers.get("CSeq").unwrap_or_default();
    let (number, cseq_method) = cseq
        .split_once([' ', '\t'])
        .map(|(n, m)| (n, m.trim()))
        .unwrap_or((cseq, ""));
    let valid_number = number.parse::<u32>().is_ok_and(|n| n < 1 << 31);
    if !valid_number || Method::parse(cseq_method).as_ref() != Some(&method) {
        return Err(refuse(
            400,
            "Bad Request",
            format!(
                "CSeq `{}` does not match the request",
                cseq.chars().take(40).collect::<String>()
            ),
        ));
    }
    if let Some(hops) = headers.get("Max-Forwards") {
        if hops.parse::<u8>().is_err() {
            return Err(refuse(
                400,
                "Bad Request",
                format!(
                    "Max-Forwards `{}`",
                    hops.chars().take(20).collect::<String>()
                ),
            ));
        }
    }
    check_uri(uri).map_err(|(status, reason, detail)| refuse(status, reason, detail))?;
    let body =
        body(&headers, raw, transport).map_err(|detail| refuse(400, "Bad Request", detail))?;
    Ok(Request {
        method,
        uri: uri.to_owned(),
        headers,
        body,
    })
}

/// Whether a header value's characters are allowed: no control character but tab, except right
/// after a backslash inside a quoted string, where RFC 3261 §25.1's quoted-pair allows any
/// but CR and LF (%x00-09 / %x0B-0C / %x0E-7F).
fn value_chars_ok(value: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if c == '\r' || c == '\n' || !c.is_ascii() {
                return false;
            }
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_control() && c != '\t' => return false,
            _ => {}
        }
    }
    true
}

/// Checks the structure of a name-addr or Via value outside its quoted strings and angle
/// brackets: quotes must close (RFC 4475 §3.1.2.6), and parameters and list elements must not
/// be empty (`;;`, `;,`, `,,`, a trailing `;` or `,`: §3.1.2.1). A single-valued header
/// (`list` false) has no comma outside brackets and quotes.
fn check_structure(value: &str, list: bool) -> Result<(), &'static str> {
    let (mut quoted, mut escaped, mut bracket) = (false, false, false);
    // The last separator seen with nothing but whitespace after it.
    let mut open: Option<char> = None;
    let mut started = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if bracket {
            if c == '>' {
                bracket = false;
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => bracket = true,
            ';' | ',' => {
                if c == ',' && !list {
                    return Err("a list where one value belongs");
                }
                if open.is_some() || (c == ',' && !started) {
                    return Err("an empty parameter or list element");
                }
                open = Some(c);
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        started = true;
        open = None;
    }
    if quoted || escaped {
        return Err("a quoted string that does not end");
    }
    if bracket {
        return Err("an angle bracket that does not close");
    }
    if open.is_some() {
        return Err("an empty parameter or list element at the end");
    }
    Ok(())
}

/// A Request-URI must be an absolute URI; we serve `sip`, `sips` and `tel` (others get 416).
fn check_uri(uri: &str) -> Result<(), (u16, &'static str, String)> {
    let bad = || {
        (
            400,
            "Bad Request",
            format!("Request-URI `{}`", uri.chars().take(80).collect::<String>()),
        )
    };
    let (scheme, rest) = uri.split_once(':').ok_or_else(bad)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok
        || rest.is_empty()
        || uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(bad());
    }
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err((416, "Unsupported URI Scheme", format!("scheme `{scheme}`")));
    }
    Ok(())
}

impl Response {
    /// A response to a request (RFC 3261 §8.2.6): its Via headers in order, From, To (with
    /// `to_tag` added when the request's To has none and this is not a 100), Call-ID and CSeq.
    pub fn to(request: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        Self::to_headers(&request.headers, status, reason, to_tag)
    }

    fn to_headers(request: &Headers, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for via in request.all("Via") {
            headers.push("Via", via);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(value) = request.get(name) {
                let value = match (name, to_tag) {
                    ("To", Some(tag)) if status != 100 && !has_tag(value) => {
                        format!("{value};tag={tag}")
                    }
                    _ => value.to_owned(),
                };
                headers.push(name, &value);
            }
        }
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

/// Whether a From/To value has a `tag` parameter (outside the URI's angle brackets).
pub fn has_tag(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params
        .split(';')
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

impl Message {
    /// The message as bytes, with Content-Length set to the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (mut text, headers, body) = match self {
            Message::Request(r) => (
                format!("{} {} SIP/2.0\r\n", r.method.as_str(), r.uri),
                &r.headers,
                &r.body,
            ),
            Message::Response(r) => (
                format!("SIP/2.0 {} {}\r\n", r.status, r.reason),
                &r.headers,
                &r.body,
            ),
        };
        for (name, value) in headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"))
        {
            let _ = write!(text, "{name}: {value}\r\n");
        }
        let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len());
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }
}
