//! The browser UI, shipped inside the binary: the consumer chat widget (one script tag on any
//! site), the agent adapter, the portal for supervisors and admins, and a demo page that embeds
//! the widget. Plain ES modules and Web Components; no bundler.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const WIDGET: &str = include_str!("../../web/widget/switchboard.js");
const COMMON: &str = include_str!("../../web/common.js");
const WIDGET_OFFERS: &str = include_str!("../../web/widget/offers.js");
const AGENT_PAGE: &str = include_str!("../../web/agent/index.html");
const AGENT_DESK: &str = include_str!("../../web/agent/desk.js");
const AGENT_PHONE: &str = include_str!("../../web/agent/phone.js");
const AGENT_WRAPUP: &str = include_str!("../../web/agent/wrapup.js");
const AGENT_WEBRTC: &str = include_str!("../../web/agent/webrtc.js");
const AGENT_LOCATION: &str = include_str!("../../web/agent/location.js");
const AGENT_VOICEMAIL: &str = include_str!("../../web/agent/voicemail.js");
const PORTAL_DASHBOARDS: &str = include_str!("../../web/portal/dashboards.js");
const DEMO_PAGE: &str = include_str!("../../web/demo/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// The portal's files: its page, its stylesheet and its modules, each at `/portal/<name>`.
const PORTAL: [(&str, &str, &str); 16] = [
    (
        "/portal/",
        "text/html; charset=utf-8",
        include_str!("../../web/portal/index.html"),
    ),
    (
        "/portal/portal.css",
        "text/css; charset=utf-8",
        include_str!("../../web/portal/portal.css"),
    ),
    (
        "/portal/portal.js",
        JS,
        include_str!("../../web/portal/portal.js"),
    ),
    (
        "/portal/api.js",
        JS,
        include_str!("../../web/portal/api.js"),
    ),
    (
        "/portal/live.js",
        JS,
        include_str!("../../web/portal/live.js"),
    ),
    (
        "/portal/monitor.js",
        JS,
        include_str!("../../web/portal/monitor.js"),
    ),
    (
        "/portal/details.js",
        JS,
        include_str!("../../web/portal/details.js"),
    ),
    (
        "/portal/setup.js",
        JS,
        include_str!("../../web/portal/setup.js"),
    ),
    (
        "/portal/entities.js",
        JS,
        include_str!("../../web/portal/entities.js"),
    ),
    (
        "/portal/hours.js",
        JS,
        include_str!("../../web/portal/hours.js"),
    ),
    (
        "/portal/audit.js",
        JS,
        include_str!("../../web/portal/audit.js"),
    ),
    (
        "/portal/after_hours.js",
        JS,
        include_str!("../../web/portal/after_hours.js"),
    ),
    (
        "/portal/emergency.js",
        JS,
        include_str!("../../web/portal/emergency.js"),
    ),
    (
        "/portal/emergency_log.js",
        JS,
        include_str!("../../web/portal/emergency_log.js"),
    ),
    (
        "/portal/tickets.js",
        JS,
        include_str!("../../web/portal/tickets.js"),
    ),
    (
        "/portal/watch.js",
        JS,
        include_str!("../../web/portal/watch.js"),
    ),
];

/// Addresses people try for the portal; each leads to it.
const PORTAL_ALIASES: [&str; 3] = ["/portal", "/admin/", "/supervisor/"];

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
    let mut router = Router::new();
    for (path, content_type, body) in PORTAL {
        router = router.route(path, get(move || async move { asset(content_type, body) }));
    }
    for alias in PORTAL_ALIASES {
        router = router.route(alias, get(|| async { Redirect::to("/portal/") }));
    }
    router
        .route(
            "/widget/switchboard.js",
            get(|| async { widget_module(WIDGET) }),
        )
        .route("/widget/common.js", get(|| async { widget_module(COMMON) }))
        .route(
            "/widget/offers.js",
            get(|| async { widget_module(WIDGET_OFFERS) }),
        )
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
            "/agent/webrtc.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_WEBRTC) }),
        )
        .route(
            "/agent/wrapup.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_WRAPUP) }),
        )
        .route(
            "/agent/location.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_LOCATION) }),
        )
        .route(
            "/agent/voicemail.js",
            get(|| async { asset("text/javascript; charset=utf-8", AGENT_VOICEMAIL) }),
        )
        .route(
            "/demo/",
            get(|| async { asset("text/html; charset=utf-8", DEMO_PAGE) }),
        )
}
