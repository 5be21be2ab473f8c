//! The HTTP API. Every route is registered through `OpenApiRouter`, so `/api/openapi.json`
//! describes every endpoint by construction. Handlers are thin: extract, check permission,
//! call the store or a service, map the result. A handler that changes the center's
//! configuration announces it once, with `app.services.config.changed(area)`.

pub mod after_hours;
pub mod answers;
pub mod apps;
pub mod assets;
pub mod auth;
pub mod callbacks;
pub mod chat;
pub mod dashboards;
pub mod dialing;
pub mod directory;
pub mod emergency;
pub mod emergency_log;
pub mod error;
pub mod extract;
pub mod live;
pub mod monitor;
pub mod offers;
pub mod recordings;
pub mod security;
pub mod setup;
pub mod sms;
pub mod system;
pub mod uploads;
pub mod voice;
pub mod voicemail;
pub mod watch;
pub mod webhook;
pub mod whisper;
pub mod widget;
pub mod wire;
pub mod wrapup;
pub mod zendesk;

use crate::app::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use error::{ApiError, ApiResult};
use switchboard_core::{Actor, Permission, Target};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

/// The largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Admin/portal API (`/api/v1`, session cookie) and Apps API for integrations (`/apps/api/v1`, company key and secret over HTTP basic). Errors are `{\"code\", \"message\"}` with a 4xx status."),
    components(schemas(error::ErrorBody, wire::EventPayload)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-in, sessions, two-factor"),
        (name = "users", description = "Users, teams and roles"),
        (name = "setup", description = "Queues, business hours, capacity profiles, settings, API keys"),
        (name = "live", description = "Agents' presence, contacts, the live event stream"),
        (name = "apps", description = "Apps API for integrations"),
        (name = "chat", description = "Web chat: WebSocket protocols, attachments, tickets, tones"),
        (name = "system", description = "Health and metrics"),
        (name = "emergency", description = "Emergency numbers, sites and agents' locations"),
        (name = "emergency", description = "Emergency calls: the restricted emergency log, the notification template, calls in progress"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "apps",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// All routes with their OpenAPI description.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(directory::routes())
        .merge(setup::routes())
        .merge(after_hours::routes())
        .merge(offers::routes())
        .merge(callbacks::routes())
        .merge(live::routes())
        .merge(dashboards::routes())
        .merge(apps::routes())
        .merge(system::routes())
        .merge(chat::routes())
        .merge(voice::routes())
        .merge(voicemail::routes())
        .merge(recordings::routes())
        .merge(uploads::routes())
        .merge(dialing::routes())
        .merge(emergency::routes())
        .merge(emergency_log::routes())
        .merge(wrapup::routes())
        .merge(whisper::routes())
        .merge(monitor::routes())
        .merge(watch::routes())
        .merge(widget::routes())
        .merge(security::routes())
        .merge(sms::routes())
}

/// The whole HTTP service.
pub fn router(app: AppState) -> Router {
    let upload_limit = usize::try_from(app.config.attachment_max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let (routes, mut openapi) = api_routes()
        .merge(chat::upload_routes().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(voice::upload_routes().layer(DefaultBodyLimit::max(upload_limit)))
        .split_for_parts();
    answers::document_error_answers(&mut openapi);
    let openapi_json = openapi.to_pretty_json().unwrap_or_else(|_| "{}".into());
    routes
        .route(
            "/api/openapi.json",
            axum::routing::get(move || async move {
                ([("content-type", "application/json")], openapi_json)
            }),
        )
        .route("/", axum::routing::get(system::index))
        .merge(assets::routes())
        .fallback(|| async { ApiError::not_found("endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(cors_for_consumers))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            count_responses,
        ))
        .with_state(app)
}

/// Applies CORS to the consumer endpoints (`/chat/v1/…`, `/api/v1/widget/…`) only.
async fn cors_for_consumers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/chat/v1/") || path.starts_with("/api/v1/widget/") {
        chat::cors(request, next).await
    } else {
        next.run(request).await
    }
}

async fn count_responses(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let class = format!("{}xx", response.status().as_u16() / 100);
    app.services
        .metrics
        .http_responses
        .get_or_create(&switchboard_services::metrics::StatusLabels { class })
        .inc();
    response
}

/// Refuses unless the actor holds `permission` for `target`.
pub fn require(actor: &Actor, permission: Permission, target: Target<'_>) -> ApiResult<()> {
    if actor.can(permission, target) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your role does not allow {} here",
            permission.as_str()
        )))
    }
}
