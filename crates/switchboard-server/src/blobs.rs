//! The blob store: bytes by key (attachments, uploaded tones, call recordings). A local folder
//! under the data directory by default; the trait lets an S3-compatible store follow.
//!
//! Small blobs are put and got whole. Recordings are written piece by piece as a call goes
//! on (`create_writer`, from the recording writer's own thread, never from a media task) and
//! read back as a stream (`open_reader`), so neither side holds a whole recording in memory.

use async_trait::async_trait;
use std::path::PathBuf;
use std::pin::Pin;

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
    async fn open_reader(&self, key: &str) -> Result<(u64, BlobReader), BlobError>;
}

/// A local file written in pieces; the writer hands it large pieces, so it needs no buffer.
struct LocalWriter {
    file: std::fs::File,
}

impl std::io::Write for LocalWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl std::io::Seek for LocalWriter {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.file.seek(to)
    }
}

impl BlobWriter for LocalWriter {
    fn finish(&mut self) -> Result<u64, BlobError> {
        use std::io::Write;
        self.file.flush()?;
        let file = &self.file;
        file.sync_data()?;
        Ok(file.metadata()?.len())
    }
}

/// Files under a folder, spread over subfolders by the key's first two characters.
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
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
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await?;
        }
        // Write aside, then rename: a crash never leaves half a file under the key.
        let partial = path.with_extension("partial");
        tokio::fs::write(&partial, bytes).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn create_writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let path = self.path(key)?;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        // A key is written once: an existing file is never overwritten.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Box::new(LocalWriter { file }))
    }

    async fn open_reader(&self, key: &str) -> Result<(u64, BlobReader), BlobError> {
        let file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        Ok((size, Box::pin(file)))
    }
}
