//! Recording uploads benchmark (issue "recordings reach the CRM"): 1,000 recordings of five
//! minutes each (9.6 MB of stereo 8 kHz WAV apiece) queued for the CRM at once; they upload
//! at the connector's pace while the server's memory stays flat.
//!
//! The recordings, their answered calls and tickets are written before the server starts,
//! through the store and the server's own blob store (so files are stored as the server keeps
//! them). The release server runs as its own process (`switchboard serve`, on core 0 when
//! `taskset` exists) with the webhook CRM connector pointing at a CRM in this process that
//! checks each part's signature while streaming it (its memory is its own, not the server's),
//! optionally at a set pace. Once the server is idle its resident memory is read; then every
//! recording's first part is queued at once, and the server's memory is sampled every 50 ms
//! until the last recording is acknowledged and deleted.
//!
//! Run: `scripts/bench-uploads.sh` (`-- --quick` for 100 recordings, `--mbps N` to pace the
//! CRM at N MB/s, `--db postgres` for PostgreSQL).

#[path = "support/process.rs"]
mod process;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use process::{cpu_seconds, rss_kib, status_kib};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use switchboard_core::voice::{CallDirection, CallRecord, Disposition, Recording, RecordingStatus};
use switchboard_core::{CallId, JobId, RecordingId, TicketId, UserId};
use switchboard_store::{Job, JobState, Ticket, UploadState};
use uuid::Uuid;

const SECRET: &str = "bench-webhook-secret";
/// Five minutes of stereo 16-bit audio at 8 kHz, with its header.
const RECORDING_BYTES: u64 = 5 * 60 * 8000 * 2 * 2 + 44;

struct Options {
    database: String,
    recordings: usize,
    /// The CRM's pace in MB/s (0: as fast as it reads).
    mbps: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    Options {
        database: match value("--db").as_deref() {
            Some("postgres") => "postgres://root@127.0.0.1:5432/switchboard_bench".into(),
            _ => String::new(),
        },
        recordings: if quick { 100 } else { 1000 },
        mbps: value("--mbps").and_then(|v| v.parse().ok()).unwrap_or(0),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the CRM received.
#[derive(Default)]
struct Received {
    parts: AtomicU64,
    bytes: AtomicU64,
    bad_signatures: AtomicU64,
}

/// The webhook CRM: streams each part through its signature check, at the pace asked for.
async fn crm(received: Arc<Received>, mbps: u64) -> String {
    let handler = move |headers: HeaderMap, body: Body| {
        let received = received.clone();
        async move {
            let mut signer = switchboard::http::webhook::Signer::new(SECRET);
            let mut stream = body.into_data_stream();
            let started = Instant::now();
            let mut bytes = 0_u64;
            while let Some(Ok(chunk)) = stream.next().await {
                signer.update(&chunk);
                bytes += chunk.len() as u64;
                if mbps > 0 {
                    let due =
                        std::time::Duration::from_secs_f64(bytes as f64 / (mbps as f64 * 1e6));
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            let signed = headers
                .get("x-switchboard-signature")
                .and_then(|v| v.to_str().ok())
                == Some(format!("sha256={}", signer.finish()).as_str());
            if headers
                .get("x-switchboard-event")
                .and_then(|v| v.to_str().ok())
                == Some("recording_part")
            {
                if !signed {
                    received.bad_signatures.fetch_add(1, Ordering::Relaxed);
                    return axum::http::StatusCode::UNAUTHORIZED.into_response();
                }
                received.parts.fetch_add(1, Ordering::Relaxed);
                received.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            axum::Json(json!({"id": "ok"})).into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/crm", axum::routing::post(handler)),
        )
        .await
        .ok();
    });
    url
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    let data_dir =
        std::env::temp_dir().join(format!("switchboard-bench-uploads-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let database = if options.database.is_empty() {
        format!("sqlite://{}", data_dir.join("switchboard.db").display())
    } else {
        options.database.clone()
    };
    let received = Arc::new(Received::default());
    let url = crm(received.clone(), options.mbps).await;

    // The center as the server will find it: the CRM connector, and the recordings with their
    // answered calls and tickets, written the way the server stores them.
    let mut config = switchboard::Config::for_data_dir(&data_dir);
    config.database_url = database.clone();
    let store = switchboard_store::open(&database)
        .await
        .expect("the database opens");
    let mut settings = store
        .integration_settings("bench-identity-secret-0123456789abcdef")
        .await
        .unwrap();
    settings.crm_connector = "webhook".into();
    settings.crm_webhook_url = Some(url);
    settings.crm_webhook_secret = Some(SECRET.into());
    store.update_integration_settings(&settings).await.unwrap();
    let blobs = switchboard::app::recording_blobs(&config).expect("the recordings' store opens");
    let now = Utc::now();
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i ^ (i >> 7)) as u8).collect();
    let written = Instant::now();
    let mut recordings = Vec::with_capacity(options.recordings);
    for _ in 0..options.recordings {
        let call = CallId::from_uuid(Uuid::now_v7());
        let mut record = CallRecord::new(
            call,
            "+15557654321".into(),
            "15550100".into(),
            now - Duration::minutes(6),
        );
        record.answered_at = Some(now - Duration::minutes(5));
        record.ended_at = Some(now);
        record.agent = Some(UserId::from_uuid(Uuid::now_v7()));
        record.disposition = Disposition::Answered;
        record.direction = CallDirection::Inbound;
        store.put_call(&record).await.unwrap();
        store
            .insert_ticket(&Ticket {
                id: TicketId::from_uuid(Uuid::now_v7()),
                contact: None,
                visitor: None,
                identity: None,
                name: "Phone User - bench".into(),
                status: "open".into(),
                transcript: None,
                external_id: None,
                created_at: now,
                updated_at: now,
                call: Some(call),
                phone: Some(record.caller.clone()),
            })
            .await
            .unwrap();
        let id = RecordingId::from_uuid(Uuid::now_v7());
        let key = switchboard::recordings::blob_key(id);
        let mut writer = blobs.create_writer(&key).unwrap();
        let mut left = RECORDING_BYTES;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            std::io::Write::write_all(&mut writer, &chunk[..n]).unwrap();
            left -= n as u64;
        }
        let size = writer.finish().unwrap();
        store
            .put_recording(&Recording {
                id,
                call,
                agent: record.agent,
                started_at: now - Duration::minutes(5),
                ended_at: Some(now),
                duration_ms: 300_000,
                size_bytes: size,
                paused: Vec::new(),
                status: RecordingStatus::Complete,
                blob_key: key,
            })
            .await
            .unwrap();
        recordings.push(id);
    }
    let total_bytes = options.recordings as u64 * RECORDING_BYTES;
    println!(
        "{} recordings of {:.1} MB written in {:.1} s ({:.1} GB)",
        options.recordings,
        RECORDING_BYTES as f64 / 1e6,
        written.elapsed().as_secs_f64(),
        total_bytes as f64 / 1e9
    );

    let port = free_port();
    let mut command = process::server_command();
    command
        .arg("serve")
        .env("SWITCHBOARD_HTTP", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_DATA_DIR", &data_dir)
        .env("SWITCHBOARD_DATABASE_URL", &database)
        .env("SWITCHBOARD_SIP", "off")
        .env("SWITCHBOARD_ADMIN_PASSWORD", "bench-password-1");
    let server = Server(
        command
            .spawn()
            .expect("the release binary exists: cargo build --release -p switchboard"),
    );
    let pid = server.0.id();
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let idle = rss_kib(pid);
    let cpu_before = cpu_seconds(pid);

    // Every recording's first part, queued at once.
    let queued = Utc::now();
    for id in &recordings {
        let mut bytes = *id.uuid().as_bytes();
        for (slot, b) in bytes[12..].iter_mut().zip(1_u32.to_be_bytes()) {
            *slot ^= b;
        }
        store
            .enqueue_job(&Job {
                id: JobId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid()),
                kind: "recording_upload".into(),
                payload: json!({"recording": id.to_string(), "part": 1}).to_string(),
                state: JobState::Pending,
                run_at: queued,
                attempts: 0,
                last_error: None,
                created_at: queued,
            })
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut peak = idle;
    let mut samples = Vec::new();
    let mut last_check = Instant::now();
    loop {
        let rss = rss_kib(pid);
        peak = peak.max(rss);
        samples.push(rss as f64);
        if received.parts.load(Ordering::Relaxed) as usize >= options.recordings
            && last_check.elapsed() > std::time::Duration::from_millis(500)
        {
            last_check = Instant::now();
            let done = store
                .list_uploads(false, options.recordings as u32)
                .await
                .unwrap();
            if done.len() == options.recordings
                && done.iter().all(|u| u.state == UploadState::Uploaded)
            {
                break;
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(3600) {
            panic!("uploads did not finish within an hour");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let hwm = status_kib(pid, "VmHWM:");
    let left = std::fs::read_dir(data_dir.join("recordings"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_dir(e.path()).map(|f| f.count()).unwrap_or(0))
                .sum::<usize>()
        })
        .unwrap_or(0);
    println!(
        "uploaded {} parts, {:.2} GB in {:.1} s: {:.0} MB/s{}; {} bad signatures; {} files left on the platform",
        received.parts.load(Ordering::Relaxed),
        received.bytes.load(Ordering::Relaxed) as f64 / 1e9,
        seconds,
        received.bytes.load(Ordering::Relaxed) as f64 / 1e6 / seconds,
        if options.mbps > 0 { format!(" (CRM paced at {} MB/s)", options.mbps) } else { String::new() },
        received.bad_signatures.load(Ordering::Relaxed),
        left
    );
    println!(
        "server memory: idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), median while uploading {:.1} MiB, high-water mark {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(idle) as f64 / 1024.0,
        median(&mut samples) / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "server CPU: {:.1} s for {:.2} GB ({:.2} ms per MB)",
        cpu,
        total_bytes as f64 / 1e9,
        cpu * 1000.0 / (total_bytes as f64 / 1e6)
    );
    drop(server);
    std::fs::remove_dir_all(&data_dir).ok();
}
