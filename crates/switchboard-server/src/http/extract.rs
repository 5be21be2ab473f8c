//! Extractors that turn every malformed request into an `ApiError` (JSON, stable code), and
//! the two ways of being authenticated: a portal session cookie, or an Apps API key.

use super::error::ApiError;
use crate::app::AppState;
use crate::secret;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine;
use chrono::Utc;
use serde::de::DeserializeOwned;
use switchboard_core::{Actor, User};
use switchboard_store::Session;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sb_session";

/// A JSON body; any problem with it is a 4xx `ApiError`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::bad_request("invalid_json", e.body_text())
                }
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as JSON with Content-Type: application/json",
                ),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than the API accepts",
                    )
                }
                other => ApiError::bad_request("invalid_body", other.body_text()),
            }),
        }
    }
}

/// The address of the peer that sent the request (the TCP peer; the server does not trust
/// forwarding headers). Unspecified when the server runs without connection information.
pub struct SourceAddress(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for SourceAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Ok(SourceAddress(address))
    }
}

/// Refuses a WebSocket upgrade from a page of another site (403 `origin_not_allowed`). The
/// session cookie is SameSite=Strict, but the WebSocket handshake is a GET that a browser
/// makes from any page, so the `Origin` it sends must be the server's own (its scheme and the
/// `Host` the request was sent to) or one of `allowed`. A request without `Origin` is not
/// from a browser page and passes.
pub fn check_origin(headers: &axum::http::HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        });
    if own || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this WebSocket is open only to the portal's own pages and the configured origins",
        ))
    }
}

/// A WebSocket handshake; a request that is not one is a 400 `websocket_expected` (426 when
/// the connection cannot be upgraded).
pub struct ApiWebSocket(pub axum::extract::ws::WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for ApiWebSocket {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map(ApiWebSocket)
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::UPGRADE_REQUIRED {
                    "upgrade_required"
                } else {
                    "websocket_expected"
                };
                ApiError::new(
                    if status.is_client_error() {
                        status
                    } else {
                        StatusCode::BAD_REQUEST
                    },
                    code,
                    format!(
                        "open this endpoint as a WebSocket: {}",
                        rejection.body_text()
                    ),
                )
            })
    }
}

/// Query parameters; a malformed query is a 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// Path parameters; a malformed path is a 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// The signed-in portal user, from the session cookie.
pub struct CurrentUser {
    pub user: User,
    pub actor: Actor,
    pub session: Session,
}

/// The session token in the request's cookies, if any.
pub fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
                .map(str::to_owned)
        })
}

impl CurrentUser {
    /// Resolves a session token to a user who may act.
    pub async fn from_token(app: &AppState, token: &str) -> Result<Self, ApiError> {
        let session = app
            .services
            .store
            .get_session(&secret::sha256_hex(token), Utc::now())
            .await?
            .ok_or_else(|| ApiError::unauthorized("the session has ended; sign in again"))?;
        let user = app
            .services
            .store
            .get_user(session.user_id)
            .await
            .map_err(|_| ApiError::unauthorized("the session's user is gone"))?;
        if user.disabled {
            return Err(ApiError::unauthorized("the user is disabled"));
        }
        let role = app.services.store.get_role(&user.role).await?;
        let actor = Actor::of(&user, role);
        Ok(Self {
            user,
            actor,
            session,
        })
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = session_token(parts).ok_or_else(|| ApiError::unauthorized("sign in first"))?;
        Self::from_token(app, &token).await
    }
}

/// An integration authenticated with an Apps API key and secret (HTTP basic).
pub struct AppsClient {
    pub key_id: String,
    /// What the key may do beyond the Apps API (`recordings`).
    pub scopes: Vec<String>,
}

impl FromRequestParts<AppState> for AppsClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let refuse = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the company key and secret with HTTP basic authentication",
            )
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(refuse)?;
        let encoded = value.strip_prefix("Basic ").ok_or_else(refuse)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| refuse())?;
        let text = String::from_utf8(decoded).map_err(|_| refuse())?;
        let (key_id, secret_text) = text.split_once(':').ok_or_else(refuse)?;
        let key = app
            .services
            .store
            .get_api_key(key_id)
            .await?
            .ok_or_else(refuse)?;
        if !secret::constant_time_eq(&secret::sha256_hex(secret_text), &key.secret_hash) {
            return Err(refuse());
        }
        Ok(Self {
            key_id: key.key_id,
            scopes: key.scopes,
        })
    }
}
