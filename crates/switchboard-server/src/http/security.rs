//! Sign-in throttles over HTTP: admins see which source addresses and accounts are being
//! slowed or refused after failed sign-ins, and clear one (a user locked out behind a shared
//! address, say). Clearing is audited.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_core::{Permission, Target};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_throttles))
        .routes(routes!(clear_throttle))
}

#[derive(Serialize, ToSchema)]
pub struct ThrottleView {
    /// `source:<address>` or `account:<username>`.
    pub key: String,
    /// Failed sign-ins that still count (they are forgotten 15 minutes after the first).
    pub failures: u32,
    pub since: DateTime<Utc>,
    /// Until when attempts are refused outright, if they are.
    pub refused_until: Option<DateTime<Utc>>,
}

/// Source addresses and accounts with failed sign-ins that still count, most failures first
/// (admins).
#[utoipa::path(get, path = "/api/v1/security/throttles", tag = "auth", security(("session" = [])),
    responses((status = 200, body = [ThrottleView]), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_throttles(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<ThrottleView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let list = app
        .login_throttle
        .lock()
        .map(|t| t.list(Utc::now()))
        .unwrap_or_default();
    Ok(Json(
        list.into_iter()
            .map(|t| ThrottleView {
                key: t.key,
                failures: t.failures,
                since: t.since,
                refused_until: t.verdict_until,
            })
            .collect(),
    ))
}

/// Forgets a source's or an account's failed sign-ins (admins). Audited as
/// `throttle_cleared`.
#[utoipa::path(delete, path = "/api/v1/security/throttles/{key}", tag = "auth", security(("session" = [])),
    params(("key" = String, Path, description = "source:<address> or account:<username>", pattern = "^(source|account):.+$")),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn clear_throttle(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    // Accounts are throttled under their lowercased names, as sign-in matches them.
    let key = match key.strip_prefix("account:") {
        Some(name) => format!("account:{}", name.trim().to_lowercase()),
        None => key,
    };
    let valid = key
        .strip_prefix("source:")
        .map(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .or_else(|| key.strip_prefix("account:").map(|name| !name.is_empty()))
        .unwrap_or(false);
    if !valid {
        return Err(ApiError::bad_request(
            "invalid_path",
            "a throttle is source:<address> or account:<username>",
        ));
    }
    let cleared = app
        .login_throttle
        .lock()
        .map(|mut t| t.clear(&key))
        .unwrap_or(false);
    if !cleared {
        return Err(ApiError::not_found("throttle"));
    }
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.user.id),
            "throttle_cleared",
            Some(key.clone()),
            format!(
                "{} cleared the sign-in throttle {key}",
                current.user.username.as_str()
            ),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
