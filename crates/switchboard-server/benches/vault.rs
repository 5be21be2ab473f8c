//! Encryption at rest benchmark (issue 15, item 7): what sealing costs the recording writer
//! and downloads, on one core.
//!
//! The recording writer is one thread for every call: 1,000 calls are about 30 MB/s of WAV,
//! written as two-second chunks of 64,000 bytes, each followed by a rewrite of the WAV header
//! and a flush. This writes recordings exactly so (round robin over the open recordings, as
//! the writer does), once sealed through `LocalBlobs` and once in clear through a plain file as
//! the store did before, and reads them back through the store's streaming reader (from the
//! page cache, so it measures CPU, not the disk). Reported: MB/s of WAV for each, the
//! median of the rounds (clear and sealed rounds alternate), and the ratio to clear; and
//! AES-256-GCM alone on 16 KiB segments. Reads go through tokio's file, one blocking-pool
//! round trip a read, so on a busy machine they vary from run to run more than sealing costs.
//!
//! Run: `cargo bench -p switchboard --bench vault` (settings: BENCH_RECORDINGS=64,
//! BENCH_CHUNKS=30 chunks of two seconds each, BENCH_ROUNDS=5).

use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::blobs::{BlobStore, BlobWriter, LocalBlobs, SEGMENT_BYTES};
use switchboard::vault::Vault;
use tokio::io::AsyncReadExt;

const CHUNK_BYTES: usize = 64_000;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A plain file written the way the store wrote recordings before encryption.
struct Clear(std::fs::File);

impl Write for Clear {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Seek for Clear {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

impl BlobWriter for Clear {
    fn finish(&mut self) -> Result<u64, switchboard::blobs::BlobError> {
        self.0.sync_data()?;
        Ok(self.0.metadata()?.len())
    }
}

/// The recording writer's steps for one chunk: the samples, the header's two sizes, a flush.
fn append(wav: &mut dyn BlobWriter, chunk: &[u8], data_bytes: u32) -> std::io::Result<()> {
    wav.write_all(chunk)?;
    wav.seek(SeekFrom::Start(4))?;
    wav.write_all(&(36 + data_bytes).to_le_bytes())?;
    wav.seek(SeekFrom::Start(40))?;
    wav.write_all(&data_bytes.to_le_bytes())?;
    wav.seek(SeekFrom::End(0))?;
    wav.flush()
}

struct Round {
    write: Duration,
    finish: Duration,
    read: Duration,
    bytes: u64,
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn round(
    sealed: bool,
    recordings: usize,
    chunks: usize,
    runtime: &tokio::runtime::Runtime,
) -> Round {
    let folder =
        std::env::temp_dir().join(format!("switchboard-bench-vault-{}", uuid::Uuid::new_v4()));
    let store = LocalBlobs::new(folder.clone(), Arc::new(Vault::new([7; 32], &[])));
    let chunk: Vec<u8> = (0..CHUNK_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    let keys: Vec<String> = (0..recordings)
        .map(|i| format!("rec-bench-{i:05}"))
        .collect();
    let mut writers: Vec<Box<dyn BlobWriter>> = keys
        .iter()
        .map(|key| -> Box<dyn BlobWriter> {
            if sealed {
                store.create_writer(key).unwrap()
            } else {
                let path = folder.join(&key[..2]).join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                Box::new(Clear(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(path)
                        .unwrap(),
                ))
            }
        })
        .collect();
    let started = Instant::now();
    for writer in &mut writers {
        writer.write_all(&[0u8; 44]).unwrap();
        writer.flush().unwrap();
    }
    for number in 0..chunks {
        let data_bytes = ((number + 1) * CHUNK_BYTES) as u32;
        for writer in &mut writers {
            append(writer.as_mut(), &chunk, data_bytes).unwrap();
        }
    }
    let write = started.elapsed();
    let started = Instant::now();
    let mut bytes = 0;
    for writer in &mut writers {
        bytes += writer.finish().unwrap();
    }
    let finish = started.elapsed();
    let plain_bytes = (recordings * (44 + chunks * CHUNK_BYTES)) as u64;
    if sealed {
        assert_eq!(bytes, plain_bytes);
    }
    let read = runtime.block_on(async {
        let started = Instant::now();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        for key in &keys {
            let (_, mut reader) = store.open_reader(key).await.unwrap();
            loop {
                let read = reader.read(&mut buffer).await.unwrap();
                if read == 0 {
                    break;
                }
                total += read as u64;
            }
        }
        assert!(total >= plain_bytes);
        started.elapsed()
    });
    std::fs::remove_dir_all(&folder).ok();
    Round {
        write,
        finish,
        read,
        bytes: plain_bytes,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// AES-256-GCM alone: seal and open 16 KiB segments in memory.
fn cipher_alone() -> (f64, f64) {
    let vault = Vault::new([3; 32], &[]);
    let (key, _) = vault.new_data_key().unwrap();
    let plain = vec![0x5au8; SEGMENT_BYTES];
    let mut sealed = vec![0u8; SEGMENT_BYTES + switchboard::vault::SEAL_OVERHEAD];
    let count = 20_000;
    let started = Instant::now();
    for _ in 0..count {
        key.seal(b"associated", &plain, &mut sealed).unwrap();
    }
    let seal = started.elapsed();
    let mut copy = sealed.clone();
    let started = Instant::now();
    for _ in 0..count {
        copy.copy_from_slice(&sealed);
        key.open(b"associated", &mut copy).unwrap();
    }
    let open = started.elapsed();
    let bytes = (count * SEGMENT_BYTES) as u64;
    (mb_per_s(bytes, seal), mb_per_s(bytes, open))
}

fn main() {
    let recordings = setting("BENCH_RECORDINGS", 64);
    let chunks = setting("BENCH_CHUNKS", 30);
    let rounds = setting("BENCH_ROUNDS", 5).max(1);
    // One core for the reads too: a current-thread runtime and one blocking thread for the file.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{recordings} recordings of {chunks} two-second chunks ({:.1} MB of WAV a round), {rounds} rounds, {} KiB segments",
        (recordings * (44 + chunks * CHUNK_BYTES)) as f64 / 1e6,
        SEGMENT_BYTES / 1024
    );
    // Clear and sealed rounds alternate, so both see the machine in the same state.
    let mut runs: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (slot, sealed) in [(0, false), (1, true)] {
            runs[slot].push(round(sealed, recordings, chunks, &runtime));
        }
    }
    let mut results = Vec::new();
    for (runs, name) in runs.iter().zip(["clear", "sealed"]) {
        let write = median(runs.iter().map(|r| mb_per_s(r.bytes, r.write)).collect());
        let read = median(runs.iter().map(|r| mb_per_s(r.bytes, r.read)).collect());
        let finish = median(
            runs.iter()
                .map(|r| r.finish.as_secs_f64() * 1000.0 / recordings as f64)
                .collect(),
        );
        println!(
            "{name:>6}: write {write:8.1} MB/s   read {read:8.1} MB/s   finish (sync) {finish:.2} ms a file"
        );
        results.push((write, read));
    }
    let (clear, sealed) = (results[0], results[1]);
    println!(
        "sealed / clear: write x{:.2}, read x{:.2}; the writer's share of a core at 30 MB/s: {:.1}% sealed, {:.1}% clear",
        sealed.0 / clear.0,
        sealed.1 / clear.1,
        30.0 / sealed.0 * 100.0,
        30.0 / clear.0 * 100.0
    );
    let (seal, open) = cipher_alone();
    println!("AES-256-GCM alone, 16 KiB segments: seal {seal:.0} MB/s, open {open:.0} MB/s");
}
