//! Sign-in with password and optional TOTP, sign-out, the current session, two-factor
//! enrolment (RFC 6238) and password change.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, CurrentUser, SourceAddress, SESSION_COOKIE};
use super::wire::{LoginInput, PasswordChange, SessionView, TotpCode, TotpEnrolment, UserView};
use crate::app::AppState;
use crate::secret;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use switchboard_core::throttle::Verdict;
use switchboard_core::{User, Username};
use switchboard_store::Session;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(totp_enroll))
        .routes(routes!(totp_confirm))
        .routes(routes!(totp_disable))
        .routes(routes!(step_up))
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 256;

pub fn check_password_policy(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// How long a sign-in waits for a hashing slot before it is refused with 503.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Takes a password hashing slot, waiting a moment for one; refuses with 503 `busy` when
/// every slot stays taken, so a flood of sign-ins costs a bounded amount of memory.
async fn hashing_slot(app: &AppState) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
    let slots = app.password_hashing.clone();
    match tokio::time::timeout(HASHING_WAIT, slots.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is checking too many passwords at once; try again in a second",
        )
        .retry_after(std::time::Duration::from_secs(1))),
    }
}

/// Hashes a password on the blocking pool (argon2 is slow on purpose), in a hashing slot.
pub async fn hash_password(app: &AppState, password: String) -> ApiResult<String> {
    let permit = hashing_slot(app).await?;
    // The slot moves into the blocking task, so it is held until argon2 is done even when
    // the request is dropped.
    tokio::task::spawn_blocking(move || {
        let hash = secret::hash_password(&password);
        drop(permit);
        hash
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))
}

/// Checks a password against a hash on the blocking pool, in a hashing slot and with the
/// slot's reused memory.
async fn verify_password(app: &AppState, password: String, hash: String) -> ApiResult<bool> {
    let permit = hashing_slot(app).await?;
    let pool = app.hashing_memory.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let mut memory = pool
            .lock()
            .ok()
            .and_then(|mut buffers| buffers.pop())
            .unwrap_or_default();
        let ok = secret::verify_password_in(&password, &hash, &mut memory);
        if let Ok(mut buffers) = pool.lock() {
            buffers.push(memory);
        }
        drop(permit);
        ok
    })
    .await
    .unwrap_or(false))
}

fn unix_seconds() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or_default()
}

/// Checks a TOTP code and marks its time step used, so it cannot be replayed.
async fn accept_totp(app: &AppState, user: &User, secret_text: &str, code: &str) -> ApiResult<()> {
    let step = secret::check_totp(secret_text, code.trim(), unix_seconds()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "totp_invalid",
            "the code is wrong or expired",
        )
    })?;
    if !app
        .services
        .store
        .use_totp_step(user.id, step as i64)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "totp_invalid",
            "that code was used already; wait for the next one",
        ));
    }
    Ok(())
}

pub async fn session_view(
    app: &AppState,
    user: &User,
    session: &Session,
) -> ApiResult<SessionView> {
    let role = app.services.store.get_role(&user.role).await?;
    Ok(SessionView {
        user: UserView::from(user),
        mfa: session.mfa,
        permissions: role
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        expires_at: session.expires_at,
    })
}

/// A sign-in refused by the throttle: 429 `too_many_attempts` with `Retry-After`.
fn throttled(wait: chrono::Duration) -> ApiError {
    let wait = wait.to_std().unwrap_or_default();
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!(
            "too many failed sign-ins; try again in {} seconds",
            wait.as_secs().max(1)
        ),
    )
    .retry_after(wait)
}

/// Signs in and sets the session cookie (HttpOnly, SameSite=Strict). Failed attempts are
/// throttled by source address and by account (growing delays, then 429 with Retry-After);
/// an account's owner signing in from an address they used before is not held back by a
/// stranger's failures. 503 `busy` when every password hashing slot is taken.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = SessionView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody),
        (status = 429, description = "too_many_attempts: throttled; see Retry-After", body = super::error::ErrorBody),
        (status = 503, description = "busy: every password hashing slot is taken; see Retry-After", body = super::error::ErrorBody)))]
async fn login(
    State(app): State<AppState>,
    SourceAddress(source): SourceAddress,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult<impl IntoResponse> {
    let name = input.username.trim().to_lowercase();
    throttle(&app, source, &name).await?;
    let failed = |app: &AppState| {
        if let Ok(mut throttle) = app.login_throttle.lock() {
            throttle.failure(source, &name, Utc::now());
        }
    };
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        )
    };
    let user = match Username::parse(&name) {
        Ok(username) => app.services.store.find_user(&username).await?,
        Err(_) => None,
    };
    let credentials = match &user {
        Some(user) => Some(app.services.store.credentials(user.id).await?),
        None => None,
    };
    let hash = credentials
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .unwrap_or_else(|| secret::decoy_hash().to_owned());
    let password_ok = verify_password(&app, input.password, hash).await?;
    let (Some(user), Some(credentials), true) = (user, credentials, password_ok) else {
        failed(&app);
        return Err(refused());
    };
    if user.disabled || credentials.password_hash.is_none() {
        return Err(refused());
    }
    let mfa = credentials.totp_enabled;
    if mfa {
        let Some(code) = input.totp_code.as_deref() else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "totp_required",
                "enter the code from your authenticator app",
            ));
        };
        let secret_text = credentials.totp_secret.as_deref().unwrap_or_default();
        if let Err(error) = accept_totp(&app, &user, secret_text, code).await {
            failed(&app);
            return Err(error);
        }
    }
    let now = Utc::now();
    if let Ok(mut throttle) = app.login_throttle.lock() {
        throttle.success(source, &name, now);
    }
    let token = secret::random_token(32);
    let session = Session {
        token_hash: secret::sha256_hex(&token),
        user_id: user.id,
        created_at: now,
        expires_at: now + Duration::hours(app.config.session_hours),
        mfa,
        // A sign-in with a code counts as a step-up (recordings need one in the last 15 min).
        step_up_at: mfa.then_some(now),
    };
    app.services.store.create_session(&session).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        app.config.session_hours * 3600,
        if app.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?,
    );
    Ok((
        headers,
        axum::Json(session_view(&app, &user, &session).await?),
    ))
}

/// Ends the session and clears the cookie. The user goes offline, and the chats they held go
/// back to their queues keeping their places.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("session" = [])), responses((status = 204)))]
async fn logout(State(app): State<AppState>, current: CurrentUser) -> ApiResult<impl IntoResponse> {
    app.services.contacts.agent_gone(current.user.id).await?;
    app.services
        .store
        .delete_session(&current.session.token_hash)
        .await?;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]))
}

/// The signed-in user and their permissions.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("session" = [])), responses((status = 200, body = SessionView), (status = 401, body = super::error::ErrorBody)))]
async fn me(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<axum::Json<SessionView>> {
    Ok(axum::Json(
        session_view(&app, &current.user, &current.session).await?,
    ))
}

/// Changes one's own password; every session of the user ends, including this one.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("session" = [])), request_body = PasswordChange, responses((status = 204), (status = 400, body = super::error::ErrorBody)))]
async fn change_password(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    check_password_policy(&input.new_password)?;
    let stored = app
        .services
        .store
        .credentials(current.user.id)
        .await?
        .password_hash
        .unwrap_or_default();
    if !verify_password(&app, input.current_password, stored).await? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the current password is wrong",
        ));
    }
    let hash = hash_password(&app, input.new_password).await?;
    app.services
        .store
        .set_password(current.user.id, &hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts two-factor enrolment: a new secret, pending until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/auth/totp/enroll", tag = "auth", security(("session" = [])), responses((status = 200, body = TotpEnrolment), (status = 409, body = super::error::ErrorBody)))]
async fn totp_enroll(
    State(app): State<AppState>,
    current: CurrentUser,
) -> ApiResult<axum::Json<TotpEnrolment>> {
    if current.user.totp_enabled {
        return Err(ApiError::conflict(
            "two-factor sign-in is already enabled; disable it first to enrol again",
        ));
    }
    let secret_text = secret::new_totp_secret();
    app.services
        .store
        .set_totp(current.user.id, Some(&secret_text), false)
        .await?;
    let issuer = app.services.store.center_settings().await?.name;
    let otpauth_uri = secret::totp_uri(&secret_text, current.user.username.as_str(), &issuer);
    Ok(axum::Json(TotpEnrolment {
        secret: secret_text,
        otpauth_uri,
    }))
}

/// Confirms enrolment with a current code; from then on sign-in needs a code.
#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", tag = "auth", security(("session" = [])), request_body = TotpCode, responses((status = 204), (status = 401, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn totp_confirm(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<TotpCode>,
) -> ApiResult<StatusCode> {
    let credentials = app.services.store.credentials(current.user.id).await?;
    if credentials.totp_enabled {
        return Err(ApiError::conflict("two-factor sign-in is already enabled"));
    }
    let secret_text = credentials
        .totp_secret
        .ok_or_else(|| ApiError::conflict("start enrolment first"))?;
    accept_totp(&app, &current.user, &secret_text, &input.code).await?;
    app.services
        .store
        .set_totp(current.user.id, Some(&secret_text), true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns two-factor sign-in off; needs a current code.
#[utoipa::path(post, path = "/api/v1/auth/totp/disable", tag = "auth", security(("session" = [])), request_body = TotpCode, responses((status = 204), (status = 401, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
async fn totp_disable(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiJson(input): ApiJson<TotpCode>,
) -> ApiResult<StatusCode> {
    let credentials = app.services.store.credentials(current.user.id).await?;
    let (true, Some(secret_text)) = (credentials.totp_enabled, credentials.totp_secret) else {
        return Err(ApiError::conflict("two-factor sign-in is not enabled"));
    };
    accept_totp(&app, &current.user, &secret_text, &input.code).await?;
    app.services
        .store
        .set_totp(current.user.id, None, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long a step-up lasts: a session that passed a TOTP check this recently may download
/// recordings (REC-5).
pub const STEP_UP_MINUTES: i64 = 15;

/// Whether the session passed a TOTP check (sign-in or step-up) within `STEP_UP_MINUTES`.
pub fn stepped_up(session: &Session, now: chrono::DateTime<Utc>) -> bool {
    session
        .step_up_at
        .is_some_and(|at| at <= now && now - at < Duration::minutes(STEP_UP_MINUTES))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct StepUpView {
    /// Until when the session may download recordings without another code.
    pub valid_until: chrono::DateTime<Utc>,
}

/// Confirms the user is at the keyboard with a current TOTP code; for the next 15 minutes the
/// session may download call recordings. Needs two-factor sign-in enabled (409 otherwise).
/// Wrong codes count with failed sign-ins, so guessing is throttled the same way (429).
#[utoipa::path(post, path = "/api/v1/auth/step-up", tag = "auth", security(("session" = [])), request_body = TotpCode,
    responses((status = 200, body = StepUpView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 409, description = "totp_not_enabled: enrol in two-factor sign-in first", body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 429, description = "too_many_attempts: throttled; see Retry-After", body = super::error::ErrorBody)))]
async fn step_up(
    State(app): State<AppState>,
    SourceAddress(source): SourceAddress,
    current: CurrentUser,
    ApiJson(input): ApiJson<TotpCode>,
) -> ApiResult<axum::Json<StepUpView>> {
    let name = current.user.username.as_str().to_owned();
    throttle(&app, source, &name).await?;
    let credentials = app.services.store.credentials(current.user.id).await?;
    let (true, Some(secret_text)) = (credentials.totp_enabled, credentials.totp_secret) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "totp_not_enabled",
            "enable two-factor sign-in first: recordings need a code from your authenticator app",
        ));
    };
    if let Err(error) = accept_totp(&app, &current.user, &secret_text, &input.code).await {
        if let Ok(mut throttle) = app.login_throttle.lock() {
            throttle.failure(source, &name, Utc::now());
        }
        return Err(error);
    }
    let now = Utc::now();
    app.services
        .store
        .step_up_session(&current.session.token_hash, now)
        .await?;
    Ok(axum::Json(StepUpView {
        valid_until: now + Duration::minutes(STEP_UP_MINUTES),
    }))
}

/// Waits as the sign-in throttle says for this source and account, or refuses (429).
async fn throttle(app: &AppState, source: std::net::IpAddr, name: &str) -> ApiResult<()> {
    let verdict = app
        .login_throttle
        .lock()
        .map(|t| t.check(source, name, Utc::now()))
        .unwrap_or(Verdict::Go);
    match verdict {
        Verdict::Go => Ok(()),
        Verdict::Delay(wait) => {
            tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
            Ok(())
        }
        Verdict::Refuse(wait) => Err(throttled(wait)),
    }
}
