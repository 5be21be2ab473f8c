//! Twilio's wire: the Messages REST API's send (a form POST with HTTP basic auth as the
//! account) and its answers, and the `X-Twilio-Signature` of the webhooks Twilio sends us
//! (HMAC-SHA1, keyed by the auth token, over the full URL followed by every POST parameter
//! sorted by name, each as name then value; base64).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

/// Twilio's API unless the settings name another base (tests point it at a fake).
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// The signature Twilio puts on a webhook to `url` with these form parameters.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(signed_mac(auth_token, url, params).finalize().into_bytes())
}

fn signed_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Sorted by name; a name sent twice keeps its values in the order sent (a stable sort).
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `given` is the signature of this webhook (compared in constant time).
pub fn signature_matches(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    given: &str,
) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else {
        return false;
    };
    signed_mac(auth_token, url, params)
        .verify_slice(&given)
        .is_ok()
}

/// The parts of a Message resource we read (the 201 answer to a send).
#[derive(Deserialize)]
pub struct MessageResource {
    pub sid: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// Twilio's error body (`{"code": 21211, "message": "...", "more_info": ..., "status": 400}`).
#[derive(Deserialize)]
pub struct ErrorResource {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The text to keep of a refusal: Twilio's code and message when it sent its error JSON.
pub fn refusal_text(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorResource>(body) {
        Ok(ErrorResource {
            code: Some(code),
            message,
        }) => format!(
            "Twilio answered {status}: error {code}: {}",
            message.unwrap_or_default()
        ),
        _ => format!(
            "Twilio answered {status}: {}",
            body.chars().take(200).collect::<String>()
        ),
    }
}
