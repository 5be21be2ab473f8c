//! Web chat load benchmark (issue: 10,000 concurrent consumer connections at no more than
//! 30 KB of server memory each; at least 5,000 delivered messages per second, every message
//! stored before it is acknowledged; p99 delivery latency under 100 ms; on SQLite and on
//! PostgreSQL).
//!
//! The server runs as its own process (`target/release/switchboard demo`, pinned to core 0 when
//! `taskset` exists) so its memory is measured alone; this program is the load and runs pinned
//! to core 1 by `scripts/bench-chat.sh`. Steps: open the idle consumer connections (each says
//! hello and gets its welcome) and read the server's resident memory before and after; then,
//! with them still open, active consumers in chats held by agents send messages with a small
//! window of unacknowledged ones; latency is from a consumer's send to the agent's receipt of
//! that message, which the server forwards only after storing it.
//! Run: `scripts/bench-chat.sh` (or `-- --quick` for a short run).

#[path = "support/process.rs"]
mod process;
use futures_util::{SinkExt, StreamExt};
use process::{cpu_seconds, rss_kib};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PASSWORD: &str = "bench-password-1";

struct Options {
    database: String,
    idle: usize,
    agents: usize,
    chats_per_agent: usize,
    window: usize,
    seconds: u64,
    /// The open-loop rate, messages a second for all chats together.
    rate: u32,
}

fn start_server(port: u16, database: &str, data_dir: &std::path::Path) -> Child {
    let mut command = process::server_command();
    command
        .arg("demo")
        .env("SWITCHBOARD_HTTP", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_DATABASE_URL", database)
        .env("SWITCHBOARD_DEMO_PASSWORD", PASSWORD)
        .spawn()
        .expect("the release binary exists: cargo build --release -p switchboard")
}

async fn socket(base: &str, path: &str, cookie: Option<&str>) -> Socket {
    let mut request = format!("{}{path}", base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .expect("socket")
        .0
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await.expect("open").expect("frame") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            _ => continue,
        }
    }
}

async fn until(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let event = next_json(socket).await;
        if event["type"] == kind {
            return event;
        }
    }
}

/// How the active consumers send.
#[derive(Clone, Copy)]
enum Load {
    /// Each keeps this many messages unacknowledged.
    Closed { window: usize },
    /// All together send this many messages a second, each chat on its own timer.
    Open { rate: u32 },
}

struct Figures {
    sent: u64,
    acked: u64,
    delivered: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Runs one load for `seconds`, then hands the sockets back for the next phase.
async fn drive(
    desks: Vec<Socket>,
    consumers: Vec<(Socket, String)>,
    load: Load,
    seconds: u64,
) -> (Vec<Socket>, Vec<(Socket, String)>, Figures) {
    let sent_at: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tag = match load {
        Load::Closed { .. } => "c",
        Load::Open { .. } => "o",
    };
    let mut receivers = Vec::new();
    for mut desk in desks {
        let sent_at = sent_at.clone();
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let stop = deadline + Duration::from_secs(3);
            while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(stop.into(), desk.next()).await
            {
                if let Message::Text(text) = frame {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    if event["type"] == "message" && event["message"]["from"] == "consumer" {
                        let key = event["message"]["client_id"].as_str().unwrap().to_owned();
                        if let Some(at) = sent_at.lock().unwrap().remove(&key) {
                            latencies.push(at.elapsed());
                        }
                    }
                }
            }
            (desk, latencies)
        }));
    }
    let chats = consumers.len().max(1);
    let started = Instant::now();
    let mut senders = Vec::new();
    for (n, (mut consumer, chat)) in consumers.into_iter().enumerate() {
        let sent_at = sent_at.clone();
        senders.push(tokio::spawn(async move {
            let (mut sent, mut acked, mut in_flight) = (0u64, 0u64, 0usize);
            let send = |consumer_sent: u64| {
                let client_id = format!("{tag}{n}-{consumer_sent}");
                sent_at.lock().unwrap().insert(client_id.clone(), Instant::now());
                json!({"type": "message", "chat_id": chat, "client_id": client_id, "text": "benchmark message of a typical length, about sixty characters"}).to_string()
            };
            match load {
                Load::Closed { window } => loop {
                    while in_flight < window && Instant::now() < deadline {
                        consumer.send(Message::Text(send(sent).into())).await.unwrap();
                        sent += 1;
                        in_flight += 1;
                    }
                    if in_flight == 0 {
                        break;
                    }
                    let event = next_json(&mut consumer).await;
                    if event["type"] == "ack" {
                        acked += 1;
                        in_flight -= 1;
                    } else if event["type"] == "error" {
                        panic!("server refused a message: {event}");
                    }
                },
                Load::Open { rate } => {
                    let every = Duration::from_secs_f64(chats as f64 / f64::from(rate));
                    // Spread the chats' timers over one period so sends do not come in bursts.
                    let offset = every.mul_f64(n as f64 / chats as f64);
                    let mut tick = tokio::time::interval_at((Instant::now() + offset).into(), every);
                    loop {
                        tokio::select! {
                            _ = tick.tick(), if Instant::now() < deadline => {
                                consumer.send(Message::Text(send(sent).into())).await.unwrap();
                                sent += 1;
                            }
                            frame = consumer.next() => {
                                if let Some(Ok(Message::Text(text))) = frame {
                                    let event: Value = serde_json::from_str(&text).unwrap();
                                    if event["type"] == "ack" {
                                        acked += 1;
                                    }
                                }
                            }
                        }
                        if Instant::now() >= deadline && acked == sent {
                            break;
                        }
                    }
                }
            }
            (consumer, chat, sent, acked)
        }));
    }
    let (mut sent, mut acked, mut consumers) = (0, 0, Vec::new());
    for sender in senders {
        let (consumer, chat, s, a) = sender.await.unwrap();
        sent += s;
        acked += a;
        consumers.push((consumer, chat));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut desks, mut latencies) = (Vec::new(), Vec::new());
    for receiver in receivers {
        let (desk, l) = receiver.await.unwrap();
        desks.push(desk);
        latencies.extend(l);
    }
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let figures = Figures {
        sent,
        acked,
        delivered: latencies.len(),
        seconds,
        p50_ms: ms(at(0.5)),
        p99_ms: ms(at(0.99)),
        max_ms: ms(latencies.last().copied().unwrap_or_default()),
    };
    (desks, consumers, figures)
}

struct Api {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Api {
    async fn login(base: &str, username: &str) -> Api {
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Api {
            client,
            base: base.into(),
            cookie,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }
}

async fn run(options: &Options) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-{port}"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let database = if options.database == "sqlite" {
        format!("sqlite://{}/bench.db", data_dir.display())
    } else {
        options.database.clone()
    };
    let mut server = start_server(port, &database, &data_dir);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let backend = if options.database == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    };

    // Agents for a bench queue, each with room for its share of the active chats.
    let admin = Api::login(&base, "admin").await;
    let queue = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/queues",
            json!({"channel": "web", "name": format!("Bench {port}"), "kind": "leaf"}),
        )
        .await;
    let profile = admin.call(reqwest::Method::POST, "/api/v1/capacity-profiles", json!({"name": format!("Bench {port}"), "max_chats": options.chats_per_agent, "max_calls": 0})).await;
    let mut desks = Vec::new();
    for n in 0..options.agents {
        let name = format!("bench{n}");
        admin.call(reqwest::Method::POST, "/api/v1/users", json!({"username": name, "role": "agent", "password": PASSWORD, "queues": [queue["id"]], "capacity_profile_id": profile["id"]})).await;
        let agent = Api::login(&base, &name).await;
        let me = agent
            .call(reqwest::Method::GET, "/api/v1/auth/me", Value::Null)
            .await;
        agent
            .call(
                reqwest::Method::PUT,
                &format!(
                    "/api/v1/agents/{}/presence",
                    me["user"]["id"].as_str().unwrap()
                ),
                json!({"presence": "available"}),
            )
            .await;
        let mut desk = socket(&base, "/api/v1/agent/ws", Some(&agent.cookie)).await;
        until(&mut desk, "welcome").await;
        desks.push(desk);
    }

    // Idle consumer connections: memory before and after.
    let rss_before = rss_kib(server.id());
    let started = Instant::now();
    let idle = Arc::new(Mutex::new(Vec::with_capacity(options.idle)));
    let mut openers = Vec::new();
    let per_task = options.idle.div_ceil(50);
    for chunk in 0..50 {
        let (idle, base) = (idle.clone(), base.clone());
        let count = per_task.min(options.idle.saturating_sub(chunk * per_task));
        openers.push(tokio::spawn(async move {
            for _ in 0..count {
                let mut consumer = socket(&base, "/chat/v1/ws", None).await;
                consumer
                    .send(Message::Text(json!({"type": "hello"}).to_string().into()))
                    .await
                    .unwrap();
                until(&mut consumer, "welcome").await;
                idle.lock().await.push(consumer);
            }
        }));
    }
    for opener in openers {
        opener.await.unwrap();
    }
    let opened = idle.lock().await.len();
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(server.id());
    let per_connection_kib = (rss_after.saturating_sub(rss_before)) as f64 / opened.max(1) as f64;

    // Active chats: one per consumer, spread over the agents by routing.
    let active = options.agents * options.chats_per_agent;
    let mut consumers = Vec::with_capacity(active);
    for n in 0..active {
        let mut consumer = socket(&base, "/chat/v1/ws", None).await;
        consumer
            .send(Message::Text(json!({"type": "hello"}).to_string().into()))
            .await
            .unwrap();
        until(&mut consumer, "welcome").await;
        consumer
            .send(Message::Text(
                json!({"type": "start", "client_id": format!("s{n}"), "queue_id": queue["id"]})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        let started = until(&mut consumer, "chat_started").await;
        consumers.push((
            consumer,
            started["chat"]["chat_id"].as_str().unwrap().to_owned(),
        ));
    }
    let mut assigned = 0;
    for desk in desks.iter_mut() {
        for _ in 0..options.chats_per_agent {
            until(desk, "chat_assigned").await;
            assigned += 1;
        }
    }
    assert_eq!(assigned, active, "every active chat reached an agent");

    // Phase 1, capacity: each consumer keeps `window` messages unacknowledged (closed loop).
    // Phase 2, latency at the target: every chat sends on its own timer so that all together
    // send `rate` messages a second (open loop), which is how people load a center.
    let cpu_start = cpu_seconds(server.id());
    let load_start = cpu_seconds(std::process::id());
    let (desks, consumers, capacity) = drive(
        desks,
        consumers,
        Load::Closed {
            window: options.window,
        },
        options.seconds,
    )
    .await;
    let cpu_capacity = cpu_seconds(server.id()) - cpu_start;
    let (_, _, target) = drive(
        desks,
        consumers,
        Load::Open { rate: options.rate },
        options.seconds,
    )
    .await;
    let cpu_target = cpu_seconds(server.id()) - cpu_start - cpu_capacity;
    let load_cpu = cpu_seconds(std::process::id()) - load_start;
    println!(
        "{backend:<10} | load generator CPU over both phases: {:.0}%",
        100.0 * load_cpu / (capacity.seconds + target.seconds)
    );
    let rss_end = rss_kib(server.id());
    for (name, f, cpu) in [
        ("capacity (closed loop, window 4)", &capacity, cpu_capacity),
        ("target rate (open loop)", &target, cpu_target),
    ] {
        println!(
            "{backend:<10} | {name:<32} | sent {:>6} acked {:>6} delivered {:>6} in {:.1} s = {:>6.0} msg/s | delivery p50 {:>6.1} ms p99 {:>6.1} ms max {:>6.1} ms | server CPU {:.0}% ({:.0} µs/msg)",
            f.sent, f.acked, f.delivered, f.seconds, f.delivered as f64 / f.seconds, f.p50_ms, f.p99_ms, f.max_ms,
            100.0 * cpu / f.seconds, 1e6 * cpu / f.delivered.max(1) as f64
        );
        assert_eq!(f.sent, f.acked, "every message sent was acknowledged");
    }
    println!(
        "{backend:<10} | {opened} idle consumer connections opened in {open_seconds:.1} s: {per_connection_kib:.1} KiB of server memory each | {active} active chats | server RSS {:.0} MiB",
        rss_end as f64 / 1024.0
    );
    drop(idle);
    let _ = server.kill();
    let _ = server.wait();
    std::fs::remove_dir_all(&data_dir).ok();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let database = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "sqlite".into());
    let database = if database == "postgres" {
        std::env::var("SWITCHBOARD_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/switchboard_bench".into())
    } else {
        database
    };
    let options = Options {
        database,
        idle: std::env::var("BENCH_IDLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 1_000 } else { 10_000 }),
        agents: 8,
        chats_per_agent: if quick { 10 } else { 25 },
        window: 4,
        seconds: if quick { 3 } else { 10 },
        rate: 5_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&options));
}
