//! Sign-in, sessions, two-factor, throttling, and who may do what.

use crate::{find, Backend, Server, PASSWORD};
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

pub(crate) fn code_at(secret: &str, unix_seconds: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 0, 30, bytes)
        .unwrap()
        .generate(unix_seconds)
}

pub(crate) fn now_seconds() -> u64 {
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

/// A client whose requests come from `address` (any 127.x address reaches the loopback).
fn client_from(address: &str) -> Client {
    Client::builder()
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn sign_in_from(
    server: &Server,
    client: &Client,
    username: &str,
    password: &str,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    crate::read_with_retry(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_failures_do_not_lock_the_owner_out() {
    // No delays, small counts: the story runs at once, the rules are the defaults' shape.
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.security.login_throttle = switchboard_core::throttle::Policy {
            free_failures: 1,
            first_delay: chrono::Duration::zero(),
            max_delay: chrono::Duration::zero(),
            source_refuse_after: 4,
            account_slow_after: 100,
            account_refuse_after: 6,
            ..Default::default()
        };
    })
    .await;
    let owner = client_from("127.0.0.1");
    let (status, _, _) = sign_in_from(&server, &owner, "agent2", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the owner's usual address");

    // A guesser is refused after four failures, the right password included, with a wait.
    let guesser = client_from("127.0.0.2");
    for _ in 0..4 {
        let (status, _, body) = sign_in_from(&server, &guesser, "agent2", "wrong password").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    let (status, retry_after, body) = sign_in_from(&server, &guesser, "agent2", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&seconds), "{seconds}");

    // Failures from a second address bring the account over its limit: new addresses are
    // refused for it, other accounts are not.
    let second = client_from("127.0.0.3");
    for _ in 0..2 {
        let (status, _, _) = sign_in_from(&server, &second, "agent2", "wrong again").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let newcomer = client_from("127.0.0.4");
    let (status, _, body) = sign_in_from(&server, &newcomer, "agent2", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let (status, _, _) = sign_in_from(&server, &newcomer, "agent1", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "another account is not affected");

    // The owner, from their own address, still signs in with the right password.
    let (status, _, body) = sign_in_from(&server, &owner, "agent2", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An unknown name answers exactly like a wrong password.
    let (status, _, body) = sign_in_from(&server, &owner, "nobody", "x").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );

    // Admins see the throttles and clear them; others may not; clearing is audited.
    let admin = server.login("admin").await;
    let list = admin.get("/api/v1/security/throttles").await;
    let source = find(&list, "key", "source:127.0.0.2");
    assert_eq!(source["failures"], 4);
    assert!(source["refused_until"].is_string(), "{list}");
    assert!(find(&list, "key", "account:agent2")["failures"].as_u64() >= Some(6));
    let agent = server.login("agent1").await;
    let (status, _) = agent
        .call(Method::GET, "/api/v1/security/throttles", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = agent
        .call(
            Method::DELETE,
            "/api/v1/security/throttles/source:127.0.0.2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An account is cleared however its name is written.
    for key in ["source:127.0.0.2", "account:Agent2"] {
        let (status, body) = admin
            .call(
                Method::DELETE,
                &format!("/api/v1/security/throttles/{key}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, body) = admin
        .call(
            Method::DELETE,
            "/api/v1/security/throttles/source:127.0.0.2",
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = admin
        .call(Method::DELETE, "/api/v1/security/throttles/nonsense", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path"))
    );
    let (status, _, body) = sign_in_from(&server, &guesser, "agent2", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "cleared: {body}");
    let audit = admin.get("/api/v1/audit?action=throttle_cleared").await;
    assert_eq!(audit.as_array().unwrap().len(), 2, "{audit}");
    assert_eq!(audit[0]["actor_id"], admin.user_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_is_bounded_and_refuses_beyond_its_slots() {
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.security.password_hash_slots = 1;
    })
    .await;
    // Every slot is taken (as by a flood of sign-ins): the next sign-in is refused at once
    // rather than queued.
    let taken = server
        .app
        .password_hashing
        .clone()
        .acquire_owned()
        .await
        .unwrap();
    let client = client_from("127.0.0.1");
    let (status, retry_after, body) = sign_in_from(&server, &client, "agent1", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("busy"))
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    drop(taken);
    let (status, _, body) = sign_in_from(&server, &client, "agent1", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.app.password_hashing.available_permits(),
        1,
        "the slot is returned"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_and_the_key_rotates() {
    use sqlx::Connection;
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let enrolment = admin
        .expect(
            StatusCode::OK,
            Method::POST,
            "/api/v1/auth/totp/enroll",
            json!({}),
        )
        .await;
    let totp = enrolment["secret"].as_str().unwrap().to_owned();
    let identity = admin.get("/api/v1/integrations").await["identity_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let (config, database) = server.stop().await;

    let raw = |sql: &'static str| {
        let url = config.database_url.clone();
        async move {
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let value: String = sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap();
            value
        }
    };
    let stored_totp = raw("SELECT totp_secret FROM users WHERE username = 'admin'").await;
    let stored_identity = raw("SELECT identity_secret FROM integration_settings").await;
    for (stored, clear) in [(&stored_totp, &totp), (&stored_identity, &identity)] {
        assert!(switchboard_store::is_sealed(stored), "{stored}");
        assert!(!stored.contains(clear.as_str()));
    }
    // A row an older version wrote in clear.
    {
        let mut db = sqlx::SqliteConnection::connect(&config.database_url)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE integration_settings SET crm_webhook_secret = 'webhook-secret-in-clear'",
        )
        .execute(&mut db)
        .await
        .unwrap();
    }

    // Rotation seals everything under a new key and keeps only that key.
    let key_before = std::fs::read_to_string(config.data_dir.join("secret.key")).unwrap();
    let rotation = switchboard::vault::rotate(&config).await.unwrap();
    assert_eq!(
        rotation.secrets, 3,
        "TOTP, identity and the clear webhook secret"
    );
    assert!(rotation.dropped_old_keys && !rotation.resumed);
    let key_after = std::fs::read_to_string(config.data_dir.join("secret.key")).unwrap();
    assert_ne!(key_before, key_after);
    assert_eq!(key_after.lines().count(), 1);
    let rotated_totp = raw("SELECT totp_secret FROM users WHERE username = 'admin'").await;
    assert!(switchboard_store::is_sealed(&rotated_totp));
    assert_ne!(rotated_totp, stored_totp);
    assert!(switchboard_store::is_sealed(
        &raw("SELECT crm_webhook_secret FROM integration_settings").await
    ));

    // After a restart everything reads back: the TOTP enrolment confirms with its secret.
    let server = Server::start_with(config, database).await;
    let admin = server.login("admin").await;
    admin
        .expect(
            StatusCode::NO_CONTENT,
            Method::POST,
            "/api/v1/auth/totp/confirm",
            json!({"code": code_at(&totp, now_seconds())}),
        )
        .await;
    let integrations = admin.get("/api/v1/integrations").await;
    assert_eq!(integrations["identity_secret"], identity.as_str());
    assert_eq!(
        integrations["crm_webhook_secret"],
        "webhook-secret-in-clear"
    );
}
