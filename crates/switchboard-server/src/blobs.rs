//! The blob store: bytes by key (attachments, uploaded tones, call recordings). A local folder
//! under the data directory by default; the trait lets an S3-compatible store follow.
//!
//! Small blobs are put and got whole. Recordings are written piece by piece as a call goes
//! on (`create_writer`, from the recording writer's own thread, never from a media task) and
//! read back as a stream (`open_reader`), so neither side holds a whole recording in memory.
//!
//! Every blob is encrypted at rest (`sealed`: AES-256-GCM in 16 KiB segments under a data key
//! of its own, wrapped by the vault's master key; see `vault.rs`). A file from a version before
//! encryption has no sealed header and is read in clear as it is. A blob being written lives
//! at `<key>.open` and takes its key's name when finished, so a crash never leaves a file
//! under the key that is not whole; `recover_unfinished` makes what a crash left readable.

mod sealed;

use crate::vault::{KeyId, Vault};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

pub use sealed::{SealError, SEGMENT_BYTES};

/// A blob being written in pieces. It is `Seek` because a WAV header is rewritten with the
/// length as the file grows; a store without seeking keeps the blob aside until `finish`.
pub trait BlobWriter: std::io::Write + std::io::Seek + Send {
    /// Makes what was written durable under the key; returns the blob's size in bytes.
    fn finish(&mut self) -> Result<u64, BlobError>;
}

/// A blob read as a stream.
pub type BlobReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("blob key `{0}` is not valid")]
    BadKey(String),
    #[error("blob store failed: {0}")]
    Io(#[from] std::io::Error),
    /// The blob is sealed and does not open: a key this server lacks, or an altered file.
    #[error("the stored file does not open: {0}")]
    Sealed(SealError),
}

impl From<SealError> for BlobError {
    fn from(error: SealError) -> Self {
        match error {
            SealError::Io(error) => BlobError::Io(error),
            other => BlobError::Sealed(other),
        }
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores bytes under a key, replacing nothing: a key is written once.
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError>;
    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Opens a new blob to be written in pieces. Blocking IO: call it from a thread that may
    /// block (the recording writer's), not from an async task.
    fn create_writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError>;
    /// Opens a blob to be read as a stream, with its size in bytes.
    async fn open_reader(&self, key: &str) -> Result<(u64, BlobReader), BlobError> {
        self.open_reader_at(key, 0).await
    }
    /// Opens a blob to be read as a stream from byte `from` (a range; past the end, nothing),
    /// with its whole size in bytes.
    async fn open_reader_at(&self, key: &str, from: u64) -> Result<(u64, BlobReader), BlobError>;
}

/// The folders under the data directory that hold blobs: attachments and tones, recordings.
pub fn folders(data_dir: &Path) -> [PathBuf; 2] {
    [data_dir.join("blobs"), data_dir.join("recordings")]
}

/// A blob being written to its `.open` file, renamed to its key when finished.
struct LocalWriter {
    sealed: sealed::SealedWriter<std::fs::File>,
    open: PathBuf,
    path: PathBuf,
    finished: bool,
}

impl std::io::Write for LocalWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.sealed.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.sealed.flush()
    }
}

impl std::io::Seek for LocalWriter {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.sealed.seek(to)
    }
}

impl BlobWriter for LocalWriter {
    fn finish(&mut self) -> Result<u64, BlobError> {
        if self.finished {
            return Err(BlobError::Io(std::io::Error::other(
                "the blob was finished already",
            )));
        }
        let size = self.sealed.finish().map_err(sealed::into_seal_error)?;
        self.sealed.file().sync_data()?;
        std::fs::rename(&self.open, &self.path)?;
        self.finished = true;
        Ok(size)
    }
}

/// What `LocalBlobs::recover_unfinished` did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Unfinished blobs made readable under their keys.
    pub recovered: usize,
    /// Those that could not be, with why (left as `.open` files).
    pub failed: Vec<(PathBuf, String)>,
}

/// What `LocalBlobs::rewrap_all` did.
#[derive(Debug, Default)]
pub struct Rewrapped {
    /// Files whose data key is now wrapped under the current master key.
    pub rewrapped: usize,
    /// Files that already were.
    pub current: usize,
    /// Files in clear from before encryption, left as they are.
    pub clear: usize,
    /// Files that could not be re-wrapped, with why.
    pub failed: Vec<(PathBuf, String)>,
}

impl Rewrapped {
    pub fn add(&mut self, other: Rewrapped) {
        self.rewrapped += other.rewrapped;
        self.current += other.current;
        self.clear += other.clear;
        self.failed.extend(other.failed);
    }
}

/// Files under a folder, spread over subfolders by the key's first two characters, sealed
/// under the vault's keys.
pub struct LocalBlobs {
    root: PathBuf,
    vault: Arc<Vault>,
}

/// The extension of a blob being written.
const OPEN: &str = "open";
/// The extension of a small blob being put (written aside, then renamed).
const PARTIAL: &str = "partial";

impl LocalBlobs {
    pub fn new(root: PathBuf, vault: Arc<Vault>) -> Self {
        Self { root, vault }
    }

    /// Keys are ids we make (letters, digits, '-'); anything else never reaches the disk.
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if key.len() < 3
            || key.len() > 100
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(BlobError::BadKey(key.chars().take(40).collect()));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }

    /// Every file in the store's subfolders, with the blobs being put left out.
    fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        let folders = match std::fs::read_dir(&self.root) {
            Ok(folders) => folders,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(e),
        };
        for folder in folders {
            let folder = folder?;
            if !folder.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(folder.path())? {
                let file = file?;
                let path = file.path();
                if file.file_type()?.is_file()
                    && path
                        .extension()
                        .is_none_or(|extension| extension != PARTIAL)
                {
                    files.push(path);
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// Makes every blob a crash left unfinished (a `.open` file) readable under its key, with
    /// what it holds (see `sealed::repair`). A server start calls it before anything reads.
    /// Blocking IO.
    pub fn recover_unfinished(&self) -> std::io::Result<Recovered> {
        let mut recovered = Recovered::default();
        for path in self.files()? {
            if path.extension().is_none_or(|extension| extension != OPEN) {
                continue;
            }
            let repaired = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(SealError::Io)
                .and_then(|mut file| {
                    let outcome = sealed::repair(&mut file, &self.vault)?;
                    file.sync_data()?;
                    Ok(outcome)
                })
                .and_then(|_| Ok(std::fs::rename(&path, path.with_extension(""))?));
            match repaired {
                Ok(()) => recovered.recovered += 1,
                Err(error) => recovered.failed.push((path, error.to_string())),
            }
        }
        Ok(recovered)
    }

    /// Re-wraps every blob's data key under the vault's current key, in place (see
    /// `sealed::rewrap`); files already under it and files in clear are left as they are.
    /// Blocking IO.
    pub fn rewrap_all(&self) -> Rewrapped {
        let mut done = Rewrapped::default();
        let files = match self.files() {
            Ok(files) => files,
            Err(error) => {
                done.failed.push((self.root.clone(), error.to_string()));
                return done;
            }
        };
        for path in files {
            let outcome = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(SealError::Io)
                .and_then(|mut file| sealed::rewrap(&mut file, &self.vault));
            match outcome {
                Ok(sealed::Rewrap::Rewrapped) => done.rewrapped += 1,
                Ok(sealed::Rewrap::Current) => done.current += 1,
                Ok(sealed::Rewrap::Clear) => done.clear += 1,
                Err(error) => done.failed.push((path, error.to_string())),
            }
        }
        done
    }

    /// The master key a blob's data key is wrapped under; `None` for a blob in clear.
    pub fn sealed_under(&self, key: &str) -> Result<Option<KeyId>, BlobError> {
        let mut file = match std::fs::File::open(self.path(key)?) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(sealed::sealed_under(&mut file)?)
    }

    /// Where a blob's file is (for tests and operators' tools: its bytes are sealed).
    pub fn file_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        self.path(key)
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await?;
        }
        // Sealed in memory on this thread: AES-GCM seals a 25 MB attachment in about 10 ms.
        let sealed = sealed::seal_whole(&self.vault, bytes)?;
        // Write aside, then rename: a crash never leaves half a file under the key.
        let partial = path.with_extension(PARTIAL);
        tokio::fs::write(&partial, sealed).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let bytes = match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        if sealed::is_sealed(&bytes) {
            Ok(sealed::open_whole(&self.vault, bytes)?)
        } else {
            Ok(bytes)
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        for path in [path.with_extension(OPEN), path] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn create_writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let path = self.path(key)?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        // A key is written once: an existing file is never overwritten.
        if path.exists() {
            return Err(BlobError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("blob {key} exists"),
            )));
        }
        let open = path.with_extension(OPEN);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&open)?;
        let sealed = sealed::SealedWriter::create(file, &self.vault)?;
        Ok(Box::new(LocalWriter {
            sealed,
            open,
            path,
            finished: false,
        }))
    }

    async fn open_reader_at(&self, key: &str, from: u64) -> Result<(u64, BlobReader), BlobError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let mut magic = [0u8; sealed::MAGIC.len()];
        let mut read = 0;
        while read < magic.len() {
            match file.read(&mut magic[read..]).await? {
                0 => break,
                n => read += n,
            }
        }
        if sealed::is_sealed(&magic[..read]) {
            let (size, reader) = sealed::SealedReader::open(file, &self.vault, from).await?;
            return Ok((size, Box::pin(reader)));
        }
        // A file from before encryption, read as it is.
        let size = file.metadata().await?.len();
        file.seek(std::io::SeekFrom::Start(from.min(size))).await?;
        Ok((size, Box::pin(file)))
    }
}
