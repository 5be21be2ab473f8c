//! Inbound SMS benchmark (issue 12: at least 1,000 webhooks a second stored before the 200
//! answer, p99 under 50 ms, on SQLite and on PostgreSQL).
//!
//! The server runs in this process (`App::start` and `launch` on port 0, the demo center
//! seeded), with the SMS settings holding an auth token and the public URL, so every request
//! is a real Twilio webhook: form-encoded, signed with `X-Twilio-Signature`, checked, stored,
//! and answered with empty TwiML only after that. Phases: first contacts (each sender's first
//! message starts a conversation in the demo's SMS queue), then an open-loop load at the target
//! rate of messages from those senders into their open conversations (each a stored inbound
//! row and a chat message through the group-committing writer), latency from send to the 200;
//! then the same load as fast as a window of requests goes, for the ceiling. Every webhook
//! answered 200 is counted in the store at the end.
//! Run: `cargo bench -p switchboard --bench sms` (`-- --quick` for a short run).
//! PostgreSQL: `SWITCHBOARD_BENCH_POSTGRES` (default `postgres://root@127.0.0.1:5432/postgres`);
//! a fresh database is made and dropped.

use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::sms::twilio::signature;
use switchboard_store::SmsSettings;

const TOKEN: &str = "bench-twilio-auth-token-0123456789";

struct Figures {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Figures {
    fn from(mut latencies: Vec<Duration>, seconds: f64) -> Figures {
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len() - 1))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Figures {
            requests: latencies.len(),
            seconds,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }
    }

    fn print(&self, backend: &str, phase: &str) {
        println!(
            "{backend:8} {phase:28} {:6} webhooks in {:5.2} s = {:7.0}/s   p50 {:6.2} ms   p99 {:6.2} ms   max {:6.2} ms",
            self.requests,
            self.seconds,
            self.requests as f64 / self.seconds,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        );
    }
}

/// One webhook, signed; returns how long until the 200.
async fn webhook(
    client: &reqwest::Client,
    url: &str,
    from: &str,
    sid: &str,
    body: &str,
) -> Duration {
    let params: Vec<(String, String)> = [
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("ApiVersion", "2010-04-01"),
        ("Body", body),
        ("From", from),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
        ("To", "+15550001111"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let signed = signature(TOKEN, url, &params);
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let started = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signed)
        .body(form)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status} {text}");
    started.elapsed()
}

async fn run(backend: &str, database_url: String, quick: bool) {
    let data_dir =
        std::env::temp_dir().join(format!("switchboard-bench-sms-{}", uuid::Uuid::new_v4()));
    let mut config = switchboard::Config::for_data_dir(&data_dir);
    config.database_url = database_url;
    let app = switchboard::App::start(config)
        .await
        .expect("server starts");
    switchboard::demo::seed(&app, "bench-password-1".into())
        .await
        .map_err(|e| e.message)
        .expect("demo seeds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = app.services.store.clone();
    store
        .put_sms_settings(&SmsSettings {
            auth_token: Some(TOKEN.into()),
            public_url: Some(base.clone()),
            ..SmsSettings::default()
        })
        .await
        .unwrap();
    tokio::spawn(switchboard::launch(app, listener, std::future::pending()));
    let url = Arc::new(format!("{base}{}", switchboard::sms::INBOUND_PATH));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let senders: usize = if quick { 100 } else { 500 };
    let rate: u64 = 1000;
    let seconds: u64 = if quick { 3 } else { 10 };
    let sender = |n: usize| format!("+1555{:07}", n);

    // First contacts: each sender's first message starts a conversation; 16 at a time.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..16 {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= senders {
                    return latencies;
                }
                let sid = format!("SMfirst{n:027}");
                latencies
                    .push(webhook(&client, &url, &sender(n), &sid, "Hello, I need help").await);
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    Figures::from(latencies, started.elapsed().as_secs_f64())
        .print(backend, "first contacts (16 at once)");

    // Open loop at the target rate, round the senders' open conversations.
    let total = (rate * seconds) as usize;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_micros(i as u64 * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, url) = (client.clone(), url.clone());
        let from = sender(i % senders);
        tasks.spawn(async move {
            let sid = format!("SMopen{i:028}");
            webhook(&client, &url, &from, &sid, "Any news on my order?").await
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.push(done.unwrap());
    }
    Figures::from(latencies, started.elapsed().as_secs_f64())
        .print(backend, &format!("open loop at {rate}/s"));

    // The ceiling: 64 requests in flight, as fast as they are answered.
    let total = total.min(if quick { 3000 } else { 10_000 });
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let sid = format!("SMfast{i:028}");
                latencies
                    .push(webhook(&client, &url, &sender(i % senders), &sid, "Still there?").await);
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    Figures::from(latencies, started.elapsed().as_secs_f64())
        .print(backend, "closed loop, 64 in flight");

    let stored = store.count_inbound_sms().await.unwrap();
    let expected = (senders + (rate * seconds) as usize + total) as u64;
    assert_eq!(stored, expected, "every webhook answered 200 is stored");
    println!("{backend:8} stored: {stored} inbound messages, every one answered");
    std::fs::remove_dir_all(&data_dir).ok();
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir =
            std::env::temp_dir().join(format!("switchboard-bench-sms-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        run(
            "sqlite",
            format!("sqlite://{}", dir.join("bench.db").display()),
            quick,
        )
        .await;
        std::fs::remove_dir_all(&dir).ok();

        let admin_url = std::env::var("SWITCHBOARD_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
        let name = format!("switchboard_bench_sms_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL for the benchmark");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (root, _) = admin_url.rsplit_once('/').unwrap();
        run("postgres", format!("{root}/{name}"), quick).await;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .ok();
    });
}
