//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617 with MD5 and qop=auth): the
//! challenge, the check of a credential against a stored HA1, and the client's answer.

use md5::{Digest, Md5};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

/// HA1 = MD5(username:realm:password): what is stored instead of a SIP password.
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{username}:{realm}:{password}"))
}

/// The value of a WWW-Authenticate (or Proxy-Authenticate) header.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}")
}

/// The parameters of an Authorization header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

/// Parses `Digest username="…", realm="…", …`; `None` when it is not a digest credential or a
/// required parameter is missing.
pub fn parse(value: &str) -> Option<Credentials> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut credentials = Credentials::default();
    let (mut has_user, mut has_response) = (false, false);
    for (name, value) in split_params(params) {
        match name.to_ascii_lowercase().as_str() {
            "username" => {
                credentials.username = value;
                has_user = true;
            }
            "realm" => credentials.realm = value,
            "nonce" => credentials.nonce = value,
            "uri" => credentials.uri = value,
            "response" => {
                credentials.response = value.to_ascii_lowercase();
                has_response = true;
            }
            "algorithm" => credentials.algorithm = Some(value),
            "qop" => credentials.qop = Some(value),
            "nc" => credentials.nc = Some(value),
            "cnonce" => credentials.cnonce = Some(value),
            _ => {}
        }
    }
    (has_user && has_response && !credentials.nonce.is_empty()).then_some(credentials)
}

/// Splits `a="x, y", b=z` into pairs, honouring quotes.
fn split_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match c {
                    _ if escaped => {
                        value.push(c);
                        escaped = false;
                    }
                    '\\' => escaped = true,
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        pairs.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    pairs
}

/// The expected `response` for a credential, given the stored HA1 and the request's method.
pub fn expected_response(ha1: &str, method: &str, credentials: &Credentials) -> String {
    let ha2 = md5_hex(&format!("{method}:{}", credentials.uri));
    match (&credentials.qop, &credentials.nc, &credentials.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => md5_hex(&format!(
            "{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}",
            credentials.nonce
        )),
        _ => md5_hex(&format!("{ha1}:{}:{ha2}", credentials.nonce)),
    }
}

/// Whether a credential proves knowledge of the password behind `ha1`. Compared in constant
/// time.
pub fn verify(ha1: &str, method: &str, credentials: &Credentials) -> bool {
    if credentials
        .algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
    {
        return false;
    }
    if credentials
        .qop
        .as_deref()
        .is_some_and(|q| !q.eq_ignore_ascii_case("auth"))
    {
        return false;
    }
    let expected = expected_response(ha1, method, credentials);
    expected.len() == credentials.response.len()
        && expected
            .bytes()
            .zip(credentials.response.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The Authorization value a client sends in answer to a challenge (for outbound trunks).
pub fn answer(
    username: &str,
    password: &str,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let credentials = Credentials {
        username: username.into(),
        realm: realm.into(),
        nonce: nonce.into(),
        uri: uri.into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some(cnonce.into()),
        ..Default::default()
    };
    let response = expected_response(&ha1(username, realm, password), method, &credentials);
    format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\""
    )
}

/// Reads realm and nonce out of a challenge header.
pub fn parse_challenge(value: &str) -> Option<(String, String)> {
    let (scheme, params) = value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let params = split_params(params);
    let find = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    Some((find("realm")?, find("nonce")?))
}
