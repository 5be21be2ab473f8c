//! Dashboards over HTTP (PLT-10): who may see which, bad input answered with a stable code, the
//! CSV export and today's figures per queue on `/metrics`, on both databases.

use crate::{backends, find, Server, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn dashboards_answer_those_who_watch_and_refuse_the_rest() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.login("admin").await;
        let teams = admin.get("/api/v1/teams").await;
        let sales = find(&teams, "name", "Sales team")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let support = find(&teams, "name", "Support team")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let queues = admin.get("/api/v1/queues").await;
        let queue = queues
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["kind"] == "leaf")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/users",
                json!({"username": "sales-manager", "role": "manager", "password": PASSWORD, "managed_teams": [sales]}),
            )
            .await;

        let today = admin
            .get(&format!("/api/v1/dashboards?scope=team&id={sales}"))
            .await;
        assert!(
            today["hours"].as_array().unwrap().len() >= 23,
            "{backend:?}: {today}"
        );
        assert_eq!(today["threshold_seconds"], 20);
        assert_eq!(
            today["time_zone"], "America/New_York",
            "hours are labelled in the center's zone"
        );
        let range = "from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z";
        let day = admin
            .get(&format!(
                "/api/v1/dashboards?scope=queue&id={queue}&{range}&threshold_seconds=30"
            ))
            .await;
        assert_eq!(day["hours"].as_array().unwrap().len(), 24);
        assert_eq!(day["totals"]["offered"], 0);
        assert_eq!(day["threshold_seconds"], 30);

        let csv = admin
            .client
            .get(server.url(&format!(
                "/api/v1/dashboards?scope=queue&id={queue}&{range}&format=csv"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), StatusCode::OK);
        assert!(csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let text = csv.text().await.unwrap();
        assert!(
            text.starts_with("hour,offered,answered,abandoned,"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 26, "a header, 24 hours and the total");

        // A manager sees their team and queues, not another team; an agent sees none.
        let manager = server.login("sales-manager").await;
        let path = |team: &str| format!("/api/v1/dashboards?scope=team&id={team}");
        assert_eq!(
            manager.call(Method::GET, &path(&sales), None).await.0,
            StatusCode::OK
        );
        let (status, body) = manager.call(Method::GET, &path(&support), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let agent = server.login("agent1").await;
        for scope in [
            path(&sales),
            format!("/api/v1/dashboards?scope=queue&id={queue}"),
        ] {
            let (status, _) = agent.call(Method::GET, &scope, None).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{backend:?}: agent on {scope}"
            );
        }

        // Bad input: a 400 with a stable code, never a 5xx.
        for (query, code) in [
            (
                format!("scope=queue&id={queue}&from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z"),
                "empty_range",
            ),
            (
                format!("scope=queue&id={queue}&from=2026-06-01T00:00:00Z&to=2026-08-01T00:00:00Z"),
                "range_too_long",
            ),
            (
                format!("scope=queue&id={queue}&from=2026-06-01T00:00:00Z"),
                "invalid_range",
            ),
            (
                format!("scope=queue&id={queue}&from=yesterday&to=today"),
                "invalid_range",
            ),
            (
                format!("scope=queue&id={queue}&threshold_seconds=0"),
                "invalid_threshold",
            ),
            (
                format!("scope=queue&id={queue}&format=pdf"),
                "invalid_format",
            ),
            (format!("scope=agent&id={queue}"), "invalid_scope"),
        ] {
            let (status, body) = admin
                .call(Method::GET, &format!("/api/v1/dashboards?{query}"), None)
                .await;
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{backend:?}: {query}"
            );
        }
        let (status, _) = admin
            .call(
                Method::GET,
                &format!("/api/v1/dashboards?scope=team&id={queue}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a team that does not exist");

        let metrics = reqwest::get(server.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!(
                "switchboard_queue_offered_today{{queue=\"{queue}\"}} 0"
            )),
            "{backend:?}: {metrics}"
        );
        assert!(metrics.contains("switchboard_queue_service_level_today"));
        let page = reqwest::get(server.url("/portal/dashboards.js"))
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("customElements.define('sb-dashboards'"));
    }
}
