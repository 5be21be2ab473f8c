//! Bad input: every malformed request gets a 4xx with `{code, message}` and changes nothing;
//! and every endpoint the OpenAPI description lists is really served.

use crate::{Backend, Server};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// Everything the API would show of the center, to compare before and after bad requests.
async fn snapshot(session: &crate::Session) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/api/v1/users",
        "/api/v1/teams",
        "/api/v1/roles",
        "/api/v1/queues",
        "/api/v1/capacity-profiles",
        "/api/v1/business-hours",
        "/api/v1/settings",
        "/api/v1/custom-statuses",
        "/api/v1/contacts",
        "/api/v1/emergency/numbers",
        "/api/v1/sites",
        "/api/v1/voice/trunks",
        "/api/v1/me/address",
    ] {
        all.push(session.get(path).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_errors_and_change_nothing() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let queues = admin.get("/api/v1/queues?channel=web").await;
    let billing = crate::find(&queues, "name", "Billing")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refunds = crate::find(&queues, "name", "Refunds")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trunks = admin.get("/api/v1/voice/trunks").await;
    let inbound = crate::find(&trunks, "name", "Demo carrier")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let office = crate::find(&admin.get("/api/v1/sites").await, "name", "Head office")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(&admin).await;
    let long = "x".repeat(1000);
    let huge = format!("{{\"name\": \"{}\"}}", "y".repeat(300 * 1024));
    let missing = "00000000-0000-0000-0000-000000000000";

    // (method, path, raw body, status, code)
    let cases: Vec<(Method, String, String, StatusCode, &str)> = vec![
        (Method::POST, "/api/v1/teams".into(), "{\"name\": ".into(), StatusCode::BAD_REQUEST, "invalid_json"),
        (Method::POST, "/api/v1/teams".into(), "[1,2,3]".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/teams".into(), "{\"name\": 42}".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/teams".into(), "{\"name\": \"A\", \"colour\": \"red\"}".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/teams".into(), "{\"name\": \"   \"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/teams".into(), format!("{{\"name\": \"{long}\"}}"), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/teams".into(), "{\"name\": \"tab\\there\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/teams".into(), "{\"name\": \"sales TEAM\"}".into(), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/teams".into(), huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"wizard\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"agent\", \"email\": \"not-an-email\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"agent\", \"password\": \"short\"}".into(), StatusCode::BAD_REQUEST, "weak_password"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"agent\", \"teams\": [\"nope\"]}".into(), StatusCode::BAD_REQUEST, "invalid_id"),
        (Method::POST, "/api/v1/users".into(), format!("{{\"username\": \"ok-name\", \"role\": \"agent\", \"queues\": [\"{billing}\"]}}"), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/users".into(), format!("{{\"username\": \"ok-name\", \"role\": \"agent\", \"capacity_profile_id\": \"{missing}\"}}"), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"admin\", \"role\": \"agent\"}".into(), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"agent\", \"emergency_contacts\": \"a@b.org;nope\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/users".into(), "{\"username\": \"ok-name\", \"role\": \"agent\", \"languages\": [\"klingon\"]}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PATCH, format!("/api/v1/users/{missing}"), "{}".into(), StatusCode::NOT_FOUND, "not_found"),
        (Method::PATCH, "/api/v1/users/not-a-uuid".into(), "{}".into(), StatusCode::NOT_FOUND, "not_found"),
        (Method::POST, "/api/v1/queues".into(), "{\"channel\": \"fax\", \"name\": \"A\", \"kind\": \"leaf\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/queues".into(), "{\"channel\": \"web\", \"name\": \"A\", \"kind\": \"branch\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/queues".into(), format!("{{\"channel\": \"web\", \"parent_id\": \"{refunds}\", \"name\": \"Deeper\", \"kind\": \"leaf\"}}"), StatusCode::CONFLICT, "queue_tree"),
        (Method::POST, "/api/v1/queues".into(), format!("{{\"channel\": \"voice\", \"parent_id\": \"{billing}\", \"name\": \"Other\", \"kind\": \"leaf\"}}"), StatusCode::CONFLICT, "queue_tree"),
        (Method::POST, "/api/v1/queues".into(), format!("{{\"channel\": \"web\", \"parent_id\": \"{billing}\", \"name\": \"refunds\", \"kind\": \"leaf\"}}"), StatusCode::CONFLICT, "queue_tree"),
        (Method::POST, "/api/v1/queues".into(), "{\"channel\": \"web\", \"name\": \"A > B\", \"kind\": \"leaf\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::DELETE, format!("/api/v1/queues/{billing}"), String::new(), StatusCode::CONFLICT, "queue_tree"),
        (Method::PATCH, format!("/api/v1/queues/{billing}"), format!("{{\"parent_id\": \"{refunds}\"}}"), StatusCode::CONFLICT, "queue_tree"),
        (Method::PATCH, format!("/api/v1/queues/{billing}"), "{\"kind\": \"leaf\"}".into(), StatusCode::CONFLICT, "queue_tree"),
        (Method::POST, "/api/v1/capacity-profiles".into(), "{\"name\": \"P\", \"max_chats\": -1, \"max_calls\": 1}".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/capacity-profiles".into(), "{\"name\": \"P\", \"max_chats\": 2, \"max_calls\": 2}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/capacity-profiles".into(), "{\"name\": \"P\", \"max_chats\": 99999999, \"max_calls\": 1}".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"H\", \"periods\": [\"mon 9-5\"]}".into(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"H\", \"time_zone\": \"Mars/Base\", \"periods\": []}".into(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"H\", \"periods\": [], \"holidays\": [\"02-30\"]}".into(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"H\", \"periods\": [], \"closures\": [\"2026-01-02T00:00:00Z/2026-01-01T00:00:00Z\"]}".into(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"Second global\", \"periods\": []}".into(), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/business-hours".into(), "{\"name\": \"H\", \"scope\": {\"channel\": \"pigeon\"}, \"periods\": []}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::GET, "/api/v1/business-hours/status".into(), String::new(), StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, format!("/api/v1/business-hours/status?queue_id={refunds}&slots=1&slot_minutes=1"), String::new(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::GET, format!("/api/v1/business-hours/status?queue_id={refunds}&at=yesterday"), String::new(), StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, "/api/v1/queues?channel=web&colour=red".into(), String::new(), StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::PUT, "/api/v1/settings".into(), "{\"name\": \"X\", \"time_zone\": \"Nowhere\", \"languages\": []}".into(), StatusCode::BAD_REQUEST, "invalid_hours"),
        (Method::PUT, format!("/api/v1/agents/{}/presence", admin.user_id), "{\"presence\": \"sleeping\"}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/roles".into(), "{\"key\": \"admin\", \"name\": \"X\", \"permissions\": []}".into(), StatusCode::CONFLICT, "conflict"),
        (Method::POST, "/api/v1/roles".into(), "{\"key\": \"qa\", \"name\": \"X\", \"permissions\": [\"root\"]}".into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::DELETE, "/api/v1/roles/agent".into(), String::new(), StatusCode::CONFLICT, "conflict"),
        (Method::POST, format!("/api/v1/contacts/{missing}/end"), String::new(), StatusCode::NOT_FOUND, "not_found"),
        (Method::DELETE, "/api/v1/teams/zzz".into(), String::new(), StatusCode::NOT_FOUND, "not_found"),
        (Method::PUT, "/api/v1/teams".into(), "{}".into(), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Method::GET, "/api/v2/anything".into(), String::new(), StatusCode::NOT_FOUND, "not_found"),
        (Method::POST, "/api/v1/auth/login".into(), "{\"username\": \"admin\"}".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/auth/totp/confirm".into(), "{\"code\": \"123456\"}".into(), StatusCode::CONFLICT, "conflict"),
        // Emergency numbers: each row, the list as a whole, direct routes.
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "FR", "number": "112"}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "US", "number": "9"}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "US", "number": "+911"}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "US", "number": "911"}, {"country": "us", "number": "911", "test": true}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), format!(r#"{{"numbers": [{{"country": "US", "number": "911", "trunk_id": "{missing}"}}]}}"#), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), format!(r#"{{"numbers": [{{"country": "US", "number": "911", "trunk_id": "{inbound}"}}]}}"#), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "US", "number": "911", "trunk_id": "nope"}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"{"numbers": [{"country": "US", "number": "911", "route": "x"}]}"#.into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), r#"[{"country": "US", "number": "911"}]"#.into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::PUT, "/api/v1/emergency/numbers".into(), format!(r#"{{"numbers": [{}]}}"#, vec![r#"{"country": "US", "number": "911"}"#; 101].join(",")), StatusCode::BAD_REQUEST, "invalid_field"),
        // The callback pool.
        (Method::PUT, "/api/v1/settings".into(), r#"{"name": "X", "time_zone": "UTC", "languages": ["en"], "callback_pool": "15550190-nope"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/settings".into(), r#"{"name": "X", "time_zone": "UTC", "languages": ["en"], "callback_pool": "1000-3000"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/settings".into(), r#"{"name": "X", "time_zone": "UTC", "languages": ["en"], "callback_pool": "15550199-15550190"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        // Sites and addresses.
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "US", "state": "Illinois", "city": "Springfield", "street": "Main Street", "number": "1"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "US", "state": "IL", "street": "Main Street", "number": "1"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "FR", "city": "Paris", "street": "Rue de Rivoli", "number": "1"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "GB", "city": "London", "street": "Strand", "number": "1", "postcode": "12345"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "US", "state": "IL", "city": "Springfield", "street": "Main\u0007Street", "number": "1"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "US", "state": "IL", "city": "Springfield", "street": "Main Street", "number": "1", "method": "GPS"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Lab", "address": {"country": "US", "zip": "62701"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "  ", "address": {"country": "US", "state": "IL", "city": "Springfield", "street": "Main Street", "number": "1"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/sites".into(), r#"{"name": "Head office", "address": {"country": "US", "state": "IL", "city": "Springfield", "street": "Main Street", "number": "1"}}"#.into(), StatusCode::CONFLICT, "conflict"),
        (Method::PUT, format!("/api/v1/sites/{missing}"), r#"{"name": "Lab", "address": {"country": "DK", "city": "Aarhus", "street": "Strøget", "number": "1"}}"#.into(), StatusCode::NOT_FOUND, "not_found"),
        (Method::PUT, format!("/api/v1/sites/{office}"), r#"{"name": "Head office", "address": {"country": "DK", "city": "Aarhus", "street": "Strøget", "number": "1", "postcode": "800"}}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::DELETE, format!("/api/v1/sites/{office}"), String::new(), StatusCode::CONFLICT, "conflict"),
        (Method::DELETE, "/api/v1/sites/not-a-uuid".into(), String::new(), StatusCode::NOT_FOUND, "not_found"),
        (Method::POST, "/api/v1/users".into(), format!(r#"{{"username": "ok-name", "role": "agent", "site_id": "{missing}"}}"#), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/users".into(), r#"{"username": "ok-name", "role": "agent", "site_id": "nope"}"#.into(), StatusCode::BAD_REQUEST, "invalid_id"),
        (Method::PATCH, format!("/api/v1/users/{}", admin.user_id), format!(r#"{{"site_id": "{missing}"}}"#), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, format!("/api/v1/users/{missing}/address"), r#"{"country": "DK", "city": "Aarhus", "street": "Strøget", "number": "1"}"#.into(), StatusCode::NOT_FOUND, "not_found"),
        (Method::PUT, format!("/api/v1/users/{}/address", admin.user_id), r#"{"country": "US", "state": "IL", "city": "Springfield", "street": "Main Street", "number": "1", "postcode": "6270"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::DELETE, format!("/api/v1/users/{missing}/address"), String::new(), StatusCode::NOT_FOUND, "not_found"),
        (Method::PUT, "/api/v1/me/address".into(), r#"{"country": "FR", "city": "Paris", "street": "Rue de Rivoli", "number": "1"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/me/address".into(), r#"{"country": "CA", "state": "ON", "city": "Ottawa", "street": "Wellington Street", "number": "111", "postcode": "K1A0B"}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::PUT, "/api/v1/me/address".into(), format!(r#"{{"country": "DK", "city": "{long}", "street": "Strøget", "number": "1"}}"#), StatusCode::BAD_REQUEST, "invalid_field"),
        // Only an outbound trunk carries emergency calls.
        (Method::POST, "/api/v1/voice/trunks".into(), r#"{"name": "In", "direction": "inbound", "addresses": ["192.0.2.1"], "emergency": true}"#.into(), StatusCode::BAD_REQUEST, "invalid_field"),
        (Method::POST, "/api/v1/voice/trunks".into(), r#"{"name": "Out", "direction": "outbound", "host": "192.0.2.1", "emergency": "yes"}"#.into(), StatusCode::BAD_REQUEST, "invalid_body"),
    ];
    for (method, path, body, status, code) in cases {
        let mut request = admin.client.request(method.clone(), server.url(&path));
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let (got, answer) = crate::read(request.send().await.unwrap()).await;
        let shown: String = body.chars().take(80).collect();
        assert_eq!(got, status, "{method} {path} {shown}: {answer}");
        assert_eq!(answer["code"], code, "{method} {path} {shown}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    // A JSON body without the JSON content type.
    let (status, answer) = crate::read(
        admin
            .client
            .post(server.url("/api/v1/teams"))
            .body("{\"name\": \"Plain\"}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    // Apps API bad input.
    let (status, answer) = server
        .apps(
            Method::POST,
            "/apps/api/v1/contacts",
            Some(json!({"queue_id": refunds, "customer": "a\u{0}b"})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, answer) = server
        .apps(
            Method::POST,
            "/apps/api/v1/contacts",
            Some(json!({"queue_id": refunds, "priority": 1_000_000})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, _) = server
        .apps(
            Method::POST,
            "/apps/api/v1/contacts",
            Some(json!({"queue_id": missing})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        snapshot(&admin).await,
        before,
        "rejected requests changed the center"
    );
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("class=\"5xx\""),
        "a bad request caused a server error:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_endpoint_is_served_and_described() {
    let server = Server::start(Backend::Sqlite).await;
    let openapi: Value = reqwest::get(server.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    assert!(paths.len() >= 39, "{} paths", paths.len());
    let client = Client::new();
    for (path, operations) in paths {
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{key}", "qa")
            .replace("{key_id}", "k")
            .replace("{name}", "n");
        for (method, operation) in operations.as_object().unwrap() {
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no responses"
            );
            assert!(
                operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = client
                .request(method.clone(), server.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("endpoint not found"),
                "{method} {path} is documented but not served: {status} {body}"
            );
            assert!(status.as_u16() < 500, "{method} {path}: {status} {body}");
        }
    }
}
