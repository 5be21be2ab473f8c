//! A local Twilio for tests, speaking what Twilio documents for the two things the SMS
//! connector uses: the Messages API's create (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded `To`, `From`, `Body`, optional `StatusCallback`, HTTP basic auth as the account
//! and its auth token) and the webhooks Twilio sends (inbound messages and status callbacks,
//! form-encoded and signed with `X-Twilio-Signature`).
//!
//! It checks our requests as Twilio would: 401 with error 20003 without the account's
//! credentials, 404 (20404) for another account's path, 400 with Twilio's error JSON for a
//! missing or malformed `To` (21211 / 21604), `From` (21603) or `Body` (21602). An accepted
//! message is answered 201 with the Message resource's JSON (`sid` `SM…`, `status` `queued`).
//! It can be told to answer the next sends with a 429 and `Retry-After` (error 20429), a 503,
//! or a 400 refusal. The signatures it puts on webhooks are computed here from Twilio's
//! description (HMAC-SHA1 keyed by the auth token over the URL and the sorted parameters,
//! base64), not with the server's code.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "twilio-auth-token-0123456789abcdef";
pub const OUR_NUMBER: &str = "+15550001111";

/// A message the fake accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
}

/// How to answer the next send instead of accepting it.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 429 with `Retry-After: {seconds}`.
    TooManyRequests(u64),
    /// 503.
    Unavailable,
    /// 400 with this Twilio error code.
    Refused(u32),
}

#[derive(Default)]
struct Inner {
    sent: Vec<Sent>,
    /// Every create request that reached the fake, answered or refused.
    attempts: usize,
    script: VecDeque<Answer>,
}

#[derive(Clone)]
pub struct FakeTwilio {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })
        .to_string(),
    )
        .into_response()
}

fn e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

async fn create_message(
    State(fake): State<FakeTwilio>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    let mut inner = fake.inner.lock().unwrap();
    inner.attempts += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if account != ACCOUNT_SID {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return error(StatusCode::BAD_REQUEST, 20001, "Unsupported content type");
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let Some(to) = field("To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if !e164(&to) {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    if field("From").as_deref() != Some(OUR_NUMBER) {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "The 'From' phone number is required.",
        );
    }
    let Some(text) = field("Body").filter(|b| !b.is_empty() && b.chars().count() <= 1600) else {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    match inner.script.pop_front() {
        Some(Answer::TooManyRequests(seconds)) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
            return response;
        }
        Some(Answer::Unavailable) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                20503,
                "Service Unavailable",
            )
        }
        Some(Answer::Refused(code)) => {
            return error(StatusCode::BAD_REQUEST, code, "The message cannot be sent")
        }
        None => {}
    }
    let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
    let sent = Sent {
        sid: sid.clone(),
        to: to.clone(),
        from: OUR_NUMBER.into(),
        body: text.clone(),
        status_callback: field("StatusCallback"),
    };
    inner.sent.push(sent);
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        json!({
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "body": text,
            "direction": "outbound-api",
            "from": OUR_NUMBER,
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
        })
        .to_string(),
    )
        .into_response()
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeTwilio {
            url: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::default(),
        };
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                axum::routing::post(create_message),
            )
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        fake
    }

    /// Answers the next sends with these, in order, then accepts again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts
    }
}

/// The `X-Twilio-Signature` of a webhook to `url` with these parameters, as Twilio documents
/// it: the full URL, then each parameter sorted by name as name followed by value, signed
/// with HMAC-SHA1 under the auth token, in base64.
pub fn sign(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = url.to_owned();
    for (name, value) in sorted {
        text.push_str(name);
        text.push_str(value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Posts a webhook as Twilio does: to `target` (where the server listens), signed for
/// `public_url` (the URL Twilio was given), with `signature` overriding the real one when
/// given (`Some("")` sends none). Returns the status and the body.
pub async fn post_webhook(
    target: &str,
    public_url: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> (reqwest::StatusCode, String) {
    let real = sign(AUTH_TOKEN, public_url, params);
    let mut request = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", "TwilioProxy/1.1")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish(),
        );
    match signature {
        Some("") => {}
        Some(forged) => request = request.header("x-twilio-signature", forged),
        None => request = request.header("x-twilio-signature", real),
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// An inbound message's parameters as Twilio sends them.
pub fn inbound<'a>(from: &'a str, body: &'a str, sid: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", OUR_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}
