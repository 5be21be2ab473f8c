//! The center's main story, on each backend: an admin builds queues, hours and agents through
//! the API; an agent becomes available; contacts arrive through the Apps API and are routed;
//! supervisors watch it live; contacts end; a restart loses nothing.

use crate::events::EventStream;
use crate::{backends, find, Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn is_about(event: &Value, user_id: &str) -> bool {
    event["user_id"] == user_id || event["contact"]["agent_id"] == user_id
}

async fn story(backend: Backend) {
    let server = Server::start(backend).await;
    let admin = server.login("admin").await;

    // The admin builds a team, a capacity profile and a queue tree.
    let team = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/teams",
            json!({"name": "Night team"}),
        )
        .await;
    let profile = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/capacity-profiles",
            json!({"name": "Night", "max_chats": 2, "max_calls": 0}),
        )
        .await;
    let orders = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/queues",
            json!({"channel": "web", "name": "Orders", "kind": "menu"}),
        )
        .await;
    let returns = admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/queues", json!({"channel": "web", "parent_id": orders["id"], "name": "Returns", "kind": "leaf", "position": 1, "languages": ["fr"]}))
        .await;
    assert_eq!(returns["path"], "Orders > Returns");
    let tracking = admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/queues", json!({"channel": "web", "parent_id": orders["id"], "name": "Tracking", "kind": "leaf", "position": 2}))
        .await;
    let moved = admin
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &format!("/api/v1/queues/{}", tracking["id"].as_str().unwrap()),
            json!({"name": "Where is my order"}),
        )
        .await;
    assert_eq!(moved["path"], "Orders > Where is my order");
    let web = admin.get("/api/v1/queues?channel=web").await;
    assert!(web
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["channel"] == "web"));

    // Business hours: a queue override in Paris time; the status endpoint answers by it.
    let hours = admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/business-hours", json!({
            "name": "Returns desk", "scope": {"queue_id": returns["id"]}, "time_zone": "Europe/Paris",
            "periods": ["mon 09:00-17:00", "fri 22:00-02:00"], "holidays": ["12-25"], "closures": []}))
        .await;
    let status_path = |at: &str, slots: u32| {
        format!(
            "/api/v1/business-hours/status?queue_id={}&at={at}&slots={slots}",
            returns["id"].as_str().unwrap()
        )
    };
    let open = admin.get(&status_path("2026-01-05T09:30:00Z", 2)).await; // Monday 10:30 Paris
    assert_eq!(
        (open["open"].as_bool(), open["schedule_id"].as_str()),
        (Some(true), hours["id"].as_str())
    );
    assert_eq!(open["next_slots"].as_array().unwrap().len(), 2);
    let night = admin.get(&status_path("2026-01-10T00:30:00Z", 0)).await; // Saturday 01:30 Paris: Friday's night period
    assert_eq!(night["open"], true);
    let closed = admin.get(&status_path("2026-01-06T09:30:00Z", 1)).await; // Tuesday
    assert_eq!(closed["open"], false);
    assert_eq!(
        closed["next_slots"][0], "2026-01-09T21:00:00Z",
        "next opening is Friday 22:00 Paris"
    );

    // An agent for the new queues.
    let night1 = admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/users", json!({
            "username": "night1", "display_name": "Nina Night", "role": "agent", "password": crate::PASSWORD,
            "teams": [team["id"]], "queues": [returns["id"], tracking["id"]], "languages": ["fr"],
            "capacity_profile_id": profile["id"], "emergency_contacts": "lead@example.org"}))
        .await;
    let night1_id = night1["id"].as_str().unwrap().to_owned();

    // Who watches: the supervisor (center-wide monitor), night1 herself, agent1 (another team).
    let supervisor = server.login("supervisor").await;
    let agent = server.login("night1").await;
    let other = server.login("agent1").await;
    let (mut supervisor_events, _) = EventStream::open(&server, &supervisor).await;
    let (mut agent_events, hello) = EventStream::open(&server, &agent).await;
    assert_eq!(hello["user_id"], night1_id.as_str());
    let (mut other_events, _) = EventStream::open(&server, &other).await;

    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{night1_id}/presence"),
            json!({"presence": "available"}),
        )
        .await;
    let (seen, _) = supervisor_events
        .until(|e| e["type"] == "presence_changed" && e["user_id"] == night1_id.as_str())
        .await;
    assert_eq!(seen["presence"], "available");
    agent_events
        .until(|e| e["type"] == "presence_changed")
        .await;

    // Three French contacts for Returns: night1 takes two (her chat capacity), one waits.
    let mut contacts = Vec::new();
    for n in 0..3 {
        let (status, contact) = server
            .apps(Method::POST, "/apps/api/v1/contacts", Some(json!({"queue_id": returns["id"], "language": "fr", "customer": format!("Web User {n}")})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        assert_eq!(contact["issue"], "Orders > Returns");
        contacts.push(contact);
    }
    assert_eq!(contacts[0]["status"], "assigned");
    assert_eq!(contacts[0]["agent_id"], night1_id.as_str());
    assert_eq!(contacts[1]["status"], "assigned");
    assert_eq!(contacts[2]["status"], "queued", "night1 is at capacity");
    let agents = supervisor.get("/api/v1/agents").await;
    assert_eq!(find(&agents, "user_id", &night1_id)["chats"], 2);
    let (assigned, _) = agent_events
        .until(|e| e["type"] == "contact_assigned")
        .await;
    assert_eq!(assigned["contact"]["id"], contacts[0]["id"]);
    let (queued, _) = supervisor_events
        .until(|e| e["type"] == "contact_queued" && e["contact"]["id"] == contacts[2]["id"])
        .await;
    assert_eq!(queued["contact"]["status"], "queued");

    // A contact in a menu is refused; an unknown queue is not found.
    let (status, body) = server
        .apps(
            Method::POST,
            "/apps/api/v1/contacts",
            Some(json!({"queue_id": orders["id"]})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_a_leaf_queue"))
    );

    // Monitoring lists what is open; the supervisor may not end contacts (no monitor_chats_edit).
    let open_contacts = supervisor.get("/api/v1/contacts").await;
    assert_eq!(open_contacts.as_array().unwrap().len(), 3);
    let first = contacts[0]["id"].as_str().unwrap();
    supervisor
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            &format!("/api/v1/contacts/{first}/end"),
            json!({}),
        )
        .await;

    // night1 completes her first contact; the waiting one comes to her at once.
    let ended = agent
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/contacts/{first}/end"),
            json!({}),
        )
        .await;
    assert_eq!(
        (ended["status"].as_str(), ended["end_reason"].as_str()),
        (Some("ended"), Some("completed"))
    );
    let (next, _) = agent_events
        .until(|e| e["type"] == "contact_assigned" && e["contact"]["id"] == contacts[2]["id"])
        .await;
    assert_eq!(next["contact"]["agent_id"], night1_id.as_str());
    let (_, status) = server
        .apps(
            Method::GET,
            &format!(
                "/apps/api/v1/contacts/{}",
                contacts[2]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status["status"], "assigned");
    agent
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            &format!("/api/v1/contacts/{first}/end"),
            json!({}),
        )
        .await;

    // The admin ends a stuck contact (MON-7).
    let second = contacts[1]["id"].as_str().unwrap();
    let stuck = admin
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/contacts/{second}/end"),
            json!({}),
        )
        .await;
    assert_eq!(stuck["end_reason"], "ended_by_supervisor");
    supervisor_events
        .until(|e| e["type"] == "contact_ended" && e["contact"]["id"] == second)
        .await;

    // agent1 saw nothing of night1: once her own presence event arrives, everything published
    // before it has been delivered to her stream.
    other
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", other.user_id),
            json!({"presence": "break"}),
        )
        .await;
    let (_, before) = other_events
        .until(|e| e["type"] == "presence_changed" && e["user_id"] == other.user_id.as_str())
        .await;
    assert!(
        before.iter().all(|e| !is_about(e, &night1_id)),
        "agent1 was shown another team's agent: {before:?}"
    );
    assert!(
        before.iter().all(|e| e["type"] != "contact_queued"),
        "Returns is not agent1's queue: {before:?}"
    );

    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_contacts_total{channel=\"web\",event=\"assigned\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_event_subscribers 3"),
        "{metrics}"
    );
    let health: Value = reqwest::get(server.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    // A contact waits with nobody available; after a restart it is still there and routed.
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{night1_id}/presence"),
            json!({"presence": "offline"}),
        )
        .await;
    let (_, waiting) = server
        .apps(
            Method::POST,
            "/apps/api/v1/contacts",
            Some(json!({"queue_id": tracking["id"]})),
        )
        .await;
    assert_eq!(waiting["status"], "queued");
    supervisor_events.close().await;
    agent_events.close().await;
    other_events.close().await;
    let (config, database) = server.stop().await;
    let server = Server::start_with(config, database).await;
    let agent = server.login("night1").await;
    assert_eq!(
        find(&agent.get("/api/v1/agents").await, "user_id", &night1_id)["chats"],
        1,
        "the assigned contact survived the restart"
    );
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{night1_id}/presence"),
            json!({"presence": "available"}),
        )
        .await;
    let (_, after) = server
        .apps(
            Method::GET,
            &format!("/apps/api/v1/contacts/{}", waiting["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (after["status"].as_str(), after["agent_id"].as_str()),
        (Some("assigned"), Some(night1_id.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_center_story_runs_on_every_backend() {
    for backend in backends() {
        story(backend).await;
    }
}

/// The portal is served at `/portal/`, with its modules; the addresses people try for it lead
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_is_served_and_its_old_addresses_lead_to_it() {
    let server = Server::start(Backend::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/admin/", "/supervisor/", "/portal"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/portal/", "{path}");
    }
    let page = client.get(server.url("/portal/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<sb-portal>"));
    for module in [
        "portal.js",
        "live.js",
        "setup.js",
        "entities.js",
        "hours.js",
        "audit.js",
        "api.js",
    ] {
        let response = client
            .get(server.url(&format!("/portal/{module}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{module}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
    }
    server.stop().await;
}
