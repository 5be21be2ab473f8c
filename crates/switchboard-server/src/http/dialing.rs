//! Dialling policies (class of service) and the audit log over HTTP: admins keep the policies
//! per center, role and team and read the audit log; anyone signed in can ask whether they may
//! dial a number before they do.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use super::require;
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_core::dialing::{DialPolicy, DialRefusal, NumberKind};
use switchboard_core::voice::PhoneNumber;
use switchboard_core::{Permission, Target, UserId};
use switchboard_services::dialing::DialError;
use switchboard_store::{AuditEntry, AuditFilter, PolicyScope};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies))
        .routes(routes!(put_policy, delete_policy))
        .routes(routes!(check_number))
        .routes(routes!(list_audit))
}

impl From<DialError> for ApiError {
    fn from(error: DialError) -> Self {
        match error {
            DialError::Refused(refusal) => {
                ApiError::new(StatusCode::FORBIDDEN, "dial_refused", refusal.to_string())
            }
            DialError::NoOutbound => ApiError::new(
                StatusCode::FORBIDDEN,
                "voice_outbound_not_allowed",
                error.to_string(),
            ),
            DialError::Emergency(refusal) => {
                ApiError::new(StatusCode::FORBIDDEN, refusal.code(), refusal.to_string())
            }
            DialError::Store(store) => store.into(),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialPolicyInput {
    /// Number kinds allowed: `national`, `premium_rate`, `international`, `satellite`
    /// (emergency numbers are always allowed).
    pub allowed: Vec<String>,
    /// Digit prefixes (optionally with `+`, matched against the number as dialled and in its
    /// E.164 form, so `+44` is a country) always allowed; `*` is everything.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Digit prefixes always refused (a deny beats an allow; never an emergency number).
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DialPolicyView {
    /// `center`, `role:<key>` or `team:<id>`.
    pub scope: String,
    pub allowed: Vec<String>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

fn policy_view(scope: &PolicyScope, policy: &DialPolicy) -> DialPolicyView {
    DialPolicyView {
        scope: scope.key(),
        allowed: policy
            .allowed
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        allow: policy.allow.clone(),
        deny: policy.deny.clone(),
    }
}

/// Dialling policies: the center's default, and per role and team (admins). A user's policy
/// is the union of their role's and teams' policies, else the center's, else national numbers
/// only.
#[utoipa::path(get, path = "/api/v1/dialing/policies", tag = "dialing", security(("session" = [])),
    responses((status = 200, body = [DialPolicyView]), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_policies(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<Json<Vec<DialPolicyView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let policies = app.services.store.list_dial_policies().await?;
    Ok(Json(
        policies
            .iter()
            .map(|(scope, policy)| policy_view(scope, policy))
            .collect(),
    ))
}

/// The scope a path names, which must exist.
async fn scope_of(app: &AppState, text: &str) -> ApiResult<PolicyScope> {
    let scope = PolicyScope::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            "the scope is center, role:<key> or team:<id>",
        )
    })?;
    match &scope {
        PolicyScope::Center => {}
        PolicyScope::Role(role) => {
            app.services.store.get_role(role).await?;
        }
        PolicyScope::Team(team) => {
            app.services.store.get_team(*team).await?;
        }
    }
    Ok(scope)
}

/// Sets a scope's dialling policy (admins). Audited.
#[utoipa::path(put, path = "/api/v1/dialing/policies/{scope}", tag = "dialing", security(("session" = [])),
    params(("scope" = String, Path, description = "center, role:<key> or team:<id>")), request_body = DialPolicyInput,
    responses((status = 200, body = DialPolicyView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody)))]
async fn put_policy(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(scope): ApiPath<String>,
    ApiJson(input): ApiJson<DialPolicyInput>,
) -> ApiResult<Json<DialPolicyView>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let scope = scope_of(&app, &scope).await?;
    let allowed = input
        .allowed
        .iter()
        .map(|k| NumberKind::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = DialPolicy {
        allowed,
        allow: input.allow,
        deny: input.deny,
    };
    policy.check()?;
    app.services.store.put_dial_policy(&scope, &policy).await?;
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.actor.user_id),
            "settings_changed",
            Some(format!("dial policy {}", scope.key())),
            format!(
                "allowed {:?}, allow {:?}, deny {:?}",
                policy
                    .allowed
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>(),
                policy.allow,
                policy.deny
            ),
        )
        .await;
    Ok(Json(policy_view(&scope, &policy)))
}

/// Removes a scope's dialling policy (admins). Audited.
#[utoipa::path(delete, path = "/api/v1/dialing/policies/{scope}", tag = "dialing", security(("session" = [])),
    params(("scope" = String, Path, description = "center, role:<key> or team:<id>")),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn delete_policy(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiPath(scope): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let scope = PolicyScope::parse(&scope).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            "the scope is center, role:<key> or team:<id>",
        )
    })?;
    app.services.store.delete_dial_policy(&scope).await?;
    app.services
        .audit
        .record(
            Utc::now(),
            Some(current.actor.user_id),
            "settings_changed",
            Some(format!("dial policy {}", scope.key())),
            "removed".into(),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// The number as the user would dial it.
    pub number: String,
}

#[derive(Serialize, ToSchema)]
pub struct DialCheck {
    pub number: String,
    /// `emergency`, `national`, `premium_rate`, `international` or `satellite`.
    pub kind: String,
    pub allowed: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// Whether the signed-in user may dial a number, and what kind of number it is (the dialer asks
/// before dialling; dialling checks again).
#[utoipa::path(get, path = "/api/v1/dialing/check", tag = "dialing", security(("session" = [])), params(CheckQuery),
    responses((status = 200, body = DialCheck), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
async fn check_number(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<CheckQuery>,
) -> ApiResult<Json<DialCheck>> {
    let number = PhoneNumber::parse("number", query.number.trim())?;
    let (kind, verdict) = app
        .services
        .dialing
        .evaluate(&current.actor, number.as_str())
        .await?;
    Ok(Json(DialCheck {
        number: number.as_str().to_owned(),
        kind: kind.as_str().to_owned(),
        allowed: verdict.is_ok(),
        reason: verdict.err().map(|r: DialRefusal| r.to_string()),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this action (`dial_refused`, `settings_changed`, …).
    pub action: Option<String>,
    /// Only what this user did.
    pub actor: Option<String>,
    /// Only from this time on.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub detail: String,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            id: entry.id.to_string(),
            at: entry.at,
            actor_id: entry.actor.map(|a| a.to_string()),
            action: entry.action,
            subject: entry.subject,
            detail: entry.detail,
        }
    }
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "dialing", security(("session" = [])), params(AuditQuery),
    responses((status = 200, body = [AuditView]), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
async fn list_audit(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditView>>> {
    require(&current.actor, Permission::SettingsEdit, Target::Center)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_field", "limit is 1 to 1000"));
    }
    let actor = query.actor.as_deref().map(UserId::parse).transpose()?;
    let entries = app
        .services
        .audit
        .list(AuditFilter {
            action: query.action,
            actor,
            since: query.since,
            limit,
        })
        .await?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}
