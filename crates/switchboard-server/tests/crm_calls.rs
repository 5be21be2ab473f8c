//! Calls in the CRM and recordings leaving the platform (PLT-9, REC-1..REC-6): an answered
//! call's ticket, its recording uploaded to a webhook CRM in signed parts with retries spaced
//! by the policy (the worker driven with an injected clock), resumed after a restart without
//! sending a part twice, smaller parts for a CRM that refuses large ones, and the retention cap
//! reporting what it deleted before it was uploaded.

use crate::recording::talking_call;
use crate::voice::{answered_call, available};
use crate::{Backend, Server};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use switchboard::{App, Config};
use switchboard_core::voice::{CallDirection, CallRecord, Disposition, Recording, RecordingStatus};
use switchboard_core::{CallId, RecordingId, UserId};
use switchboard_store::{Store, UploadState};

const SECRET: &str = "crm-webhook-secret-456";

/// A part the fake CRM accepted: its headers and a digest of its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    part: String,
    offset: u64,
    pub(crate) ticket: String,
    sha256: String,
    len: u64,
    /// The bytes themselves, for parts small enough to look at.
    pub(crate) bytes: Option<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct Crm {
    /// JSON events accepted.
    pub(crate) events: Vec<Value>,
    /// Parts accepted (answered 2xx), in the order they came.
    pub(crate) parts: Vec<Part>,
    /// Requests for parts, whatever the answer.
    part_requests: usize,
    /// What to answer the next part requests with, (status, Retry-After); a 200 accepts.
    script: VecDeque<(u16, Option<&'static str>)>,
    /// Parts larger than this are refused with 413.
    limit: Option<u64>,
}

/// A webhook CRM on 127.0.0.1 that checks every signature as the docs say (HMAC-SHA256 of the
/// body with the shared secret), streams parts through a digest, and answers as scripted.
pub(crate) async fn fake_crm() -> (String, Arc<Mutex<Crm>>) {
    let crm = Arc::new(Mutex::new(Crm::default()));
    let state = crm.clone();
    let handler = move |headers: HeaderMap, body: Body| {
        let crm = state.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut mac = switchboard::http::webhook::Signer::new(SECRET);
            let mut digest = Sha256::new();
            let mut len = 0_u64;
            let mut kept = Vec::new();
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let Ok(chunk) = chunk else {
                    return AxumStatus::BAD_REQUEST.into_response();
                };
                mac.update(&chunk);
                digest.update(&chunk);
                len += chunk.len() as u64;
                if len <= 4_000_000 {
                    kept.extend_from_slice(&chunk);
                }
            }
            if header("x-switchboard-signature") != format!("sha256={}", mac.finish()) {
                return AxumStatus::UNAUTHORIZED.into_response();
            }
            let mut crm = crm.lock().unwrap();
            if header("x-switchboard-event") != "recording_part" {
                let event: Value = serde_json::from_slice(&kept).unwrap_or(Value::Null);
                crm.events.push(event);
                return axum::Json(json!({"external_id": "CRM-7"})).into_response();
            }
            crm.part_requests += 1;
            assert_eq!(
                header("content-length"),
                len.to_string(),
                "a part says its length"
            );
            if crm.limit.is_some_and(|limit| len > limit) {
                return AxumStatus::PAYLOAD_TOO_LARGE.into_response();
            }
            if let Some((status, retry_after)) = crm.script.pop_front().filter(|(s, _)| *s != 200) {
                let mut response = AxumStatus::from_u16(status).unwrap().into_response();
                if let Some(wait) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", wait.parse().unwrap());
                }
                return response;
            }
            let accepted = crm.parts.len() + 1;
            crm.parts.push(Part {
                part: header("x-switchboard-part"),
                offset: header("x-switchboard-part-offset").parse().unwrap(),
                ticket: header("x-switchboard-ticket"),
                sha256: format!("{:x}", digest.finalize()),
                len,
                bytes: (len <= 4_000_000).then_some(kept),
            });
            axum::Json(json!({"id": format!("att-{accepted}")})).into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/crm", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/hooks/crm", axum::routing::post(handler)),
        )
        .await
        .ok();
    });
    (url, crm)
}

pub(crate) async fn use_webhook(store: &Arc<dyn Store>, url: &str) {
    let mut settings = store
        .integration_settings("unused-identity-secret-0123456789abcdef")
        .await
        .unwrap();
    settings.crm_connector = "webhook".into();
    settings.crm_webhook_url = Some(url.into());
    settings.crm_webhook_secret = Some(SECRET.into());
    store.update_integration_settings(&settings).await.unwrap();
}

/// A sipp caller picks Sales and talks with agent1's sipp phone (both sending a tone) for a
/// second and a half, then agent1 hangs up; returns the call's id.
async fn recorded_sipp_call(server: &Server, agent1: &crate::Session) -> String {
    let sip = server.sip().await;
    available(agent1).await;
    let folder = server.data_dir.join("tones");
    std::fs::create_dir_all(&folder).unwrap();
    let (caller, phone) = talking_call(sip, &folder).await;
    let call = answered_call(agent1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    agent1
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{call}/hangup"),
            json!({}),
        )
        .await;
    caller.succeeds().await;
    phone.succeeds().await;
    call
}

/// Waits (bounded) until the background worker has taken the call's ticket and recording to
/// where `done` says.
async fn ticket_of(admin: &crate::Session, call: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let tickets = admin.get("/api/v1/tickets").await;
        if let Some(ticket) = tickets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["call_id"] == call)
        {
            if done(ticket) {
                return ticket.clone();
            }
            last = ticket.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the call's ticket never got there: {last}");
}

/// PLT-9, REC-1, REC-2: a recorded sipp call answered by agent1 gets a ticket in the CRM; its
/// recording reaches the webhook CRM signed, as a valid WAV, and is then gone from the
/// platform; the wrap-up solves the ticket with the disposition and note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_gets_a_ticket_and_its_recording_leaves_for_the_crm() {
    let server = Server::start(*crate::backends().last().unwrap()).await;
    let (url, crm) = fake_crm().await;
    use_webhook(&server.app.services.store, &url).await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    let call = recorded_sipp_call(&server, &agent1).await;
    // The recording may be in the CRM and gone from here before anyone looks: its upload's
    // row says what it was.
    let ticket = ticket_of(&admin, &call, |t| t["recordings"][0]["state"] == "uploaded").await;
    let uploads = ticket["recordings"].as_array().unwrap();
    assert_eq!(uploads.len(), 1, "one recording: {ticket}");
    let size = uploads[0]["size_bytes"].as_u64().unwrap();
    assert!(size > 44 + 32 * 1000, "more than a second of audio: {size}");
    let recording_id = uploads[0]["recording_id"].as_str().unwrap().to_owned();
    assert_eq!(ticket["phone"], "15551234567", "{ticket}");
    assert!(
        ticket["name"]
            .as_str()
            .unwrap()
            .starts_with("Phone User - ")
            && ticket["name"].as_str().unwrap().ends_with("(15551234567)"),
        "{ticket}"
    );
    let text = ticket["transcript"].as_str().unwrap();
    assert!(
        text.contains("Phone call from 15551234567 to 15550100"),
        "{text}"
    );
    assert!(text.contains("Queue: Sales"), "{text}");
    assert!(text.contains("Agent: "), "{text}");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["recordings"][0]["parts_done"], 1);

    {
        let crm = crm.lock().unwrap();
        let created = crm
            .events
            .iter()
            .find(|e| e["event"] == "ticket.created" && e["ticket"]["call_id"] == call.as_str())
            .unwrap_or_else(|| panic!("{:?}", crm.events));
        assert_eq!(created["ticket"]["channel"], "phone");
        let [part] = &crm.parts[..] else {
            panic!("one part: {:?}", crm.parts);
        };
        assert_eq!(
            (part.part.as_str(), part.offset, part.len),
            ("1/1", 0, size)
        );
        assert_eq!(part.ticket, ticket["id"].as_str().unwrap());
        let wav = hound::WavReader::new(std::io::Cursor::new(part.bytes.clone().unwrap()))
            .expect("the CRM receives the WAV whole");
        assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
    }
    // Gone from the platform: its row and its file.
    assert_eq!(
        admin.get(&format!("/api/v1/calls/{call}/recordings")).await,
        json!([])
    );
    let id = RecordingId::parse(&recording_id).unwrap();
    assert!(server
        .app
        .recordings
        .get(&switchboard::recordings::blob_key(id))
        .await
        .is_err());

    // The wrap-up solves the ticket with what the agent chose.
    let contact = admin.get(&format!("/api/v1/calls/{call}")).await["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dispositions = agent1.get("/api/v1/dispositions").await;
    let disposition = dispositions["dispositions"][0].as_str().unwrap().to_owned();
    agent1
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/contacts/{contact}/wrap-up"),
            json!({"disposition": disposition, "note": "Wants a refund for order 77"}),
        )
        .await;
    let ticket = ticket_of(&admin, &call, |t| t["status"] == "solved").await;
    let text = ticket["transcript"].as_str().unwrap();
    assert!(
        text.contains(&format!("Disposition: {disposition}")),
        "{text}"
    );
    assert!(text.contains("Note: Wants a refund for order 77"), "{text}");
    for _ in 0..200 {
        if crm
            .lock()
            .unwrap()
            .events
            .iter()
            .any(|e| e["event"] == "ticket.closed")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let crm = crm.lock().unwrap();
    let closed = crm
        .events
        .iter()
        .find(|e| e["event"] == "ticket.closed")
        .expect("the CRM hears of the wrap-up");
    assert!(closed["transcript"].as_str().unwrap().contains("order 77"));
}

/// A server's app without its HTTP side or background worker, so that the test runs the
/// jobs itself at the times it chooses.
async fn app_on(config: &Config) -> switchboard::app::AppState {
    App::start(config.clone()).await.expect("server starts")
}

async fn config_for(backend: Backend) -> (Config, Option<crate::PostgresDatabase>) {
    let data_dir = std::env::temp_dir().join(format!("switchboard-crm-{}", uuid::Uuid::new_v4()));
    let mut config = Config::for_data_dir(&data_dir);
    let mut database = None;
    if let Backend::Postgres = backend {
        let (url, db) = crate::postgres_database().await;
        config.database_url = url;
        database = Some(db);
    }
    (config, database)
}

/// An answered call that ended at `at`, and its recording of `size` bytes of a known
/// pattern, stored as the call's engine and recorder would.
async fn recorded_call(
    app: &switchboard::app::AppState,
    size: u64,
    at: DateTime<Utc>,
) -> (CallId, RecordingId) {
    let call = CallId::from_uuid(uuid::Uuid::now_v7());
    let mut record = CallRecord::new(
        call,
        "+15557654321".into(),
        "15550100".into(),
        at - Duration::minutes(62),
    );
    record.answered_at = Some(at - Duration::minutes(61));
    record.ended_at = Some(at);
    record.agent = Some(UserId::from_uuid(uuid::Uuid::now_v7()));
    record.disposition = Disposition::Answered;
    record.direction = CallDirection::Inbound;
    app.services.store.put_call(&record).await.unwrap();
    let id = RecordingId::from_uuid(uuid::Uuid::now_v7());
    let key = switchboard::recordings::blob_key(id);
    let mut writer = app.recordings.create_writer(&key).unwrap();
    let mut written = 0;
    while written < size {
        let n = (size - written).min(1 << 20);
        std::io::Write::write_all(&mut writer, &pattern(written, n)).unwrap();
        written += n;
    }
    assert_eq!(writer.finish().unwrap(), size);
    app.services
        .store
        .put_recording(&Recording {
            id,
            call,
            agent: record.agent,
            started_at: at - Duration::minutes(61),
            ended_at: Some(at),
            duration_ms: 3_660_000,
            size_bytes: size,
            paused: Vec::new(),
            status: RecordingStatus::Complete,
            blob_key: key,
        })
        .await
        .unwrap();
    (call, id)
}

/// The bytes `offset..offset + len` of the test pattern: never the same byte run twice, so
/// a part out of place has another digest.
fn pattern(offset: u64, len: u64) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| (i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24)) as u8)
        .collect()
}

fn digest_of(offset: u64, len: u64) -> String {
    let mut digest = Sha256::new();
    let mut at = offset;
    while at < offset + len {
        let n = (offset + len - at).min(1 << 20);
        digest.update(pattern(at, n));
        at += n;
    }
    format!("{:x}", digest.finalize())
}

/// A time a minute from now, to the millisecond as the store keeps times: jobs stored now are
/// due by then.
fn in_a_minute() -> DateTime<Utc> {
    DateTime::from_timestamp_millis((Utc::now() + Duration::minutes(1)).timestamp_millis()).unwrap()
}

/// The pending upload job's next run.
async fn upload_due(store: &Arc<dyn Store>) -> DateTime<Utc> {
    let jobs = store.list_jobs(100).await.unwrap();
    let pending: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind == "recording_upload" && j.state == switchboard_store::JobState::Pending)
        .collect();
    let [job] = &pending[..] else {
        panic!("one pending upload job: {pending:?}");
    };
    job.run_at
}

/// REC-3, REC-6: a 120 MB recording goes as three parts of at most 50 MB, in order, each
/// retried on its own: a 429's Retry-After is honoured to the second, a 503 waits the policy's
/// jittered backoff; a restart in the middle resumes with the next part and no part is sent
/// twice. On both databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_recording_goes_in_parts_with_retries_across_a_restart() {
    for backend in crate::backends() {
        let (config, database) = config_for(backend).await;
        let (url, crm) = fake_crm().await;
        crm.lock().unwrap().script = VecDeque::from([(429, Some("30")), (200, None), (503, None)]);
        let t0 = in_a_minute();
        let size = 120_000_044;
        let (call, recording) = {
            let app = app_on(&config).await;
            use_webhook(&app.services.store, &url).await;
            let (call, recording) = recorded_call(&app, size, t0).await;
            switchboard::crm::enqueue(
                &app.services.jobs,
                switchboard::crm::Event::CallEnded { call },
            )
            .await;
            assert_eq!(
                app.jobs.run_due(t0).await,
                1,
                "{backend:?}: the call's ticket"
            );
            switchboard::uploads::enqueue(&app.services.jobs, recording, t0).await;
            assert_eq!(app.jobs.run_due(t0).await, 1);
            // 429 with Retry-After: 30 → the part waits exactly that (longer than the backoff).
            assert_eq!(
                upload_due(&app.services.store).await,
                t0 + Duration::seconds(30)
            );
            assert_eq!(app.jobs.run_due(t0 + Duration::seconds(29)).await, 0);
            // Part 1 is accepted; part 2 runs at once and meets a 503: the policy's first
            // backoff (10 s), jittered between half and all of it.
            let t1 = t0 + Duration::seconds(30);
            assert_eq!(app.jobs.run_due(t1).await, 2);
            let due = upload_due(&app.services.store).await;
            assert!(
                due >= t1 + Duration::seconds(5) && due <= t1 + Duration::seconds(10),
                "{backend:?}: {due} after {t1}"
            );
            let upload = app
                .services
                .store
                .get_upload(recording)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (upload.state, upload.parts_done, upload.parts_total),
                (UploadState::Sending, 1, 3)
            );
            assert_eq!(
                upload.last_error.as_deref(),
                Some("webhook answered 503 Service Unavailable")
            );
            (call, recording)
        };
        // The server stops and starts again: part 2 goes next, then part 3.
        let app = app_on(&config).await;
        let t2 = t0 + Duration::seconds(41);
        assert_eq!(app.jobs.run_due(t2).await, 2, "{backend:?}");
        let upload = app
            .services
            .store
            .get_upload(recording)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            upload.state,
            UploadState::Uploaded,
            "{backend:?}: {upload:?}"
        );
        assert_eq!(upload.receipts, vec!["att-1", "att-2", "att-3"]);
        let (accepted, part_requests) = {
            let crm = crm.lock().unwrap();
            (crm.parts.clone(), crm.part_requests)
        };
        let parts: Vec<(&str, u64, u64)> = accepted
            .iter()
            .map(|p| (p.part.as_str(), p.offset, p.len))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("1/3", 0, 50_000_000),
                ("2/3", 50_000_000, 50_000_000),
                ("3/3", 100_000_000, 20_000_044)
            ],
            "{backend:?}: every part once, in order"
        );
        for part in &accepted {
            assert_eq!(
                part.sha256,
                digest_of(part.offset, part.len),
                "{backend:?} {}",
                part.part
            );
        }
        assert_eq!(part_requests, 5, "two refused tries and three parts");
        // Deleted from the platform once the last part was acknowledged (REC-2).
        let store = &app.services.store;
        assert!(matches!(
            store.get_recording(recording).await,
            Err(switchboard_store::StoreError::NotFound(_))
        ));
        assert!(app
            .recordings
            .get(&switchboard::recordings::blob_key(recording))
            .await
            .is_err());
        let ticket = store.ticket_of_call(call).await.unwrap().unwrap();
        assert_eq!(ticket.external_id.as_deref(), Some("CRM-7"));
        let audit = store
            .list_audit(&switchboard_store::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(audit.iter().any(|e| e.action == "recording_uploaded"
            && e.subject.as_deref() == Some(recording.to_string().as_str())));
        drop(app);
        std::fs::remove_dir_all(&config.data_dir).ok();
        if let Some(database) = database {
            crate::drop_database(database);
        }
    }
}

/// REC-3, REC-4: a CRM that refuses parts as too large gets smaller ones; one that refuses the
/// file for good fails the upload and says so; the retention cap deletes a recording still on
/// its way and reports it lost, in the uploads list and the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_refused_and_lost_uploads_say_so() {
    let (config, database) = config_for(Backend::Sqlite).await;
    let (url, crm) = fake_crm().await;
    let app = app_on(&config).await;
    let store = app.services.store.clone();
    use_webhook(&store, &url).await;
    let t0 = in_a_minute();

    // Parts of more than 2 MB are refused: 50 MB, 25, 12.5, 6.25, 3.125 are, 1.5625 is not.
    crm.lock().unwrap().limit = Some(2_000_000);
    let (call, small) = recorded_call(&app, 3_000_000, t0).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    switchboard::uploads::enqueue(&app.services.jobs, small, t0).await;
    let mut at = t0;
    for _ in 0..8 {
        app.jobs.run_due(at).await;
        at += Duration::hours(1);
    }
    let upload = store.get_upload(small).await.unwrap().unwrap();
    assert_eq!(upload.state, UploadState::Uploaded, "{upload:?}");
    assert_eq!((upload.parts_total, upload.part_bytes), (2, 1_562_500));
    let parts: Vec<(String, u64)> = crm
        .lock()
        .unwrap()
        .parts
        .iter()
        .map(|p| (p.part.clone(), p.len))
        .collect();
    assert_eq!(
        parts,
        vec![("1/2".to_owned(), 1_562_500), ("2/2".to_owned(), 1_437_500)]
    );

    // A 403 is final: the upload fails, the file stays for the cap, and the portal lists it.
    crm.lock().unwrap().limit = None;
    crm.lock().unwrap().script = VecDeque::from([(403, None)]);
    let (call, refused) = recorded_call(&app, 1000, at).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    switchboard::uploads::enqueue(&app.services.jobs, refused, at).await;
    app.jobs.run_due(at).await;
    let upload = store.get_upload(refused).await.unwrap().unwrap();
    assert_eq!(upload.state, UploadState::Failed);
    assert_eq!(
        upload.last_error.as_deref(),
        Some("webhook answered 403 Forbidden")
    );
    assert!(store.get_recording(refused).await.is_ok());

    // A CRM down for days: after six the upload gives up and says why, before the cap.
    crm.lock().unwrap().script = VecDeque::from(vec![(503, None); 10_000]);
    let (call, late) = recorded_call(&app, 1000, at).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    switchboard::uploads::enqueue(&app.services.jobs, late, at).await;
    app.jobs.run_due(at).await;
    assert_eq!(
        store.get_upload(late).await.unwrap().unwrap().state,
        UploadState::Sending
    );
    app.jobs
        .run_due(at + Duration::days(6) + Duration::minutes(1))
        .await;
    let upload = store.get_upload(late).await.unwrap().unwrap();
    assert_eq!(
        (upload.state, upload.last_error.as_deref()),
        (UploadState::Failed, Some("not uploaded in time"))
    );
    // The cap deletes a recording still on its way (its worker was down) and reports it lost,
    // and one whose call never had a ticket, so no upload at all.
    let (call, on_its_way) = recorded_call(&app, 1000, at).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    switchboard::uploads::enqueue(&app.services.jobs, on_its_way, at).await;
    app.jobs.run_due(at).await;
    assert_eq!(
        store.get_upload(on_its_way).await.unwrap().unwrap().state,
        UploadState::Sending
    );
    let unsent = RecordingId::from_uuid(uuid::Uuid::now_v7());
    store
        .put_recording(&Recording {
            id: unsent,
            call: CallId::from_uuid(uuid::Uuid::now_v7()),
            agent: None,
            started_at: at,
            ended_at: Some(at),
            duration_ms: 10,
            size_bytes: 0,
            paused: Vec::new(),
            status: RecordingStatus::Complete,
            blob_key: switchboard::recordings::blob_key(unsent),
        })
        .await
        .unwrap();
    let retention = switchboard::recordings::Retention::new(
        store.clone(),
        app.recordings.clone(),
        app.services.jobs.clone(),
    );
    let deleted = retention
        .delete_expired(at + Duration::days(7) + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(deleted, 4, "refused, late, on its way, unsent");
    let upload = store.get_upload(on_its_way).await.unwrap().unwrap();
    assert_eq!(upload.state, UploadState::Lost, "{upload:?}");
    assert!(
        store.get_recording(on_its_way).await.is_err(),
        "the cap wins"
    );
    let attention = store.list_uploads(true, 10).await.unwrap();
    let states: Vec<(RecordingId, UploadState)> =
        attention.iter().map(|u| (u.recording, u.state)).collect();
    assert!(
        states.contains(&(refused, UploadState::Failed)),
        "{states:?}"
    );
    assert!(
        !states.iter().any(|(r, _)| *r == small),
        "uploaded needs no attention"
    );
    let audit = store
        .list_audit(&switchboard_store::AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let lost: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "recording_lost")
        .filter_map(|e| e.subject.clone())
        .collect();
    assert!(lost.contains(&unsent.to_string()), "{lost:?}");
    assert!(lost.contains(&on_its_way.to_string()), "{lost:?}");
    assert!(
        states.contains(&(on_its_way, UploadState::Lost)),
        "{states:?}"
    );
    assert!(audit.iter().any(|e| e.action == "recording_upload_failed"
        && e.subject.as_deref() == Some(refused.to_string().as_str())));
    drop(app);
    std::fs::remove_dir_all(&config.data_dir).ok();
    if let Some(database) = database {
        crate::drop_database(database);
    }
}

/// Zendesk (REC-1, REC-3, REC-6): a call's ticket with the caller as requester, then a 120 MB
/// recording as three internal notes with one file each, in order, each part retried on its
/// own through a rate limit (Retry-After honoured) and a 5xx; deleted once the last is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_reaches_zendesk_in_parts() {
    use crate::support::zendesk::{self as fake, Trouble};
    let zendesk = fake::start().await;
    let (app, data_dir) = crate::zendesk::unlaunched(&zendesk, fake::TOKEN).await;
    let store = app.services.store.clone();
    let t0 = in_a_minute();
    let size = 120_000_044;
    let (call, recording) = recorded_call(&app, size, t0).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    assert_eq!(app.jobs.run_due(t0).await, 1);
    let ticket = store.ticket_of_call(call).await.unwrap().unwrap();
    let external = ticket
        .external_id
        .clone()
        .expect("the ticket is in Zendesk");
    let recorded = zendesk.recorded();
    let theirs = recorded
        .ticket_with_external_id(&ticket.id.to_string())
        .unwrap();
    let requester = recorded.user(theirs.requester_id).unwrap();
    assert_eq!(requester.phone.as_deref(), Some("+15557654321"));
    assert_eq!(requester.external_id.as_deref(), Some("phone:15557654321"));
    assert!(
        theirs.tags.contains(&"switchboard".to_owned()),
        "{theirs:?}"
    );

    // The first request of the upload meets the rate limit, asking for 45 s.
    zendesk.fail_next(1, Trouble::RateLimited { retry_after: 45 });
    switchboard::uploads::enqueue(&app.services.jobs, recording, t0).await;
    assert_eq!(app.jobs.run_due(t0).await, 1);
    assert_eq!(upload_due(&store).await, t0 + Duration::seconds(45));
    // Then a 503: the part's second failure waits the policy's second backoff (20 s),
    // jittered; then the three parts go one after the other, each a job of its own.
    let t1 = t0 + Duration::seconds(45);
    zendesk.fail_next(1, Trouble::ServerError(503));
    assert_eq!(app.jobs.run_due(t1).await, 1);
    let due = upload_due(&store).await;
    assert!(
        due >= t1 + Duration::seconds(10) && due <= t1 + Duration::seconds(20),
        "{due}"
    );
    assert_eq!(
        store
            .get_upload(recording)
            .await
            .unwrap()
            .unwrap()
            .parts_done,
        0
    );
    assert_eq!(app.jobs.run_due(due).await, 3, "parts 1, 2 and 3");

    let upload = store.get_upload(recording).await.unwrap().unwrap();
    assert_eq!(
        (upload.state, upload.parts_done),
        (UploadState::Uploaded, 3),
        "{upload:?}"
    );
    let recorded = zendesk.recorded();
    let theirs = recorded
        .ticket_with_external_id(&ticket.id.to_string())
        .unwrap();
    assert_eq!(theirs.id.to_string(), external);
    let notes: Vec<_> = theirs
        .comments
        .iter()
        .filter(|c| !c.attachments.is_empty())
        .collect();
    assert_eq!(notes.len(), 3, "{:#?}", theirs.comments);
    for (i, (note, (offset, len))) in notes
        .iter()
        .zip([
            (0, 50_000_000),
            (50_000_000, 50_000_000),
            (100_000_000, 20_000_044),
        ])
        .enumerate()
    {
        assert!(!note.public, "a recording is an internal note");
        assert!(
            note.body.contains(&format!("part {} of 3", i + 1)),
            "{}",
            note.body
        );
        let [file] = &note.attachments[..] else {
            panic!("one file a note: {note:?}");
        };
        assert_eq!((file.size, file.content_type.as_str()), (len, "audio/wav"));
        assert_eq!(file.sha256, digest_of(offset, len), "part {}", i + 1);
        assert!(
            file.file_name.ends_with(&format!(".part{}of3.wav", i + 1)),
            "{}",
            file.file_name
        );
    }
    assert!(
        store.get_recording(recording).await.is_err(),
        "deleted once uploaded"
    );
    drop(app);
    std::fs::remove_dir_all(&data_dir).ok();
}

/// UAC-3 for calls: a call from a number an identity token gave has its ticket under that
/// consumer; an earlier anonymous call from the number joins them when they identify; the CRM
/// hears of the merge with every ticket of the identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_known_by_their_number_has_their_calls_under_their_identity() {
    let (config, database) = config_for(Backend::Sqlite).await;
    let (url, crm) = fake_crm().await;
    let app = app_on(&config).await;
    let store = app.services.store.clone();
    use_webhook(&store, &url).await;
    let t0 = in_a_minute();
    // An anonymous call first: "Phone User - …" with its number.
    let (first, _) = recorded_call(&app, 100, t0).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call: first },
    )
    .await;
    app.jobs.run_due(t0).await;
    let anonymous = store.ticket_of_call(first).await.unwrap().unwrap();
    assert!(
        anonymous.name.starts_with("Phone User - "),
        "{}",
        anonymous.name
    );
    assert_eq!(
        (anonymous.identity, anonymous.phone.as_deref()),
        (None, Some("15557654321"))
    );

    // The consumer signs in on the site with a token naming their number, spaced as people
    // write it: the earlier call becomes theirs.
    let visitor = switchboard_store::Visitor {
        id: switchboard_core::VisitorId::from_uuid(uuid::Uuid::now_v7()),
        token_hash: "visitor".into(),
        identity: None,
        created_at: t0,
    };
    store.create_visitor(&visitor).await.unwrap();
    let secret = store
        .integration_settings("unused-identity-secret-0123456789abcdef")
        .await
        .unwrap()
        .identity_secret;
    let token = switchboard::identity::sign(
        &json!({"sub": "crm-555", "name": "Rae Caller", "email": "rae@example.org", "phone_number": "+1 555-765-4321", "exp": t0.timestamp() + 600}),
        &secret,
    );
    let claims = switchboard::identity::verify(&token, &secret, t0.timestamp()).unwrap();
    assert_eq!(claims.phone.as_deref(), Some("15557654321"));
    let identity = switchboard_store::Identity {
        id: switchboard_core::IdentityId::from_uuid(uuid::Uuid::now_v7()),
        external_id: claims.subject,
        email: claims.email,
        name: claims.name,
        phone: claims.phone,
        created_at: t0,
    };
    let outcome = store.identify_visitor(visitor.id, &identity).await.unwrap();
    assert_eq!(outcome.merged_tickets, 1);
    assert_eq!(
        store.ticket_of_call(first).await.unwrap().unwrap().identity,
        Some(outcome.identity.id)
    );
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::IdentityMerged {
            visitor: visitor.id,
            identity: outcome.identity.id,
        },
    )
    .await;
    app.jobs.run_due(t0).await;

    // Their next call is theirs from the start.
    let (second, _) = recorded_call(&app, 100, t0).await;
    switchboard::crm::enqueue(
        &app.services.jobs,
        switchboard::crm::Event::CallEnded { call: second },
    )
    .await;
    app.jobs.run_due(t0).await;
    let known = store.ticket_of_call(second).await.unwrap().unwrap();
    assert_eq!(known.identity, Some(outcome.identity.id));
    assert_eq!(known.name, "Rae Caller (rae@example.org)");
    let events = crm.lock().unwrap().events.clone();
    let merged = events
        .iter()
        .find(|e| e["event"] == "identity.merged")
        .expect("the CRM hears of the merge");
    assert_eq!(merged["identity"]["external_id"], "crm-555");
    assert_eq!(merged["tickets"][0]["call_id"], first.to_string());
    // A token with something else for a number is refused, not stored.
    let bad = switchboard::identity::sign(
        &json!({"sub": "x", "phone_number": "call me", "exp": t0.timestamp() + 600}),
        &secret,
    );
    assert!(switchboard::identity::verify(&bad, &secret, t0.timestamp()).is_err());
    drop(app);
    std::fs::remove_dir_all(&config.data_dir).ok();
    if let Some(database) = database {
        crate::drop_database(database);
    }
}

/// REC-1 with Zendesk: a recorded sipp call answered by agent1 becomes a Zendesk ticket with
/// the caller as requester, its recording an internal note with the WAV attached; the file is
/// then gone from the platform. Then a Zendesk that takes smaller files than our parts (413)
/// gets the next recording in halves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_reaches_zendesk_and_large_parts_are_halved() {
    use crate::support::zendesk::{self as fake};
    let zendesk = fake::start().await;
    let server = Server::start(Backend::Sqlite).await;
    let store = server.app.services.store.clone();
    crate::zendesk::use_zendesk(&store, &zendesk, fake::TOKEN).await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    let call = recorded_sipp_call(&server, &agent1).await;
    let ticket = ticket_of(&admin, &call, |t| t["recordings"][0]["state"] == "uploaded").await;
    let size = ticket["recordings"][0]["size_bytes"].as_u64().unwrap();
    let recorded = zendesk.recorded();
    let theirs = recorded
        .ticket_with_external_id(ticket["id"].as_str().unwrap())
        .expect("the call's ticket is in Zendesk");
    assert_eq!(ticket["external_id"], theirs.id.to_string());
    assert_eq!(theirs.subject, "Sales", "the queue path is the subject");
    assert!(theirs.tags.contains(&"call".to_owned()), "{theirs:?}");
    let requester = recorded.user(theirs.requester_id).unwrap();
    assert_eq!(requester.phone.as_deref(), Some("+15551234567"));
    let notes: Vec<_> = theirs
        .comments
        .iter()
        .filter(|c| !c.attachments.is_empty())
        .collect();
    let [note] = &notes[..] else {
        panic!("one note with the recording: {:#?}", theirs.comments);
    };
    assert!(!note.public);
    let file = &note.attachments[0];
    assert_eq!((file.size, file.content_type.as_str()), (size, "audio/wav"));
    let wav = hound::WavReader::new(std::io::Cursor::new(file.bytes.clone().unwrap()))
        .expect("Zendesk has the WAV whole");
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
    assert_eq!(
        admin.get(&format!("/api/v1/calls/{call}/recordings")).await,
        json!([])
    );

    // Zendesk takes at most 20 MB a file here: a 60 MB recording goes in parts of 12.5 MB
    // (50 refused, then 25 refused, then 12.5 taken), attached in order.
    zendesk.set_upload_limit(20_000_000);
    let t0 = in_a_minute();
    let (call, big) = recorded_call(&server.app, 60_000_000, t0).await;
    switchboard::crm::enqueue(
        &server.app.services.jobs,
        switchboard::crm::Event::CallEnded { call },
    )
    .await;
    switchboard::uploads::enqueue(&server.app.services.jobs, big, t0).await;
    let mut at = t0;
    for _ in 0..6 {
        server.app.jobs.run_due(at).await;
        at += Duration::hours(1);
    }
    let upload = store.get_upload(big).await.unwrap().unwrap();
    assert_eq!(upload.state, UploadState::Uploaded, "{upload:?}");
    assert_eq!((upload.part_bytes, upload.parts_total), (12_500_000, 5));
    let ours = store.ticket_of_call(call).await.unwrap().unwrap();
    let recorded = zendesk.recorded();
    let theirs = recorded
        .ticket_with_external_id(&ours.id.to_string())
        .unwrap();
    let sizes: Vec<u64> = theirs
        .comments
        .iter()
        .flat_map(|c| c.attachments.iter().map(|a| a.size))
        .collect();
    assert_eq!(
        sizes,
        vec![12_500_000; 4]
            .into_iter()
            .chain([10_000_000])
            .collect::<Vec<_>>()
    );
    for (i, comment) in theirs
        .comments
        .iter()
        .filter(|c| !c.attachments.is_empty())
        .enumerate()
    {
        let offset = i as u64 * 12_500_000;
        let len = comment.attachments[0].size;
        assert_eq!(
            comment.attachments[0].sha256,
            digest_of(offset, len),
            "part {}",
            i + 1
        );
    }
}
