//! Limits that keep strangers from exhausting the server: anonymous visitors' upload quotas
//! and creation rate, WebSocket origins, and a health check that sees a failing store.

use crate::chat::Consumer;
use crate::events::EventStream;
use crate::{backends, Backend, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn png(padding: usize) -> Vec<u8> {
    let mut file = PNG.to_vec();
    file.resize(PNG.len() + padding, 0);
    file
}

async fn upload(
    server: &Server,
    consumer: &Consumer,
    chat_id: &str,
    file: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let response = Client::new()
        .post(server.url(&format!("/chat/v1/attachments?chat_id={chat_id}")))
        .header("content-type", "image/png")
        .header("x-visitor-id", &consumer.visitor_id)
        .header("x-visitor-token", &consumer.visitor_token)
        .body(file)
        .send()
        .await
        .unwrap();
    crate::read_with_retry(response).await
}

async fn start_chat(consumer: &mut Consumer, server: &Server, client_id: &str) -> String {
    let queue = crate::chat::queue_path(server, "Billing > Refunds").await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": client_id, "queue_id": queue}))
        .await;
    let started = consumer.expect("chat_started").await;
    started["chat"]["chat_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_uploads_have_quotas_per_chat_visitor_and_minute() {
    let big = png(1000).len() as u64;
    let small = PNG.len() as u64;
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.security.chat_max_bytes = 2 * big + small;
        config.security.visitor_max_bytes = 3 * big + 3 * small;
        config.security.attachments_per_minute = 5;
    })
    .await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    let first = start_chat(&mut consumer, &server, "s1").await;
    let codes = |answer: &(StatusCode, Option<String>, Value)| {
        (answer.0, answer.2["code"].as_str().map(str::to_owned))
    };
    for _ in 0..2 {
        let answer = upload(&server, &consumer, &first, png(1000)).await;
        assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.2);
    }
    let answer = upload(&server, &consumer, &first, png(1000)).await;
    assert_eq!(
        codes(&answer),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("chat_quota_exceeded".into())
        )
    );
    let answer = upload(&server, &consumer, &first, png(0)).await;
    assert_eq!(answer.0, StatusCode::CREATED, "what still fits is taken");

    // A second chat of the same visitor: the visitor's total is the limit now.
    consumer
        .socket
        .send(json!({"type": "end", "chat_id": first}))
        .await;
    consumer.expect("chat_ended").await;
    let second = start_chat(&mut consumer, &server, "s2").await;
    assert_ne!(second, first);
    let answer = upload(&server, &consumer, &second, png(1000)).await;
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.2);
    let answer = upload(&server, &consumer, &second, png(1000)).await;
    assert_eq!(
        codes(&answer),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("visitor_quota_exceeded".into())
        )
    );
    let answer = upload(&server, &consumer, &second, png(0)).await;
    assert_eq!(answer.0, StatusCode::CREATED, "the fifth file this minute");
    // Five files stored this minute: the sixth waits, though it would fit.
    let answer = upload(&server, &consumer, &second, png(0)).await;
    assert_eq!(
        codes(&answer),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("too_many_uploads".into())
        )
    );
    let seconds: u64 = answer.1.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_from_one_address_are_rate_limited() {
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.security.visitors_per_minute = 2;
    })
    .await;
    let (first, _) = Consumer::new(&server, None).await;
    Consumer::new(&server, None).await;
    let mut third = EventStream::connect(&server, "/chat/v1/ws", None).await;
    third.send(json!({"type": "hello"})).await;
    let refused = third.next().await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("too_many_visitors")),
        "{refused}"
    );
    // A visitor who comes back is not a new one and is welcome.
    let (_, welcome) = Consumer::reconnect(&server, &first.visitor_id, &first.visitor_token).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

/// Opens a WebSocket with an `Origin` header and a cookie; the handshake's status.
async fn handshake(server: &Server, path: &str, origin: &str, cookie: Option<String>) -> u16 {
    let mut request = format!("ws://{}{path}", server.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            if response.status() == 403 {
                assert!(body.contains("origin_not_allowed"), "{body}");
            }
            response.status().as_u16()
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sockets_accept_only_their_own_and_configured_origins() {
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.security.allowed_origins = vec!["https://crm.example.com".into()];
    })
    .await;
    let agent = server.login("agent1").await;
    let own = format!("http://{}", server.address);
    for path in ["/api/v1/events", "/api/v1/agent/ws"] {
        let cookie = || Some(agent.cookie_pair());
        assert_eq!(
            handshake(&server, path, &own, cookie()).await,
            101,
            "{path}"
        );
        assert_eq!(
            handshake(&server, path, "https://crm.example.com", cookie()).await,
            101,
            "{path}: configured"
        );
        assert_eq!(
            handshake(&server, path, "https://evil.example", cookie()).await,
            403,
            "{path}: another site"
        );
        assert_eq!(
            handshake(&server, path, "http://crm.example.com", cookie()).await,
            403,
            "{path}: the scheme counts"
        );
    }
    // The widget's socket is for embedding sites: any origin.
    assert_eq!(
        handshake(&server, "/chat/v1/ws", "https://shop.example", None).await,
        101
    );
    // Not a WebSocket handshake at all: a JSON 400, not a bare text.
    let (status, body) = agent
        .call(reqwest::Method::GET, "/api/v1/events", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("websocket_expected"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_store_that_does_not_take_writes() {
    if !backends()
        .iter()
        .any(|backend| matches!(backend, Backend::Postgres))
    {
        return;
    }
    // A database that answers reads but refuses every write, as a full disk or a read-only
    // failover does.
    let server = Server::start(Backend::Postgres).await;
    let (status, health) = crate::read(reqwest::get(server.url("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["failing"], json!([]));
    let name = server.database_url.rsplit('/').next().unwrap().to_owned();
    let admin_url = std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let read_only = |on: bool| {
        format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = {}; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();",
            if on { "on" } else { "off" }
        )
    };
    sqlx::raw_sql(&read_only(true))
        .execute(&mut admin)
        .await
        .unwrap();
    let (status, health) = crate::read(reqwest::get(server.url("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["failing"], json!(["database_write"]), "{health}");
    assert_eq!(health["database"], "postgres");

    sqlx::raw_sql(&read_only(false))
        .execute(&mut admin)
        .await
        .unwrap();
    let (status, health) = crate::read(reqwest::get(server.url("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{health}");
}
