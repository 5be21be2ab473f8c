//! Files at rest (issue 15, item 7): recordings and attachments are sealed on disk under a
//! data key of their own, wrapped by the master key, and served decrypted; a file that was
//! altered, reordered or cut is refused, not served as garbage; files from before encryption
//! still read; rotating the master key re-wraps every file's key in place and keeps them
//! readable, and finishes when run again after an interruption; a wrong
//! `SWITCHBOARD_SECRET_KEY` is a clear error.

use crate::{Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use switchboard::blobs::{BlobError, LocalBlobs};
use switchboard::recordings::{blob_key, Piece, RecordingWriter};
use switchboard::vault::Vault;
use switchboard_core::voice::{Recording, RecordingStatus};
use switchboard_core::{CallId, RecordingId};
use switchboard_media::recorder::Chunk;

/// Samples a second per channel.
const RATE: usize = 8000;

/// Two seconds of G.711 µ-law a channel whose bytes change all the time (so any window of the
/// decoded audio is distinctive), the caller and the agent apart.
fn chunk(number: usize) -> Chunk {
    let byte = |i: usize, salt: usize| ((i * 31 + i / 7 + number * 101 + salt) % 251) as u8;
    Chunk {
        left: (0..2 * RATE).map(|i| byte(i, 0)).collect(),
        right: (0..2 * RATE).map(|i| byte(i, 77)).collect(),
    }
}

/// The WAV file the recording writer makes of `chunks`: the canonical 44-byte header, then
/// the samples, interleaved, little-endian.
fn wav_of(chunks: &[Chunk]) -> Vec<u8> {
    let samples: Vec<i16> = chunks.iter().flat_map(|c| c.stereo()).collect();
    let data = (samples.len() * 2) as u32;
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&32000u32.to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

/// Records `chunks` through the recording writer, as a call's room would hand them over, and
/// waits (polling with a deadline) until its row says it is complete. Returns its id and the
/// WAV it must be.
async fn record(server: &Server, chunks: Vec<Chunk>) -> (RecordingId, Vec<u8>) {
    let store = server.app.services.store.clone();
    let writer = RecordingWriter::start(
        store.clone(),
        server.app.recordings.clone(),
        server.app.services.jobs.clone(),
    )
    .unwrap();
    let id = RecordingId::from_uuid(uuid::Uuid::now_v7());
    let expected = wav_of(&chunks);
    writer.send(Piece::Start {
        id,
        call: CallId::from_uuid(uuid::Uuid::now_v7()),
        agent: None,
        started_at: chrono::Utc::now(),
    });
    let duration_ms = (chunks.len() * 2000) as u64;
    for chunk in chunks {
        writer.send(Piece::Audio { id, chunk });
    }
    writer.send(Piece::Stopped {
        id,
        duration_ms,
        paused: Vec::new(),
        discard: false,
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(row) = store.get_recording(id).await {
            if row.status == RecordingStatus::Complete {
                assert_eq!(row.size_bytes, expected.len() as u64, "{row:?}");
                return (id, expected);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the recording was not written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An Apps API key with the `recordings` scope, made by the admin.
async fn recordings_key(server: &Server) -> (String, String) {
    let admin = server.login("admin").await;
    let key = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/api-keys",
            json!({"name": "CRM", "scopes": ["recordings"]}),
        )
        .await;
    (
        key["key_id"].as_str().unwrap().to_owned(),
        key["secret"].as_str().unwrap().to_owned(),
    )
}

/// What a download of the recording gives: the status and the body.
async fn download(
    server: &Server,
    key: &(String, String),
    id: RecordingId,
) -> (StatusCode, Vec<u8>) {
    let (status, body) = try_download(server, key, id)
        .await
        .expect("the download completes");
    (status, body)
}

/// A download that may fail on the way: the answer cut before its head, or its body cut.
async fn try_download(
    server: &Server,
    key: &(String, String),
    id: RecordingId,
) -> Result<(StatusCode, Vec<u8>), String> {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/recordings/{id}/audio")))
        .basic_auth(&key.0, Some(&key.1))
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{status}, then the body was cut: {e}"))?;
    Ok((status, body.to_vec()))
}

/// The recording's file on disk.
fn file_of(server: &Server, id: RecordingId) -> PathBuf {
    let key = blob_key(id);
    server.data_dir.join("recordings").join(&key[..2]).join(key)
}

/// A recording row for a file put on disk by hand.
async fn put_row(server: &Server, id: RecordingId, size: u64) {
    let now = chrono::Utc::now();
    server
        .app
        .services
        .store
        .put_recording(&Recording {
            id,
            call: CallId::from_uuid(uuid::Uuid::now_v7()),
            agent: None,
            started_at: now,
            ended_at: Some(now),
            duration_ms: 1000,
            size_bytes: size,
            paused: Vec::new(),
            status: RecordingStatus::Complete,
            blob_key: blob_key(id),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_sealed_on_disk_and_served_as_its_wav() {
    let server = Server::start(Backend::Sqlite).await;
    let key = recordings_key(&server).await;
    let (id, wav) = record(&server, (0..5).map(chunk).collect()).await;

    // On disk: no RIFF header, no window of the audio, the size of the WAV and its seals.
    let on_disk = std::fs::read(file_of(&server, id)).unwrap();
    assert!(!on_disk.starts_with(b"RIFF"));
    assert!(!on_disk.windows(4).any(|w| w == b"WAVE"));
    assert!(on_disk.starts_with(b"SBSEALED"));
    let segments = wav.len().div_ceil(switchboard::blobs::SEGMENT_BYTES);
    assert_eq!(on_disk.len(), 64 + wav.len() + 28 * segments);
    for at in (44..wav.len() - 24).step_by(wav.len() / 23) {
        let window = &wav[at..at + 24];
        assert!(
            !on_disk.windows(24).any(|w| w == window),
            "audio at {at} is on disk in clear"
        );
    }
    assert!(hound::WavReader::new(std::io::Cursor::new(on_disk)).is_err());

    // The API serves the WAV the writer made, byte for byte.
    let (status, body) = download(&server, &key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav, "the download is not the recording");
    let reader = hound::WavReader::new(std::io::Cursor::new(body)).unwrap();
    assert_eq!(reader.duration() as usize, 5 * 2 * RATE);
    // And from any offset, through the store's reader.
    let from = 3 * switchboard::blobs::SEGMENT_BYTES as u64 + 5;
    let (size, mut stream) = server
        .app
        .recordings
        .open_reader_at(&blob_key(id), from)
        .await
        .unwrap();
    assert_eq!(size, wav.len() as u64);
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest)
        .await
        .unwrap();
    assert!(rest[..] == wav[from as usize..]);

    // An attachment is sealed too, and reads back whole.
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    server.app.blobs.put("attachment-1", &bytes).await.unwrap();
    let stored = std::fs::read(server.data_dir.join("blobs/at/attachment-1")).unwrap();
    assert!(stored.starts_with(b"SBSEALED"));
    assert!(!stored.windows(64).any(|w| w == &bytes[5000..5064]));
    assert!(server.app.blobs.get("attachment-1").await.unwrap() == bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_reordered_or_cut_recording_is_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let key = recordings_key(&server).await;
    let (id, wav) = record(&server, (0..3).map(chunk).collect()).await;
    let path = file_of(&server, id);
    let sealed = std::fs::read(&path).unwrap();
    let slot = switchboard::blobs::SEGMENT_BYTES + 28;

    let mut altered = sealed.clone();
    altered[64 + 2 * slot + 1000] ^= 0x01;
    let mut reordered = sealed.clone();
    reordered.copy_within(64 + slot..64 + 2 * slot, 64 + 3 * slot);
    reordered[64 + slot..64 + 2 * slot].copy_from_slice(&sealed[64 + 3 * slot..64 + 4 * slot]);
    let cut_at_a_segment = sealed[..64 + 4 * slot].to_vec();
    let cut_inside = sealed[..sealed.len() - 100].to_vec();
    let mut extended = sealed.clone();
    extended.extend_from_slice(&sealed[64..64 + 200]);

    // A cut or extended file is refused before the answer starts.
    for (what, bytes) in [
        ("cut at a segment", cut_at_a_segment),
        ("cut inside a segment", cut_inside),
        ("extended", extended),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let (status, body) = download(&server, &key, id).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{what}");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "file_unreadable", "{what}: {body}");
    }
    // An altered or moved segment in the middle stops the answer when it is reached (the
    // connection is closed, before or after the answer's head): the client never has a whole
    // body, nor a byte of what was altered.
    for (what, bytes) in [("altered", altered), ("reordered", reordered)] {
        std::fs::write(&path, bytes).unwrap();
        let answer = try_download(&server, &key, id).await;
        assert!(answer.is_err(), "{what}: the download must not complete");
        let error = server
            .app
            .recordings
            .get(&blob_key(id))
            .await
            .expect_err(what);
        assert!(
            error.to_string().contains("does not authenticate"),
            "{what}: {error}"
        );
    }
    // Put back, it serves again.
    std::fs::write(&path, &sealed).unwrap();
    let (status, body) = download(&server, &key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_before_encryption_still_read() {
    let server = Server::start(Backend::Sqlite).await;
    let key = recordings_key(&server).await;
    // A recording and an attachment as an older version wrote them: in clear.
    let id = RecordingId::from_uuid(uuid::Uuid::now_v7());
    let wav = wav_of(&[chunk(1), chunk(2)]);
    let path = file_of(&server, id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &wav).unwrap();
    put_row(&server, id, wav.len() as u64).await;
    let (status, body) = download(&server, &key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav);
    let (_, mut stream) = server
        .app
        .recordings
        .open_reader_at(&blob_key(id), 1000)
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest)
        .await
        .unwrap();
    assert!(rest[..] == wav[1000..]);

    let folder = server.data_dir.join("blobs/ol");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("old-attachment"), b"%PDF-1.4 in clear").unwrap();
    assert_eq!(
        server.app.blobs.get("old-attachment").await.unwrap(),
        b"%PDF-1.4 in clear"
    );
    // A tiny file, shorter than the magic, is an old file too.
    std::fs::write(folder.join("old-tiny"), b"ab").unwrap();
    assert_eq!(server.app.blobs.get("old-tiny").await.unwrap(), b"ab");
}

/// A crash mid-recording leaves a `.open` file; the next start makes it readable under its
/// key with what was written, and the recording's row says `interrupted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_a_crash_cut_short_reads_after_the_next_start() {
    let server = Server::start(Backend::Sqlite).await;
    let id = RecordingId::from_uuid(uuid::Uuid::now_v7());
    let chunks: Vec<Chunk> = (0..3).map(chunk).collect();
    {
        // The recording writer's steps for each chunk, then the process dies: no finish.
        let mut blob = server.app.recordings.create_writer(&blob_key(id)).unwrap();
        let wav = wav_of(&chunks);
        use std::io::{Seek, SeekFrom, Write};
        blob.write_all(&wav[..44]).unwrap();
        blob.flush().unwrap();
        let mut written = 44;
        for chunk in &chunks {
            let bytes = 2 * chunk.len() * 2;
            blob.write_all(&wav[written..written + bytes]).unwrap();
            written += bytes;
            blob.seek(SeekFrom::Start(0)).unwrap();
            blob.write_all(&wav[..44]).unwrap();
            blob.seek(SeekFrom::End(0)).unwrap();
            blob.flush().unwrap();
        }
        // The writer is dropped unfinished, as a crash would leave it.
    }
    let mut row = Recording {
        id,
        call: CallId::from_uuid(uuid::Uuid::now_v7()),
        agent: None,
        started_at: chrono::Utc::now(),
        ended_at: None,
        duration_ms: 0,
        size_bytes: 0,
        paused: Vec::new(),
        status: RecordingStatus::Recording,
        blob_key: blob_key(id),
    };
    server.app.services.store.put_recording(&row).await.unwrap();
    assert!(matches!(
        server.app.recordings.get(&blob_key(id)).await,
        Err(BlobError::NotFound)
    ));
    let (config, database) = server.stop().await;

    let server = Server::start_with(config, database).await;
    row = server.app.services.store.get_recording(id).await.unwrap();
    assert_eq!(row.status, RecordingStatus::Interrupted);
    let bytes = server.app.recordings.get(&blob_key(id)).await.unwrap();
    assert!(bytes == wav_of(&chunks), "everything flushed is kept");
    let key = recordings_key(&server).await;
    let (status, body) = download(&server, &key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == bytes);
}

/// A blob's header key slot (bytes 16..64) is all a rotation may change.
fn same_but_the_key_slot(before: &[u8], after: &[u8]) -> bool {
    before.len() == after.len() && before[..16] == after[..16] && before[64..] == after[64..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_every_file_in_place_and_finishes_when_run_again() {
    let server = Server::start(Backend::Sqlite).await;
    let key = recordings_key(&server).await;
    let (id, wav) = record(&server, vec![chunk(3), chunk(4)]).await;
    let attachment: Vec<u8> = (0..40_000u32).map(|i| (i * 3 % 256) as u8).collect();
    server
        .app
        .blobs
        .put("attached-1", &attachment)
        .await
        .unwrap();
    let clear_path = server.data_dir.join("blobs/ol/old-1");
    std::fs::create_dir_all(clear_path.parent().unwrap()).unwrap();
    std::fs::write(&clear_path, b"from before encryption").unwrap();
    let (config, database) = server.stop().await;
    let recording_path = file_of_dir(&config.data_dir, id);
    let attachment_path = config.data_dir.join("blobs/at/attached-1");
    let before = [
        std::fs::read(&recording_path).unwrap(),
        std::fs::read(&attachment_path).unwrap(),
    ];
    let key_file = config.data_dir.join(switchboard::vault::KEY_FILE);
    let first_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    let key_id = |text: &str| {
        let bytes = switchboard::vault::parse_key(text, "a key").unwrap();
        Vault::new(bytes, &[]).current_id()
    };
    let under = |folder: &str, key: &str| {
        let vault = Arc::new(Vault::load(&config).unwrap());
        LocalBlobs::new(config.data_dir.join(folder), vault)
            .sealed_under(key)
            .unwrap()
    };
    assert_eq!(under("recordings", &blob_key(id)), Some(key_id(&first_key)));

    // A rotation interrupted after its new key was written and the recordings re-wrapped.
    let second_key = switchboard::vault::new_key_text();
    switchboard::vault::write_key_file(&config.data_dir, &[second_key.clone(), first_key.clone()])
        .unwrap();
    let partway = LocalBlobs::new(
        config.data_dir.join("recordings"),
        Arc::new(Vault::load(&config).unwrap()),
    )
    .rewrap_all();
    assert_eq!((partway.rewrapped, partway.failed.len()), (1, 0));

    // Run again, it finishes with the same key: the attachment is re-wrapped, the recording
    // already was, the file in clear is left; then the old key is dropped.
    let done = switchboard::vault::rotate(&config).await.unwrap();
    assert!(done.resumed);
    assert_eq!(done.key, key_id(&second_key));
    assert_eq!(
        (
            done.files.rewrapped,
            done.files.current,
            done.files.clear,
            done.files.failed.len()
        ),
        (1, 1, 1, 0),
        "{done:?}"
    );
    assert!(done.dropped_old_keys);
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap().trim(),
        second_key
    );
    let after = [
        std::fs::read(&recording_path).unwrap(),
        std::fs::read(&attachment_path).unwrap(),
    ];
    for (before, after) in before.iter().zip(&after) {
        assert!(same_but_the_key_slot(before, after), "no file is rewritten");
        assert_ne!(before[16..64], after[16..64], "the key slot is");
    }
    assert_eq!(
        std::fs::read(&clear_path).unwrap(),
        b"from before encryption"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A rotation of its own makes a third key and re-wraps both files under it.
    let done = switchboard::vault::rotate(&config).await.unwrap();
    assert!(!done.resumed);
    assert_ne!(done.key, key_id(&second_key));
    assert_eq!((done.files.rewrapped, done.files.current), (2, 0));
    assert_eq!(under("recordings", &blob_key(id)), Some(done.key));
    assert_eq!(under("blobs", "attached-1"), Some(done.key));

    // Everything reads back on the server, which holds the new key only.
    let server = Server::start_with(config, database).await;
    let (status, body) = download(&server, &key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav);
    assert!(server.app.blobs.get("attached-1").await.unwrap() == attachment);
}

fn file_of_dir(data_dir: &std::path::Path, id: RecordingId) -> PathBuf {
    let key = blob_key(id);
    data_dir.join("recordings").join(&key[..2]).join(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_key_is_a_clear_error_not_garbage() {
    let key_one = "11".repeat(32);
    let key_two = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0x22u8; 32])
    };
    let one = key_one.clone();
    let server = Server::start_configured(Backend::Sqlite, |c| c.secret_key = Some(one)).await;
    let api_key = recordings_key(&server).await;
    let (id, wav) = record(&server, vec![chunk(5)]).await;
    let (config, database) = server.stop().await;
    let with = |current: &str, old: &[&str]| {
        let mut config = config.clone();
        config.secret_key = Some(current.to_owned());
        config.secret_key_old = old.iter().map(|k| (*k).to_owned()).collect();
        config
    };

    // Not a key at all: the start says what a key is.
    let error = switchboard::App::start(with("correct horse battery staple", &[]))
        .await
        .err()
        .expect("a malformed key stops the start");
    assert!(
        error
            .to_string()
            .starts_with("SWITCHBOARD_SECRET_KEY is not a key: a key is 32 bytes"),
        "{error}"
    );
    // Another key: what it sealed does not open, and the start says which key is missing.
    let error = switchboard::App::start(with(&key_two, &[]))
        .await
        .err()
        .expect("a wrong key stops the start");
    assert!(error.to_string().contains("does not hold"), "{error}");

    // The new key with the old one beside it: secrets are sealed again on start, files still
    // open under the old key.
    let server = Server::start_with(with(&key_two, &[&key_one]), database).await;
    let (status, body) = download(&server, &api_key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav);
    let (_, database) = server.stop().await;

    // Without the old key, the file is refused with a code of its own, never served.
    let server = Server::start_with(with(&key_two, &[]), database).await;
    let (status, body) = download(&server, &api_key, id).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "file_unreadable", "{body}");
    let error = server.app.recordings.get(&blob_key(id)).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("which this server does not hold"),
        "{error}"
    );
    let (_, database) = server.stop().await;

    // A rotation with the environment's keys re-wraps the file; then the new key alone reads it.
    let done = switchboard::vault::rotate(&with(&key_two, &[&key_one]))
        .await
        .unwrap();
    assert_eq!((done.files.rewrapped, done.dropped_old_keys), (1, false));
    let server = Server::start_with(with(&key_two, &[]), database).await;
    let (status, body) = download(&server, &api_key, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == wav);
}
