//! Failed sign-in memory benchmark (hardening issue): 1,000 failed sign-ins with random
//! usernames at 32 at once must leave the server's memory flat, because password hashing
//! (argon2, about 19 MiB a hash) runs in a bounded number of slots and sign-ins beyond them
//! are refused with 503 at once.
//!
//! The server runs as its own process (`target/release/switchboard demo`, SQLite, voice off,
//! pinned to core 0 when `taskset` exists) so its memory is measured alone. Two runs: with
//! sign-in throttling out of the way (so every attempt reaches the password check: the worst
//! case for memory), and with the default throttle (one source address soon gets 429 without
//! any hashing). Reported: the answers by status, the wall time, and the server's resident
//! memory before, after and at its peak (`VmHWM` in `/proc/<pid>/status`).
//! Run: `scripts/bench-login.sh`.

#[path = "support/process.rs"]
mod process;
use process::status_kib;
use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ATTEMPTS: usize = 1_000;
const CONCURRENCY: usize = 32;

fn start_server(port: u16, data_dir: &std::path::Path, throttled: bool) -> Child {
    let mut command = process::server_command();
    command
        .arg("demo")
        .env("SWITCHBOARD_HTTP", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("SWITCHBOARD_SIP", "off")
        .env("SWITCHBOARD_DEMO_PASSWORD", "bench-password-1");
    if !throttled {
        command
            .env("SWITCHBOARD_LOGIN_FREE_FAILURES", "1000000")
            .env("SWITCHBOARD_LOGIN_SOURCE_REFUSE_AFTER", "1000000")
            .env("SWITCHBOARD_LOGIN_ACCOUNT_SLOW_AFTER", "1000000")
            .env("SWITCHBOARD_LOGIN_ACCOUNT_REFUSE_AFTER", "1000000");
    }
    command
        .spawn()
        .expect("the release binary exists: cargo build --release -p switchboard")
}

async fn run(throttled: bool, port: u16) {
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-login-{port}"));
    std::fs::remove_dir_all(&data_dir).ok();
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut server = start_server(port, &data_dir, throttled);
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The demo seeding hashes a few passwords; measure from a settled process.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = status_kib(pid, "VmRSS:");
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(BTreeMap::<u16, usize>::new()));
    let began = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, next, statuses, base) =
                (client.clone(), next.clone(), statuses.clone(), base.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= ATTEMPTS {
                        break;
                    }
                    let body = serde_json::json!({
                        "username": format!("nobody{n}x{}", uuid::Uuid::new_v4().simple()),
                        "password": "not the password",
                    });
                    let status = match client
                        .post(format!("{base}/api/v1/auth/login"))
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    };
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = began.elapsed();
    let after = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    server.kill().ok();
    server.wait().ok();
    std::fs::remove_dir_all(&data_dir).ok();
    let answers: Vec<String> = statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "{:<22} {ATTEMPTS} failed sign-ins at {CONCURRENCY} at once in {:.1} s; answers {}; \
         server RSS before {:.1} MiB, after {:.1} MiB, peak {:.1} MiB",
        if throttled {
            "default throttle:"
        } else {
            "throttle out of the way:"
        },
        elapsed.as_secs_f64(),
        answers.join(", "),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    run(false, 18471).await;
    run(true, 18472).await;
}
