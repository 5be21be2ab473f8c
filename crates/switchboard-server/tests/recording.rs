//! Call recording end to end (REC-4, REC-5, REC-7): a sipp caller talks to a sipp agent phone,
//! the agent pauses and resumes the recording through the API and hangs up; the recording is
//! a stereo WAV of the call's length with the caller on the left and the agent on the right,
//! silent where it was paused, and its metadata has the span. Downloading needs a recent
//! TOTP step-up or an Apps API key with the `recordings` scope, and is audited. Recordings
//! older than seven days are deleted by the retention job, files and rows.

use crate::security::{code_at, now_seconds};
use crate::voice::{answered_call, available, free_port, register, scenario, Sipp, DTMF_1};
use crate::{Server, Session};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Writes a pcap of `seconds` of RTP with a steady A-law tone at `frequency`, 20 ms a packet,
/// for sipp's `play_pcap_audio` (Ethernet, IPv4, UDP; sipp rewrites addresses and ports).
pub(crate) fn tone_pcap(path: &Path, frequency: f64, seconds: u32) {
    let mut out = Vec::new();
    // The global header: magic, version 2.4, no zone, no accuracy, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut sample = 0u64;
    for packet in 0..seconds * 50 {
        let mut rtp = vec![0x80, 8];
        rtp.extend_from_slice(&(packet as u16).to_be_bytes());
        rtp.extend_from_slice(&(packet * 160).to_be_bytes());
        rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        for _ in 0..160 {
            let t = sample as f64 / 8000.0;
            let value = (t * frequency * std::f64::consts::TAU).sin() * 8000.0;
            rtp.push(alaw(value as i16));
            sample += 1;
        }
        let udp_length = 8 + rtp.len() as u16;
        let mut udp = Vec::new();
        udp.extend_from_slice(&40000u16.to_be_bytes());
        udp.extend_from_slice(&40002u16.to_be_bytes());
        udp.extend_from_slice(&udp_length.to_be_bytes());
        udp.extend_from_slice(&0u16.to_be_bytes());
        udp.extend_from_slice(&rtp);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(20 + udp_length).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        let checksum = !ip
            .chunks(2)
            .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
            .fold(0u32, |sum, word| {
                let sum = sum + word;
                (sum & 0xffff) + (sum >> 16)
            }) as u16;
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        ip.extend_from_slice(&udp);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        let at_us = u64::from(packet) * 20_000;
        out.extend_from_slice(&((at_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// G.711 A-law of one sample.
fn alaw(sample: i16) -> u8 {
    let mut value = i32::from(sample);
    let sign = if value >= 0 { 0xD5 } else { 0x55 };
    if value < 0 {
        value = -value - 1;
    }
    let value = value.min(32767) >> 3;
    let code = if value < 32 {
        value >> 1
    } else {
        let mut exponent = 1;
        while value >> (exponent + 5) > 0 && exponent < 7 {
            exponent += 1;
        }
        (exponent << 4) | ((value >> exponent) & 0x0F)
    };
    (code as u8) ^ sign
}

/// Mean absolute sample of one channel of interleaved stereo from `from_ms` to `to_ms`.
fn energy(samples: &[i16], channel: usize, from_ms: u64, to_ms: u64) -> f64 {
    let frames = samples.len() / 2;
    let (from, to) = ((from_ms * 8) as usize, ((to_ms * 8) as usize).min(frames));
    if to <= from {
        return 0.0;
    }
    let sum: f64 = (from..to)
        .map(|i| f64::from(samples[2 * i + channel]).abs())
        .sum();
    sum / (to - from) as f64
}

/// A caller and an agent phone (agent1) that both send a tone until the call is hung up.
pub(crate) async fn talking_call(sip: SocketAddr, folder: &Path) -> (Sipp, Sipp) {
    let (caller_tone, agent_tone) = (folder.join("caller.pcap"), folder.join("agent.pcap"));
    tone_pcap(&caller_tone, 440.0, 20);
    tone_pcap(&agent_tone, 1000.0, 20);
    let phone_port = free_port();
    let phone = Sipp::start(
        "agent_talks",
        &[
            "-sf",
            &scenario("agent_talks"),
            "-key",
            "tone",
            agent_tone.to_str().unwrap(),
            "-p",
            &phone_port.to_string(),
        ],
    );
    register(sip, "agent1", phone_port).await;
    let port = free_port().to_string();
    let target = sip.to_string();
    let caller = Sipp::start(
        "caller_talks",
        &[
            "-sf",
            &scenario("caller_talks"),
            "-s",
            "15550100",
            "-key",
            "dtmf",
            DTMF_1,
            "-key",
            "tone",
            caller_tone.to_str().unwrap(),
            "-p",
            &port,
            &target,
        ],
    );
    (caller, phone)
}

/// Waits until the call's recordings are all written, and returns them.
async fn written(admin: &Session, call: &str) -> Vec<Value> {
    let mut list = Value::Null;
    for _ in 0..200 {
        list = admin.get(&format!("/api/v1/calls/{call}/recordings")).await;
        let all = list.as_array().unwrap();
        if !all.is_empty() && all.iter().all(|r| r["status"] == "complete") {
            return all.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the recording was not written: {list}");
}

/// Enables TOTP for the session's user; returns the secret.
async fn enrol(session: &Session) -> String {
    let enrolment = session
        .expect(
            StatusCode::OK,
            Method::POST,
            "/api/v1/auth/totp/enroll",
            json!({}),
        )
        .await;
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    session
        .expect(
            StatusCode::NO_CONTENT,
            Method::POST,
            "/api/v1/auth/totp/confirm",
            json!({"code": code_at(&secret, now_seconds())}),
        )
        .await;
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_recorded_paused_and_downloaded_after_step_up() {
    for backend in crate::backends() {
        let server = Server::start(backend).await;
        let sip = server.sip().await;
        let admin = server.login("admin").await;
        let agent1 = server.login("agent1").await;
        available(&agent1).await;
        let folder = server.data_dir.join("tones");
        std::fs::create_dir_all(&folder).unwrap();
        let (caller, phone) = talking_call(sip, &folder).await;
        let call = answered_call(&agent1).await;

        // The live call shows its recording; the agent pauses it for two seconds.
        let live = agent1.get(&format!("/api/v1/calls/{call}")).await;
        assert_eq!(
            live["recording"]["state"], "recording",
            "{backend:?} {live}"
        );
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let paused = agent1
            .expect(
                StatusCode::OK,
                Method::POST,
                &format!("/api/v1/calls/{call}/recording/pause"),
                json!({}),
            )
            .await;
        assert_eq!(paused["recording"]["state"], "paused");
        let again = agent1
            .expect(
                StatusCode::CONFLICT,
                Method::POST,
                &format!("/api/v1/calls/{call}/recording/pause"),
                json!({}),
            )
            .await;
        assert_eq!(again["code"], "conflict");
        let agent2 = server.login("agent2").await;
        agent2
            .expect(
                StatusCode::FORBIDDEN,
                Method::POST,
                &format!("/api/v1/calls/{call}/recording/resume"),
                json!({}),
            )
            .await;
        agent1
            .expect(
                StatusCode::NOT_FOUND,
                Method::POST,
                &format!("/api/v1/calls/{call}/recording/rewind"),
                json!({}),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let resumed = agent1
            .expect(
                StatusCode::OK,
                Method::POST,
                &format!("/api/v1/calls/{call}/recording/resume"),
                json!({}),
            )
            .await;
        assert_eq!(resumed["recording"]["state"], "recording");
        tokio::time::sleep(Duration::from_millis(2000)).await;
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

        // One recording, about six seconds, with the paused span in its metadata.
        let recordings = written(&admin, &call).await;
        let [recording] = &recordings[..] else {
            panic!("one recording: {recordings:?}");
        };
        let duration = recording["duration_ms"].as_u64().unwrap();
        assert!((5500..=7500).contains(&duration), "{recording}");
        let spans = recording["paused"].as_array().unwrap();
        assert_eq!(spans.len(), 1, "{recording}");
        let (start, end) = (
            spans[0]["start_ms"].as_u64().unwrap(),
            spans[0]["end_ms"].as_u64().unwrap(),
        );
        assert!((1500..=3000).contains(&start), "{recording}");
        assert!((1700..=2400).contains(&(end - start)), "{recording}");
        assert_eq!(recording["agent_id"], agent1.user_id.as_str());
        let id = recording["id"].as_str().unwrap();
        let audio = format!("/api/v1/recordings/{id}/audio");

        // Without a step-up the download is refused; a wrong code changes nothing.
        let (status, body) = admin.call(Method::GET, &audio, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("step_up_required"))
        );
        let (status, body) = admin
            .call(
                Method::POST,
                "/api/v1/auth/step-up",
                Some(json!({"code": "000000"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "no TOTP enrolled yet: {body}");
        assert_eq!(body["code"], "totp_not_enabled");
        let secret = enrol(&admin).await;
        let (status, _) = admin.call(Method::GET, &audio, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "enrolling is not a step-up");
        let (status, body) = admin
            .call(
                Method::POST,
                "/api/v1/auth/step-up",
                Some(json!({"code": "000000"})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("totp_invalid"))
        );
        admin
            .expect(
                StatusCode::OK,
                Method::POST,
                "/api/v1/auth/step-up",
                json!({"code": code_at(&secret, now_seconds() + 30)}),
            )
            .await;
        let response = admin.client.get(server.url(&audio)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "audio/wav");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(
            bytes.len() as u64,
            recording["size_bytes"].as_u64().unwrap()
        );
        // On disk the file is sealed: no WAV header and no audio in clear (tests/vault.rs).
        let key =
            switchboard::recordings::blob_key(switchboard_core::RecordingId::parse(id).unwrap());
        let on_disk = std::fs::read(
            server
                .data_dir
                .join("recordings")
                .join(&key[..2])
                .join(&key),
        )
        .unwrap();
        assert!(on_disk.starts_with(b"SBSEALED"));
        assert!(!on_disk.windows(4).any(|w| w == b"RIFF"));
        assert!(!on_disk.windows(64).any(|w| w == &bytes[10_000..10_064]));

        // Stereo, 8 kHz, 16-bit, of the recording's length; both channels talk except in the
        // paused span, which is silence.
        let mut wav = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let spec = wav.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
        let frames_ms = samples.len() as u64 / 16;
        assert!(
            frames_ms.abs_diff(duration) <= 40,
            "{frames_ms} ms of {duration}"
        );
        for channel in [0, 1] {
            let before = energy(&samples, channel, start - 1000, start - 100);
            let during = energy(&samples, channel, start + 40, end - 40);
            let after = energy(&samples, channel, end + 200, end + 1500);
            assert!(
                before > 1000.0 && after > 1000.0,
                "channel {channel}: {before} {after}"
            );
            assert_eq!(during, 0.0, "channel {channel} is silent while paused");
        }
        // The caller (440 Hz) is on the left and the agent (1000 Hz) on the right: count
        // zero crossings over a second.
        let crossings = |channel: usize| {
            let from = (end + 200) as usize * 8;
            (from..from + 8000)
                .filter(|i| {
                    (samples[2 * i + channel] >= 0) != (samples[2 * (i + 1) + channel] >= 0)
                })
                .count()
        };
        assert!(
            (800..=960).contains(&crossings(0)),
            "left: {}",
            crossings(0)
        );
        assert!(
            (1900..=2100).contains(&crossings(1)),
            "right: {}",
            crossings(1)
        );

        // The download is in the audit log.
        let audit = admin.get("/api/v1/audit?action=recording_downloaded").await;
        let entries = audit.as_array().unwrap();
        assert_eq!(entries.len(), 1, "{audit}");
        assert_eq!(entries[0]["actor_id"], admin.user_id.as_str(), "{audit}");

        // An Apps API key needs the `recordings` scope.
        let (status, body) = server.apps(Method::GET, &audio, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("scope_required"))
        );
        let (status, body) = admin
            .call(
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": "CRM", "scopes": ["everything"]})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field"))
        );
        let key = admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/api-keys",
                json!({"name": "CRM", "scopes": ["recordings"]}),
            )
            .await;
        assert_eq!(key["scopes"], json!(["recordings"]));
        let response = reqwest::Client::new()
            .get(server.url(&audio))
            .basic_auth(key["key_id"].as_str().unwrap(), key["secret"].as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().len(), bytes.len());
        let audit = admin.get("/api/v1/audit?action=recording_downloaded").await;
        assert_eq!(audit.as_array().unwrap().len(), 2, "{audit}");
        let unknown = format!("/api/v1/recordings/{}/audio", uuid::Uuid::now_v7());
        let (status, _) = admin.call(Method::GET, &unknown, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = admin
            .call(Method::GET, "/api/v1/recordings/nope/audio", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}

/// A queue's `record_calls`: read and set by admins, for voice leaf queues only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_says_whether_its_calls_are_recorded() {
    let server = Server::start(crate::Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let queues = admin.get("/api/v1/queues").await;
    let of = |channel: &str| {
        queues
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["channel"] == channel && q["kind"] == "leaf")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (voice, web) = (of("voice"), of("web"));
    let path = format!("/api/v1/queues/{voice}/recording");
    assert_eq!(admin.get(&path).await, json!({"record_calls": true}));
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &path,
            json!({"record_calls": false}),
        )
        .await;
    assert_eq!(admin.get(&path).await, json!({"record_calls": false}));
    let (status, body) = admin
        .call(Method::PUT, &path, Some(json!({"record_calls": "no"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/queues/{web}/recording"),
            Some(json!({"record_calls": false})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let agent = server.login("agent1").await;
    let (status, _) = agent
        .call(Method::PUT, &path, Some(json!({"record_calls": true})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get(&path).await, json!({"record_calls": false}));
    let (status, body) = server
        .apps(
            Method::PATCH,
            &format!("/apps/api/v1/calls/{}/recording", uuid::Uuid::now_v7()),
            Some(json!({"record": false})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// REC-4: the retention job deletes a recording of eight days ago, files and row, and keeps
/// one of six days ago; its clock is the worker's, which the test drives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_older_than_seven_days_are_deleted() {
    use chrono::DurationRound;
    for backend in crate::backends() {
        // Started, not launched: no job worker of its own races the test's runs, and nothing is
        // scheduled from the real clock. The test's clock is in the middle of an hour, so "the
        // next run, on the hour" is never a moment away.
        let data_dir =
            std::env::temp_dir().join(format!("switchboard-retention-{}", uuid::Uuid::new_v4()));
        let mut config = switchboard::Config::for_data_dir(&data_dir);
        let mut _database = None;
        if let crate::Backend::Postgres = backend {
            let (url, database) = crate::support::postgres_database().await;
            config.database_url = url;
            _database = Some(database);
        }
        let app = switchboard::App::start(config)
            .await
            .expect("server starts");
        let store = &app.services.store;
        let hour = chrono::Duration::hours(1);
        let now = chrono::Utc::now().duration_trunc(hour).unwrap() + chrono::Duration::minutes(30);
        switchboard::recordings::Retention::schedule_next(&app.services.jobs, now)
            .await
            .unwrap();
        let mut kept = Vec::new();
        for days in [8, 6] {
            let id = switchboard_core::RecordingId::from_uuid(uuid::Uuid::now_v7());
            let key = switchboard::recordings::blob_key(id);
            let mut writer = app.recordings.create_writer(&key).unwrap();
            std::io::Write::write_all(&mut writer, b"RIFF....WAVE").unwrap();
            writer.finish().unwrap();
            let started_at = now - chrono::Duration::days(days);
            store
                .put_recording(&switchboard_core::voice::Recording {
                    id,
                    call: switchboard_core::CallId::from_uuid(uuid::Uuid::now_v7()),
                    agent: None,
                    started_at,
                    ended_at: Some(started_at + chrono::Duration::minutes(3)),
                    duration_ms: 180_000,
                    size_bytes: 12,
                    paused: vec![(1000, 2000)],
                    status: switchboard_core::voice::RecordingStatus::Complete,
                    blob_key: key.clone(),
                })
                .await
                .unwrap();
            kept.push((id, key));
        }
        // The run on the next hour, half an hour on.
        let minutes = chrono::Duration::minutes;
        assert_eq!(app.jobs.run_due(now + minutes(29)).await, 0, "{backend:?}");
        assert_eq!(app.jobs.run_due(now + minutes(31)).await, 1, "{backend:?}");
        let (old, young) = (&kept[0], &kept[1]);
        assert!(matches!(
            store.get_recording(old.0).await,
            Err(switchboard_store::StoreError::NotFound(_))
        ));
        assert!(matches!(
            app.recordings.get(&old.1).await,
            Err(switchboard::blobs::BlobError::NotFound)
        ));
        assert_eq!(
            store.get_recording(young.0).await.unwrap().paused,
            vec![(1000, 2000)]
        );
        assert!(app.recordings.get(&young.1).await.is_ok());
        // The run scheduled the next one, on the following hour; nothing else is due before.
        assert_eq!(app.jobs.run_due(now + minutes(89)).await, 0);
        assert_eq!(app.jobs.run_due(now + minutes(91)).await, 1);
        assert!(store.get_recording(young.0).await.is_ok());
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}
