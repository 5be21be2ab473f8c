//! Reading and writing the header fields the transaction and dialog layers need: parameters,
//! tags, URIs inside name-addrs, CSeq and Via.

use crate::message::{Headers, Method};

/// A parameter's value (`;name=value`) from the part of a header value after its URI; `Some("")`
/// for a parameter without a value.
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let p = p.trim();
        let (key, val) = p.split_once('=').unwrap_or((p, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"'))
    })
}

/// The `tag` of a From or To value.
pub fn tag(value: &str) -> Option<&str> {
    param(value, "tag").filter(|t| !t.is_empty())
}

/// The URI inside a name-addr (`"Bob" <sip:bob@host>;tag=1` gives `sip:bob@host`) or an
/// addr-spec without brackets (parameters after it dropped).
pub fn uri_of(value: &str) -> &str {
    if let (Some(start), Some(end)) = (value.find('<'), value.rfind('>')) {
        if start < end {
            return value[start + 1..end].trim();
        }
    }
    value.split(';').next().unwrap_or("").trim()
}

/// The user part of a SIP URI (`sip:15550100@host;user=phone` gives `15550100`).
pub fn user_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next().unwrap_or(user);
    let user = user.split(':').next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// A URI's user part with its %-escapes undone (RFC 3261 §19.1.4: `%31555%30100` is
/// `15550100`); an escape that is not two hex digits stays as written.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[at + 1]), hex(bytes[at + 2])) {
                out.push((high * 16 + low) as u8);
                at += 3;
                continue;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The top Via's sent-by (`host:port`, lowercase), which with the branch identifies a server
/// transaction (RFC 3261 §17.2.3).
pub fn sent_by(headers: &Headers) -> Option<String> {
    let via = headers.all("Via").into_iter().next()?;
    let (_, rest) = via.trim().split_once(char::is_whitespace)?;
    let sent_by = rest.split([';', ',']).next()?.trim();
    (!sent_by.is_empty()).then(|| sent_by.to_ascii_lowercase())
}

/// The host and port of a SIP URI (`sip:agent1@10.0.0.5:5062;transport=tcp`).
pub fn host_port_of(uri: &str) -> Option<(&str, Option<u16>)> {
    let rest = uri.split_once(':')?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let rest = rest.split([';', '?']).next().unwrap_or(rest);
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host, port));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((rest, None)),
    }
}

/// CSeq's number and method. The parser has already checked the header is well formed.
pub fn cseq(headers: &Headers) -> Option<(u32, Method)> {
    let value = headers.get("CSeq")?;
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    let method = Method::parse(parts.next()?)?;
    Some((number, method))
}

/// The top Via's branch.
pub fn branch(headers: &Headers) -> Option<&str> {
    headers
        .all("Via")
        .first()
        .and_then(|via| param(via, "branch"))
        .filter(|b| !b.is_empty())
}

/// Adds `;name=value` to a header value, or replaces the parameter where the value has it.
pub fn with_param(value: &str, name: &str, new: &str) -> String {
    let (head, params) = match value.rfind('>') {
        Some(end) => value.split_at(end + 1),
        None => match value.find(';') {
            Some(at) => value.split_at(at),
            None => (value, ""),
        },
    };
    let mut out = head.to_owned();
    let mut replaced = false;
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let key = p.split('=').next().unwrap_or(p);
        if key.eq_ignore_ascii_case(name) {
            replaced = true;
            out.push_str(&format!(";{name}={new}"));
        } else {
            out.push(';');
            out.push_str(p);
        }
    }
    if !replaced {
        out.push_str(&format!(";{name}={new}"));
    }
    out
}
