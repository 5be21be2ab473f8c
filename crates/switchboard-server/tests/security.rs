//! Sign-in, sessions, two-factor, throttling, and who may do what.

use crate::{find, Backend, Server, PASSWORD};
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

fn code_at(secret: &str, unix_seconds: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 0, 30, bytes)
        .unwrap()
        .generate(unix_seconds)
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cookies_and_two_factor() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    assert!(admin.cookie.contains("HttpOnly"), "{}", admin.cookie);
    assert!(admin.cookie.contains("SameSite=Strict"), "{}", admin.cookie);
    assert!(
        !admin.cookie.contains("Secure"),
        "plain http on loopback by default"
    );

    // Enrol: a wrong code is refused, a right one enables two-factor sign-in.
    let enrolment = admin
        .expect(
            StatusCode::OK,
            Method::POST,
            "/api/v1/auth/totp/enroll",
            json!({}),
        )
        .await;
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let wrong = admin
        .expect(
            StatusCode::UNAUTHORIZED,
            Method::POST,
            "/api/v1/auth/totp/confirm",
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!(wrong["code"], "totp_invalid");
    let now = now_seconds();
    admin
        .expect(
            StatusCode::NO_CONTENT,
            Method::POST,
            "/api/v1/auth/totp/confirm",
            json!({"code": code_at(&secret, now)}),
        )
        .await;
    assert_eq!(
        admin.get("/api/v1/auth/me").await["user"]["totp_enabled"],
        true
    );

    // Sign-in now needs a code, and a code is good once.
    let client = Client::builder().cookie_store(true).build().unwrap();
    let login = |code: Option<String>| {
        let client = client.clone();
        let url = server.url("/api/v1/auth/login");
        async move {
            let body = json!({"username": "admin", "password": PASSWORD, "totp_code": code});
            crate::read(client.post(url).json(&body).send().await.unwrap()).await
        }
    };
    let (status, body) = login(None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp_required"))
    );
    let (status, body) = login(Some(code_at(&secret, now))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp_invalid")),
        "replayed code"
    );
    let (status, body) = login(Some(code_at(&secret, now + 30))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa"], true);

    // Sign-out ends the session for good.
    admin
        .expect(
            StatusCode::NO_CONTENT,
            Method::POST,
            "/api/v1/auth/logout",
            json!({}),
        )
        .await;
    let (status, body) = admin.call(Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_a_name() {
    let server = Server::start(Backend::Sqlite).await;
    let client = Client::new();
    let attempt = |password: &'static str| {
        let request = client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "agent2", "password": password}));
        async move { crate::read(request.send().await.unwrap()).await }
    };
    for _ in 0..5 {
        let (status, body) = attempt("wrong password").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    let (status, body) = attempt(PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
        "locked even with the right password"
    );
    // An unknown name answers exactly like a wrong password.
    let unknown = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "nobody", "password": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::read(unknown).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    // Another user is not affected.
    server.login("agent1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_limit_what_users_can_do() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let teams = admin.get("/api/v1/teams").await;
    let sales = find(&teams, "name", "Sales team")["id"].clone();
    let support = find(&teams, "name", "Support team")["id"].clone();

    // An agent sees only themselves and changes nothing of the center.
    let agent = server.login("agent1").await;
    let users = agent.get("/api/v1/users").await;
    assert_eq!(users.as_array().unwrap().len(), 1);
    agent
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            "/api/v1/users",
            json!({"username": "sneaky", "role": "admin"}),
        )
        .await;
    agent
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            "/api/v1/queues",
            json!({"channel": "web", "name": "Mine", "kind": "leaf"}),
        )
        .await;
    agent
        .expect(
            StatusCode::FORBIDDEN,
            Method::GET,
            "/api/v1/api-keys",
            json!(null),
        )
        .await;
    let agent2 = find(&admin.get("/api/v1/users").await, "username", "agent2")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    agent
        .expect(
            StatusCode::NOT_FOUND,
            Method::PUT,
            &format!("/api/v1/agents/{agent2}/presence"),
            json!({"presence": "offline"}),
        )
        .await;

    // A manager of the sales team acts within it and grants nothing beyond their own role.
    admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/users", json!({"username": "mgr", "role": "manager", "password": PASSWORD, "managed_teams": [sales]}))
        .await;
    let manager = server.login("mgr").await;
    let seen = manager.get("/api/v1/users").await;
    let names: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"agent1") && !names.contains(&"agent2"),
        "{names:?}"
    );
    manager
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/users",
            json!({"username": "sales3", "role": "agent", "teams": [sales]}),
        )
        .await;
    manager
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            "/api/v1/users",
            json!({"username": "support3", "role": "agent", "teams": [support]}),
        )
        .await;
    manager
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            "/api/v1/users",
            json!({"username": "boss", "role": "admin", "teams": [sales]}),
        )
        .await;
    manager
        .expect(
            StatusCode::NOT_FOUND,
            Method::PATCH,
            &format!("/api/v1/users/{agent2}"),
            json!({"display_name": "Changed"}),
        )
        .await;
    manager
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            "/api/v1/teams",
            json!({"name": "Shadow team"}),
        )
        .await;
    // Managers see and set presence for their team's agents.
    let agent1 = find(&seen, "username", "agent1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    manager
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{agent1}/presence"),
            json!({"presence": "custom:Training"}),
        )
        .await;
    manager
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            &format!("/api/v1/agents/{agent1}/presence"),
            json!({"presence": "custom:Nap"}),
        )
        .await;

    // Nobody changes their own role or disables themselves; built-in roles are fixed.
    admin
        .expect(
            StatusCode::CONFLICT,
            Method::PATCH,
            &format!("/api/v1/users/{}", admin.user_id),
            json!({"role": "agent"}),
        )
        .await;
    admin
        .expect(
            StatusCode::CONFLICT,
            Method::PATCH,
            "/api/v1/roles/admin",
            json!({"name": "Root"}),
        )
        .await;
    let custom = admin
        .expect(StatusCode::CREATED, Method::POST, "/api/v1/roles", json!({"key": "qa", "name": "Quality", "permissions": ["monitor_calls_listen"], "scope": "assigned_teams"}))
        .await;
    assert_eq!(custom["permissions"], json!(["monitor_calls_listen"]));
    let keys = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/api-keys",
            json!({"name": "CRM"}),
        )
        .await;
    assert!(keys["secret"].as_str().unwrap().len() >= 32);
    let listed = admin.get("/api/v1/api-keys").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none()),
        "secrets are shown once"
    );

    // Apps API: wrong secret, no header, and a revoked key are all refused.
    let (status, _) = crate::read(
        Client::new()
            .get(server.url("/apps/api/v1/agents"))
            .basic_auth(&server.api_key.0, Some("wrong"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = crate::read(
        Client::new()
            .get(server.url("/apps/api/v1/agents"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.apps(Method::GET, "/apps/api/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK);
    admin
        .expect(
            StatusCode::NO_CONTENT,
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", server.api_key.0),
            json!(null),
        )
        .await;
    let (status, _) = server.apps(Method::GET, "/apps/api/v1/agents", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
