//! Health, metrics and the landing page.

use super::wire::Health;
use crate::app::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// Liveness and database reachability; 503 when the database does not answer.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    match app.services.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                database: app.services.store.backend().into(),
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "database unreachable".into(),
                    database: app.services.store.backend().into(),
                }),
            )
        }
    }
}

/// Prometheus metrics in text format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.services.metrics.render(),
    )
}

/// A short page that says the server runs and where to go.
pub async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Switchboard</title>",
        "<h1>Switchboard</h1><p>The contact center is running.</p><ul>",
        "<li><a href=/api/openapi.json>API description (OpenAPI)</a></li>",
        "<li><a href=/healthz>Health</a></li><li><a href=/metrics>Metrics</a></li></ul></html>"
    ))
}
