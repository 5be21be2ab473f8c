//! Identity tokens from the embedding site (UAC-3): a JWT (RFC 7519) signed with HS256 and the
//! center's identity secret. Only HS256 is accepted, the signature is checked in constant time,
//! and `exp` is required. A token this module accepts is the only thing that merges a visitor's
//! history into an identity; an email or name alone never does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use switchboard_core::Email;

/// Clock skew allowed between the site and Switchboard, in seconds.
const LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity token is not a JWT")]
    Malformed,
    #[error("the identity token must be signed with HS256")]
    WrongAlgorithm,
    #[error("the identity token's signature does not match")]
    BadSignature,
    #[error("the identity token has expired or is not valid yet")]
    Expired,
    #[error("the identity token's claims are not valid: {0}")]
    BadClaims(String),
}

/// What a verified token says about the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaims {
    /// The site's id for the consumer.
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The consumer's phone number as its digits (the OpenID `phone_number` claim), so their
    /// calls join their tickets.
    pub phone: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    email: Option<String>,
    name: Option<String>,
    phone_number: Option<String>,
}

/// Verifies a compact JWS and returns its claims.
pub fn verify(token: &str, secret: &str, now_unix: i64) -> Result<IdentityClaims, IdentityError> {
    if token.len() > 8 * 1024 {
        return Err(IdentityError::Malformed);
    }
    let token = token.trim();
    let (signing_input, signature) = token.rsplit_once('.').ok_or(IdentityError::Malformed)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(IdentityError::Malformed)?;
    if payload.contains('.') {
        return Err(IdentityError::Malformed);
    }
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| IdentityError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| IdentityError::Malformed)?;
    if header.alg != "HS256" {
        return Err(IdentityError::WrongAlgorithm);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| IdentityError::BadSignature)?;
    mac.update(signing_input.as_bytes());
    mac.verify_slice(&decode(signature)?)
        .map_err(|_| IdentityError::BadSignature)?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| IdentityError::BadClaims("not a JSON object".into()))?;
    let exp = claims
        .exp
        .ok_or_else(|| IdentityError::BadClaims("`exp` is required".into()))?;
    if now_unix > exp + LEEWAY_SECONDS
        || claims
            .nbf
            .is_some_and(|nbf| nbf > now_unix + LEEWAY_SECONDS)
    {
        return Err(IdentityError::Expired);
    }
    let subject = claims
        .sub
        .filter(|s| !s.trim().is_empty() && s.len() <= 200)
        .ok_or_else(|| IdentityError::BadClaims("`sub` must be 1 to 200 characters".into()))?;
    let email = claims
        .email
        .map(|e| Email::parse(&e).map(|e| e.as_str().to_owned()))
        .transpose()
        .map_err(|e| IdentityError::BadClaims(e.to_string()))?;
    let name = claims
        .name
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty());
    let phone = claims
        .phone_number
        .map(|p| {
            switchboard_core::text::phone_digits(&p).ok_or_else(|| {
                IdentityError::BadClaims("`phone_number` is not a phone number".into())
            })
        })
        .transpose()?;
    Ok(IdentityClaims {
        subject,
        email,
        name,
        phone,
    })
}

/// Signs claims as the embedding site would (for the demo page and tests).
pub fn sign(claims: &serde_json::Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_well_signed_current_hs256_tokens_pass() {
        let now = 1_800_000_000;
        let good = sign(
            &json!({"sub": "crm-42", "email": "ann@example.org", "exp": now + 300}),
            "s3cret",
        );
        assert_eq!(
            verify(&good, "s3cret", now).unwrap(),
            IdentityClaims {
                subject: "crm-42".into(),
                email: Some("ann@example.org".into()),
                name: None,
                phone: None
            }
        );
        assert_eq!(
            verify(&good, "other", now),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            verify(&good, "s3cret", now + 400),
            Err(IdentityError::Expired)
        );
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":1900000000}"#)
        );
        assert_eq!(
            verify(&unsigned, "s3cret", now),
            Err(IdentityError::WrongAlgorithm)
        );
        let mut tampered: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "crm-1", "exp": now + 300}).to_string());
        tampered[1] = &forged;
        assert_eq!(
            verify(&tampered.join("."), "s3cret", now),
            Err(IdentityError::BadSignature)
        );
        let no_exp = sign(&json!({"sub": "crm-42"}), "s3cret");
        assert!(matches!(
            verify(&no_exp, "s3cret", now),
            Err(IdentityError::BadClaims(_))
        ));
        let bad_email = sign(
            &json!({"sub": "crm-42", "exp": now + 10, "email": "nope"}),
            "s3cret",
        );
        assert!(matches!(
            verify(&bad_email, "s3cret", now),
            Err(IdentityError::BadClaims(_))
        ));
        assert_eq!(verify("a.b", "s3cret", now), Err(IdentityError::Malformed));
    }
}
