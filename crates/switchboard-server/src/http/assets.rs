//! The browser UI, shipped inside the binary: the consumer chat widget (one script tag on any
//! site), the agent adapter, and a demo page that embeds the widget. Plain ES modules and Web
//! Components; no bundler.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const WIDGET: &str = include_str!("../../web/widget/switchboard.js");
const COMMON: &str = include_str!("../../web/common.js");
const AGENT_PAGE: &str = include_str!("../../web/agent/index.html");
const AGENT_DESK: &str = include_str!("../../web/agent/desk.js");
const AGENT_PHONE: &str = include_str!("../../web/agent/phone.js");
const AGENT_WRAPUP: &str = include_str!("../../web/agent/wrapup.js");
const PORTAL_DASHBOARDS: &str = include_str!("../../web/portal/dashboards.js");
const DEMO_PAGE: &str = include_str!("../../web/demo/index.html");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The widget is a module script loaded from other sites' pages, which browsers fetch with
/// CORS: every origin may load it.
fn widget_module(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/widget/switchboard.js",
            get(|| async { widget_module(WIDGET) }),
        )
        .route("/widget/common.js", get(|| async { widget_module(COMMON) }))
        .route(
            "/agent/",
            get(|| async { asset("text/html; charset=utf-8", AGENT_PAGE) }),
        )
        .route(
            "/portal/dashboards.js",
            get(|| async { asset("text/javascript; charset=utf-8", PORTAL_DASHBOARDS) }),
        )
        .route(
            "/agent/desk.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_DESK) }),
        )
        .route(
            "/agent/phone.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_PHONE) }),
        )
        .route(
            "/agent/wrapup.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_WRAPUP) }),
        )
        .route(
            "/demo/",
            get(|| async { asset("text/html; charset=utf-8", DEMO_PAGE) }),
        )
}
