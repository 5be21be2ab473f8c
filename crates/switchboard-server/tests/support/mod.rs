//! Test support: start a real server on a free port, and talk to it as a browser and as an
//! integration would.

pub mod events;
pub mod smtp;
pub mod twilio;
pub mod webrtc;
pub mod zendesk;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard::{launch, App, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const PASSWORD: &str = "test-password-1";

/// A running server with its own database; stops when dropped.
pub struct Server {
    pub app: switchboard::app::AppState,
    pub base: String,
    pub address: SocketAddr,
    pub api_key: (String, String),
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    pub data_dir: PathBuf,
    /// Whether dropping the server removes its data directory (not after `stop`, which hands
    /// the data over for a restart).
    owns_data: bool,
    pub database_url: String,
    cleanup: Option<PostgresDatabase>,
}

/// A throwaway PostgreSQL database, dropped with the server.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backends() -> Vec<Backend> {
    if std::env::var("SWITCHBOARD_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("PostgreSQL left out: SWITCHBOARD_TEST_SKIP_POSTGRES=1");
        vec![Backend::Sqlite]
    } else {
        vec![Backend::Sqlite, Backend::Postgres]
    }
}

pub async fn postgres_database() -> (String, PostgresDatabase) {
    let admin_url = std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed (or set SWITCHBOARD_TEST_SKIP_POSTGRES=1): {e}"));
    let name = format!("switchboard_api_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    (
        format!("{base}/{name}"),
        PostgresDatabase { admin_url, name },
    )
}

impl Server {
    /// A new server on a fresh database of the given backend, with the demo center seeded.
    pub async fn start(backend: Backend) -> Server {
        Self::start_configured(backend, |_| {}).await
    }

    /// A new server like `start`, with the configuration adjusted first.
    /// A server whose wall clock reads a Monday at 10:00 in New York, when the demo center is
    /// open: for tests whose story needs its queues in hours (a transfer to a queue, say),
    /// whatever day they run on.
    pub async fn start_in_hours(backend: Backend) -> Server {
        Server::start_configured(backend, |config| config.wall_clock = in_hours()).await
    }

    pub async fn start_configured(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Server {
        let data_dir =
            std::env::temp_dir().join(format!("switchboard-api-{}", uuid::Uuid::new_v4()));
        let mut config = Config::for_data_dir(&data_dir);
        let mut cleanup = None;
        if let Backend::Postgres = backend {
            let (url, database) = postgres_database().await;
            config.database_url = url;
            cleanup = Some(database);
        }
        adjust(&mut config);
        Self::start_with(config, cleanup).await
    }

    /// A server on an existing configuration (to restart on the same database).
    pub async fn start_with(config: Config, cleanup: Option<PostgresDatabase>) -> Server {
        let app = App::start(config.clone()).await.expect("server starts");
        let credentials = switchboard::demo::seed(&app, PASSWORD.to_owned())
            .await
            .map_err(|e| e.message)
            .expect("demo seeds");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = app.clone();
        let handle = tokio::spawn(async move {
            launch(app, listener, async {
                stopped.await.ok();
            })
            .await
            .expect("server runs");
        });
        Server {
            app: running,
            base: format!("http://{address}"),
            address,
            api_key: (credentials.api_key_id, credentials.api_secret),
            stop: Some(stop),
            handle: Some(handle),
            data_dir: config.data_dir.clone(),
            owns_data: true,
            database_url: config.database_url.clone(),
            cleanup,
        }
    }

    /// Stops the server and waits for it; keeps the database for a restart.
    pub async fn stop(mut self) -> (Config, Option<PostgresDatabase>) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if let Some(handle) = self.handle.take() {
            handle.await.ok();
        }
        self.owns_data = false;
        let mut config = Config::for_data_dir(&self.data_dir);
        config.database_url = self.database_url.clone();
        (config, self.cleanup.take())
    }

    /// Where SIP listens (UDP and TCP), once the server has started it.
    pub async fn sip(&self) -> SocketAddr {
        for _ in 0..200 {
            if let Some(addr) = self.app.voice.local_addr() {
                return addr;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("SIP did not start");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A signed-in browser-like client.
    pub async fn login(&self, username: &str) -> Session {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status != StatusCode::OK {
            panic!(
                "login as {username}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        let cookie = response
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        Session {
            client,
            base: self.base.clone(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            cookie,
        }
    }

    /// A request authenticated as the demo integration.
    pub async fn apps(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Client::new()
            .request(method, self.url(path))
            .basic_auth(&self.api_key.0, Some(&self.api_key.1));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
        if self.owns_data {
            std::fs::remove_dir_all(&self.data_dir).ok();
        }
        if let Some(database) = self.cleanup.take() {
            drop_database(database);
        }
    }
}

/// Drops a test database from a separate thread (Drop cannot await).
pub fn drop_database(database: PostgresDatabase) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&database.admin_url).await {
                let _ = sqlx::raw_sql(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    database.name
                ))
                .execute(&mut admin)
                .await;
            }
        });
    })
    .join()
    .ok();
}

/// A signed-in user.
pub struct Session {
    pub client: Client,
    pub base: String,
    pub user_id: String,
    /// The Set-Cookie header the sign-in answered with.
    pub cookie: String,
}

/// An answer's status, its Retry-After (when it has one) and its JSON body.
pub async fn read_with_retry(response: Response) -> (StatusCode, Option<String>, Value) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = read(response).await;
    (status, retry_after, body)
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, value)
}

impl Session {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Calls and insists on the status.
    pub async fn expect(
        &self,
        status: StatusCode,
        method: Method,
        path: &str,
        body: Value,
    ) -> Value {
        let (got, answer) = self.call(method.clone(), path, Some(body)).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// The session token from the cookie (for the WebSocket handshake).
    pub fn cookie_pair(&self) -> String {
        self.cookie.split(';').next().unwrap().to_owned()
    }
}

/// Finds an item of a JSON array by a field's value.
pub fn find<'a>(list: &'a Value, field: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item[field] == value)
        .unwrap_or_else(|| panic!("no {field}={value} in {list}"))
}

/// Monday 2026-01-05 10:00 in New York: the demo center is open.
pub fn in_hours() -> switchboard::config::WallClock {
    use chrono::TimeZone;
    switchboard::config::WallClock::starting_at(
        chrono::Utc.with_ymd_and_hms(2026, 1, 5, 15, 0, 0).unwrap(),
    )
}
