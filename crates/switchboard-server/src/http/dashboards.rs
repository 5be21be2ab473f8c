//! Dashboards (PLT-10): a queue's or a team's figures over today (in the center's time zone)
//! or a chosen range, as JSON or as a CSV export, and today's figures per queue for `/metrics`.
//! The arithmetic is the core's (`switchboard_core::dashboard`); this reads the rows, checks
//! who may look, and writes the answer.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, CurrentUser};
use crate::app::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_core::dashboard::{
    self, Dashboard, DashboardError, Figures, Range, Scope, Threshold,
};
use switchboard_core::hours::parse_time_zone;
use switchboard_core::{QueueId, QueueKind, TeamId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_dashboard))
        .routes(routes!(get_dashboard_csv))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// `queue` or `team`.
    pub scope: String,
    /// The queue's or team's id.
    pub id: String,
    /// Start of the range (RFC 3339); with `to`. Without both: today in the center's time zone.
    pub from: Option<String>,
    /// End of the range (RFC 3339, exclusive); at most 31 days after `from`.
    pub to: Option<String>,
    /// Service-level threshold in seconds (1 to 3600, default 20).
    pub threshold_seconds: Option<u32>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Counts and times for a set of contacts. Rates are 0 to 1; times in milliseconds; absent
/// when there is nothing to compute them from.
#[derive(Serialize, ToSchema)]
pub struct FiguresView {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub answered_within_threshold: u64,
    pub service_level: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub average_wait_ms: Option<u64>,
    pub p90_wait_ms: Option<u64>,
    pub average_handle_ms: Option<u64>,
}

/// One hour of the range, with the agents in each presence at its start.
#[derive(Serialize, ToSchema)]
pub struct HourView {
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: FiguresView,
    pub agents: BTreeMap<String, u32>,
}

/// A queue's or team's dashboard.
#[derive(Serialize, ToSchema)]
pub struct DashboardView {
    pub scope: String,
    pub id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub threshold_seconds: u32,
    /// The center's time zone (IANA name): the portal labels the hours in it.
    pub time_zone: String,
    pub totals: FiguresView,
    pub hours: Vec<HourView>,
}

impl From<&Figures> for FiguresView {
    fn from(f: &Figures) -> Self {
        FiguresView {
            offered: f.offered,
            answered: f.answered,
            abandoned: f.abandoned,
            answered_within_threshold: f.answered_within_threshold,
            service_level: f.service_level,
            abandon_rate: f.abandon_rate,
            average_wait_ms: f.average_wait_ms,
            p90_wait_ms: f.p90_wait_ms,
            average_handle_ms: f.average_handle_ms,
        }
    }
}

impl From<DashboardError> for ApiError {
    fn from(error: DashboardError) -> Self {
        let code = match error {
            DashboardError::EmptyRange => "empty_range",
            DashboardError::RangeTooLong => "range_too_long",
            DashboardError::BadThreshold => "invalid_threshold",
        };
        ApiError::bad_request(code, error.to_string())
    }
}

fn bad_range(message: &str) -> ApiError {
    ApiError::bad_request("invalid_range", message.to_owned())
}

fn instant(text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad_range("from and to are RFC 3339 times, like 2026-06-01T00:00:00Z"))
}

/// The center's time zone.
async fn zone(app: &AppState) -> ApiResult<chrono_tz::Tz> {
    Ok(
        parse_time_zone(&app.services.store.center_settings().await?.time_zone)
            .unwrap_or(chrono_tz::UTC),
    )
}

async fn build(
    app: &AppState,
    current: &CurrentUser,
    query: &DashboardQuery,
) -> ApiResult<DashboardView> {
    let scope = match query.scope.as_str() {
        "queue" => {
            Scope::Queue(QueueId::parse(&query.id).map_err(|_| ApiError::not_found("queue"))?)
        }
        "team" => Scope::Team(TeamId::parse(&query.id).map_err(|_| ApiError::not_found("team"))?),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_scope",
                "scope is `queue` or `team`",
            ))
        }
    };
    let zone = zone(app).await?;
    let range = match (query.from.as_deref(), query.to.as_deref()) {
        (Some(from), Some(to)) => Range::new(instant(from)?, instant(to)?)?,
        // Today in the center's time zone.
        (None, None) => Range::today(Utc::now(), zone),
        _ => return Err(bad_range("give both from and to, or neither for today")),
    };
    let threshold = query
        .threshold_seconds
        .map(Threshold::seconds)
        .transpose()?
        .unwrap_or_default();
    if !dashboard::may_view(&current.actor, scope) {
        return Err(ApiError::forbidden(
            "your role does not show this dashboard",
        ));
    }
    let store = &app.services.store;
    match scope {
        Scope::Queue(queue) => {
            if !store.list_queues().await?.iter().any(|q| q.id == queue) {
                return Err(ApiError::not_found("queue"));
            }
        }
        Scope::Team(team) => {
            store.get_team(team).await?;
        }
    }
    let contacts = store.dashboard_contacts(scope, range).await?;
    let presence = store.dashboard_presence(scope, range).await?;
    let computed = dashboard::compute(range, threshold, &contacts, &presence);
    Ok(view(&query.scope, &query.id, zone, &computed))
}

fn view(scope: &str, id: &str, zone: chrono_tz::Tz, d: &Dashboard) -> DashboardView {
    DashboardView {
        scope: scope.to_owned(),
        id: id.to_owned(),
        from: d.range.from(),
        to: d.range.to(),
        threshold_seconds: d.threshold.as_seconds(),
        time_zone: zone.name().to_owned(),
        totals: FiguresView::from(&d.totals),
        hours: d
            .hours
            .iter()
            .map(|h| HourView {
                start: h.start,
                figures: FiguresView::from(&h.figures),
                agents: h.agents.clone(),
            })
            .collect(),
    }
}

/// The CSV export: one line per hour and a last `total` line; agents by status as
/// `presence=count` pairs joined by `;`.
fn csv(view: &DashboardView) -> String {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rate = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let line = |label: String, f: &FiguresView, agents: String| {
        format!(
            "{label},{},{},{},{},{},{},{},{},{},{agents}\r\n",
            f.offered,
            f.answered,
            f.abandoned,
            f.answered_within_threshold,
            rate(f.service_level),
            rate(f.abandon_rate),
            opt(f.average_wait_ms),
            opt(f.p90_wait_ms),
            opt(f.average_handle_ms),
        )
    };
    let mut out = String::from(
        "hour,offered,answered,abandoned,answered_within_threshold,service_level,abandon_rate,average_wait_ms,p90_wait_ms,average_handle_ms,agents\r\n",
    );
    for hour in &view.hours {
        let agents: Vec<String> = hour
            .agents
            .iter()
            .map(|(presence, count)| format!("{presence}={count}"))
            .collect();
        out.push_str(&line(
            hour.start.to_rfc3339(),
            &hour.figures,
            format!("\"{}\"", agents.join(";").replace('"', "\"\"")),
        ));
    }
    out.push_str(&line("total".into(), &view.totals, String::new()));
    out
}

fn csv_response(view: &DashboardView) -> Response {
    let name = format!(
        "attachment; filename=\"dashboard-{}-{}.csv\"",
        view.scope,
        view.from.format("%Y%m%d")
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        csv(view),
    )
        .into_response()
}

/// A queue's or a team's dashboard (PLT-10) over today or `from`..`to`: offered, answered,
/// abandoned, service level, waits, handle time, per hour with agents by status. For those who
/// watch contacts; a manager sees only the teams they manage. `format=csv` exports it.
#[utoipa::path(get, path = "/api/v1/dashboards", tag = "live", security(("session" = [])), params(DashboardQuery),
    responses((status = 200, body = DashboardView), (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_dashboard(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<DashboardQuery>,
) -> ApiResult<Response> {
    let view = build(&app, &current, &query).await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(view).into_response()),
        Some("csv") => Ok(csv_response(&view)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_format",
            "format is `json` or `csv`",
        )),
    }
}

/// The same dashboard as a CSV file.
#[utoipa::path(get, path = "/api/v1/dashboards.csv", tag = "live", security(("session" = [])), params(DashboardQuery),
    responses((status = 200, description = "CSV, one line per hour and a total", content_type = "text/csv"), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
async fn get_dashboard_csv(
    State(app): State<AppState>,
    current: CurrentUser,
    ApiQuery(query): ApiQuery<DashboardQuery>,
) -> ApiResult<Response> {
    let view = build(&app, &current, &query).await?;
    Ok(csv_response(&view))
}

/// Brings today's per-queue figures on `/metrics` up to date (every leaf queue).
pub async fn refresh_metrics(app: &AppState) {
    let Ok(zone) = zone(app).await else { return };
    let range = Range::today(Utc::now(), zone);
    let store = &app.services.store;
    let Ok(queues) = store.list_queues().await else {
        return;
    };
    let metrics = &app.services.metrics;
    for queue in queues.iter().filter(|q| q.kind == QueueKind::Leaf) {
        let Ok(rows) = store
            .dashboard_contacts(Scope::Queue(queue.id), range)
            .await
        else {
            continue;
        };
        let d = dashboard::compute(range, Threshold::default(), &rows, &[]);
        let labels = switchboard_services::metrics::QueueLabels {
            queue: queue.id.to_string(),
        };
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        metrics
            .queue_offered_today
            .get_or_create(&labels)
            .set(gauge(d.totals.offered));
        metrics
            .queue_answered_today
            .get_or_create(&labels)
            .set(gauge(d.totals.answered));
        metrics
            .queue_abandoned_today
            .get_or_create(&labels)
            .set(gauge(d.totals.abandoned));
        metrics
            .queue_service_level_today
            .get_or_create(&labels)
            .set(d.totals.service_level.unwrap_or(1.0));
    }
}
