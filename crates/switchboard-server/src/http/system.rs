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

/// How long the health check waits for the database to read and to write.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Liveness and the store's health: a read and a one-row write, each within 2 seconds. 503
/// when either fails, naming the part in `failing`, so an orchestrator sees a full disk or
/// a read-only database, not only one that is down.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = &app.services.store;
    let read = tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await;
    let write = match read {
        Ok(Ok(())) => {
            Some(tokio::time::timeout(PROBE_TIMEOUT, store.probe_write(chrono::Utc::now())).await)
        }
        _ => None,
    };
    let failing = match (read, write) {
        (Ok(Ok(())), Some(Ok(Ok(())))) => None,
        (Ok(Ok(())), Some(outcome)) => {
            match outcome {
                Ok(Err(error)) => tracing::warn!(%error, "health check: database write failed"),
                _ => tracing::warn!("health check: database write timed out"),
            }
            Some(("database_write", "database writes failing"))
        }
        (outcome, _) => {
            match outcome {
                Ok(Err(error)) => tracing::warn!(%error, "health check: database unreachable"),
                _ => tracing::warn!("health check: database read timed out"),
            }
            Some(("database_read", "database unreachable"))
        }
    };
    let database = store.backend().to_owned();
    match failing {
        None => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                database,
                failing: Vec::new(),
            }),
        ),
        Some((part, status)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: status.into(),
                database,
                failing: vec![part.into()],
            }),
        ),
    }
}

/// Prometheus metrics in text format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    super::dashboards::refresh_metrics(&app).await;
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
