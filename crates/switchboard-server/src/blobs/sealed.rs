//! The sealed blob format: a blob's bytes encrypted at rest in fixed-size segments, so that
//! reading streams one segment at a time, a read may begin at any segment, and a writer may
//! rewrite one segment (the WAV header's) without touching the rest.
//!
//! Layout of a file:
//!
//! ```text
//! header, 64 bytes:  "SBSEALED"  version 1  0 0 0  segment size (u32 LE)   <- the fixed part
//!                    key slot: master key id (8), wrapped data key (40)     <- rotation rewrites it
//! segment i, at 64 + i * (segment size + 28):  nonce (12)  ciphertext  tag (16)
//! ```
//!
//! Each segment is AES-256-GCM under the blob's data key, with a fresh random nonce every time
//! it is written. Its associated data is the header's fixed part, the segment's index (u64 LE)
//! and whether it is the last segment, so: a segment moved elsewhere does not open (its index
//! differs); a file cut at a segment boundary does not open (its new last segment was sealed
//! as not last); a file with a segment added after the last does not open (the old last was
//! sealed as last). Every blob has at least one segment (an empty blob an empty one), so a file
//! cut down to its header is refused too. Every segment but the last holds the segment size of
//! plaintext; the last's length follows from the file's. The key slot is not in the associated
//! data: a rotation rewrites it alone, and a wrong slot cannot pass, since the data key would
//! not unwrap or would not open the segments.
//!
//! A file whose first bytes are not the magic is a blob stored in clear by a version before
//! encryption, and is read as it is.

use crate::vault::{DataKey, KeyId, KeySlot, Vault, VaultError, NONCE_BYTES, SEAL_OVERHEAD};
use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, ReadBuf};

/// The first bytes of every sealed blob.
pub const MAGIC: [u8; 8] = *b"SBSEALED";
const VERSION: u8 = 1;
/// The header's size: the fixed part and the key slot.
pub const HEADER_BYTES: usize = FIXED_BYTES + KeySlot::BYTES;
/// The header's part bound into every segment: magic, version, segment size.
const FIXED_BYTES: usize = 16;
/// Plaintext bytes a segment holds. A writer keeps two segments in memory (the first, with
/// the WAV header it rewrites, and the one being appended), so this is what an open recording
/// costs: 32 KiB, or 32 MB for 1,000 calls; 64 KiB segments would double it. The 28 bytes of
/// nonce and tag are 0.17% of a segment.
pub const SEGMENT_BYTES: usize = 16 * 1024;
/// Segments a reader fetches from the file at once (64 KiB reads).
const READ_AHEAD: usize = 4;

/// Why a sealed blob cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0}")]
    Key(#[from] VaultError),
    #[error("not a sealed blob of a version this server reads: {0}")]
    Header(&'static str),
    #[error("segment {0} does not authenticate: the file was altered, reordered or cut")]
    Segment(u64),
    #[error("the file was cut: it ends inside its header or its last segment")]
    Truncated,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl SealError {
    /// The error as `std::io::Error` (for `Write` and `AsyncRead`); `into_seal_error` gets it back.
    fn into_io(self) -> std::io::Error {
        match self {
            SealError::Io(error) => error,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

/// The sealed error an `std::io::Error` carries, if it carries one.
pub fn into_seal_error(error: std::io::Error) -> SealError {
    if error.get_ref().is_some_and(|inner| inner.is::<SealError>()) {
        let kind = error.kind();
        return match error
            .into_inner()
            .map(|inner| inner.downcast::<SealError>())
        {
            Some(Ok(sealed)) => *sealed,
            _ => SealError::Io(kind.into()),
        };
    }
    SealError::Io(error)
}

/// Whether a file beginning with `prefix` is sealed (else it is a blob from before encryption).
pub fn is_sealed(prefix: &[u8]) -> bool {
    prefix.starts_with(&MAGIC)
}

/// A parsed header.
struct Header {
    fixed: [u8; FIXED_BYTES],
    segment: usize,
    slot: KeySlot,
}

impl Header {
    fn new(segment: usize, slot: KeySlot) -> Header {
        let mut fixed = [0u8; FIXED_BYTES];
        fixed[..8].copy_from_slice(&MAGIC);
        fixed[8] = VERSION;
        fixed[12..].copy_from_slice(&(segment as u32).to_le_bytes());
        Header {
            fixed,
            segment,
            slot,
        }
    }

    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        bytes[..FIXED_BYTES].copy_from_slice(&self.fixed);
        bytes[FIXED_BYTES..].copy_from_slice(&self.slot.to_bytes());
        bytes
    }

    fn parse(bytes: &[u8; HEADER_BYTES]) -> Result<Header, SealError> {
        if !is_sealed(bytes) {
            return Err(SealError::Header("no magic"));
        }
        if bytes[8] != VERSION || bytes[9..12] != [0, 0, 0] {
            return Err(SealError::Header("an unknown version"));
        }
        let segment = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        if !(1024..=1024 * 1024).contains(&segment) {
            return Err(SealError::Header("a segment size out of range"));
        }
        let mut fixed = [0u8; FIXED_BYTES];
        fixed.copy_from_slice(&bytes[..FIXED_BYTES]);
        let mut slot = [0u8; KeySlot::BYTES];
        slot.copy_from_slice(&bytes[FIXED_BYTES..]);
        Ok(Header {
            fixed,
            segment,
            slot: KeySlot::from_bytes(&slot),
        })
    }
}

/// Where segment `index` begins in the file.
fn offset(segment: usize, index: u64) -> u64 {
    HEADER_BYTES as u64 + index * (segment + SEAL_OVERHEAD) as u64
}

/// A segment's associated data.
fn aad(fixed: &[u8; FIXED_BYTES], index: u64, last: bool) -> [u8; FIXED_BYTES + 9] {
    let mut aad = [0u8; FIXED_BYTES + 9];
    aad[..FIXED_BYTES].copy_from_slice(fixed);
    aad[FIXED_BYTES..FIXED_BYTES + 8].copy_from_slice(&index.to_le_bytes());
    aad[FIXED_BYTES + 8] = u8::from(last);
    aad
}

/// The segments of a file, from its length.
#[derive(Clone, Copy, Debug)]
struct Layout {
    segment: usize,
    /// How many there are: at least one.
    segments: u64,
    /// The last one's sealed length.
    last_sealed: usize,
}

impl Layout {
    fn of(file_len: u64, segment: usize) -> Result<Layout, SealError> {
        let body = file_len
            .checked_sub(HEADER_BYTES as u64)
            .filter(|body| *body > 0)
            .ok_or(SealError::Truncated)?;
        let slot = (segment + SEAL_OVERHEAD) as u64;
        let segments = body.div_ceil(slot);
        let last_sealed = (body - (segments - 1) * slot) as usize;
        if last_sealed < SEAL_OVERHEAD {
            return Err(SealError::Truncated);
        }
        Ok(Layout {
            segment,
            segments,
            last_sealed,
        })
    }

    fn sealed_len(&self, index: u64) -> usize {
        if index + 1 == self.segments {
            self.last_sealed
        } else {
            self.segment + SEAL_OVERHEAD
        }
    }

    /// The blob's plaintext length.
    fn plain_len(&self) -> u64 {
        (self.segments - 1) * self.segment as u64 + (self.last_sealed - SEAL_OVERHEAD) as u64
    }
}

thread_local! {
    /// One buffer a thread for the segment being sealed, so writers hold no sealed copy of
    /// their own (the recording writer is one thread for every recording).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Seals `plain` as segment `index` and writes it at its place.
fn put_segment<F: Write + Seek>(
    file: &mut F,
    key: &DataKey,
    fixed: &[u8; FIXED_BYTES],
    segment: usize,
    index: u64,
    plain: &[u8],
    last: bool,
) -> std::io::Result<()> {
    SCRATCH.with(|scratch| {
        let mut sealed = scratch.borrow_mut();
        sealed.resize(plain.len() + SEAL_OVERHEAD, 0);
        key.seal(&aad(fixed, index, last), plain, &mut sealed)
            .map_err(|e| SealError::Key(e).into_io())?;
        file.seek(SeekFrom::Start(offset(segment, index)))?;
        file.write_all(&sealed)
    })
}

/// Reads segment `index` (of `sealed_len` bytes) and opens it; returns its plaintext.
fn get_segment<F: Read + Seek>(
    file: &mut F,
    key: &DataKey,
    fixed: &[u8; FIXED_BYTES],
    segment: usize,
    index: u64,
    sealed_len: usize,
    last: bool,
) -> Result<Vec<u8>, SealError> {
    let mut sealed = vec![0u8; sealed_len];
    file.seek(SeekFrom::Start(offset(segment, index)))?;
    file.read_exact(&mut sealed).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => SealError::Truncated,
        _ => SealError::Io(e),
    })?;
    let len = key
        .open(&aad(fixed, index, last), &mut sealed)
        .map_err(|_| SealError::Segment(index))?;
    sealed.copy_within(NONCE_BYTES..NONCE_BYTES + len, 0);
    sealed.truncate(len);
    Ok(sealed)
}

/// A whole blob sealed in memory (attachments and tones are put whole).
pub fn seal_whole(vault: &Vault, plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let (key, slot) = vault.new_data_key()?;
    let header = Header::new(SEGMENT_BYTES, slot);
    let segments = plain.len().div_ceil(SEGMENT_BYTES).max(1);
    let mut out = Vec::with_capacity(HEADER_BYTES + plain.len() + segments * SEAL_OVERHEAD);
    out.extend_from_slice(&header.encode());
    for index in 0..segments {
        let piece = &plain[(index * SEGMENT_BYTES).min(plain.len())
            ..((index + 1) * SEGMENT_BYTES).min(plain.len())];
        let at = out.len();
        out.resize(at + piece.len() + SEAL_OVERHEAD, 0);
        key.seal(
            &aad(&header.fixed, index as u64, index + 1 == segments),
            piece,
            &mut out[at..],
        )?;
    }
    Ok(out)
}

/// A whole sealed blob opened in memory, in place.
pub fn open_whole(vault: &Vault, mut file: Vec<u8>) -> Result<Vec<u8>, SealError> {
    let head: &[u8; HEADER_BYTES] = file
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(SealError::Truncated)?;
    let header = Header::parse(head)?;
    let key = vault.open(&header.slot)?;
    let layout = Layout::of(file.len() as u64, header.segment)?;
    let mut written = 0;
    for index in 0..layout.segments {
        let at = offset(header.segment, index) as usize;
        let sealed = &mut file[at..at + layout.sealed_len(index)];
        let len = key
            .open(
                &aad(&header.fixed, index, index + 1 == layout.segments),
                sealed,
            )
            .map_err(|_| SealError::Segment(index))?;
        file.copy_within(at + NONCE_BYTES..at + NONCE_BYTES + len, written);
        written += len;
    }
    file.truncate(written);
    Ok(file)
}

/// One segment's plaintext in a writer's memory.
struct Segment {
    index: u64,
    plain: Vec<u8>,
    /// Whether it changed since it was last written.
    dirty: bool,
}

/// A sealed blob being written: `Write + Seek` over its plaintext, as a file would be.
///
/// It keeps the first segment and the one being written in memory, and writes a segment out
/// (sealed again, with a new nonce) when it is left for another or on `flush`: a WAV header
/// rewritten after each chunk re-seals the first segment and nothing else. A seek lands
/// anywhere within what was written (a segment neither in memory is read back and opened);
/// seeking past the end is refused, as sealed blobs have no holes.
///
/// What a crash leaves (the recording writer flushes after each chunk): every segment
/// written out, so everything up to the last flush, and the first segment (the WAV header) as
/// of that flush or the one before. `flush` writes the segment being appended before the first
/// segment, so a crash between the two leaves the older WAV header, which counts fewer samples
/// than are there. The file's last segment is sealed as last after every flush; between a
/// segment filling up and the next flush it may not be, which `repair` puts right.
pub struct SealedWriter<F> {
    file: F,
    key: DataKey,
    fixed: [u8; FIXED_BYTES],
    first: Segment,
    /// The segment being written when it is not the first.
    current: Option<Segment>,
    position: u64,
    length: u64,
}

impl<F: Read + Write + Seek> SealedWriter<F> {
    /// Starts a blob in `file` (empty) under a fresh data key wrapped by the vault's current key.
    pub fn create(mut file: F, vault: &Vault) -> Result<SealedWriter<F>, SealError> {
        let (key, slot) = vault.new_data_key()?;
        let header = Header::new(SEGMENT_BYTES, slot);
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header.encode())?;
        Ok(SealedWriter {
            file,
            key,
            fixed: header.fixed,
            // Dirty, so that even an empty blob gets its one (empty) segment.
            first: Segment {
                index: 0,
                plain: Vec::new(),
                dirty: true,
            },
            current: None,
            position: 0,
            length: 0,
        })
    }

    /// The last segment's index.
    fn last_index(&self) -> u64 {
        self.length.saturating_sub(1) / SEGMENT_BYTES as u64
    }

    /// Reads back segment `index`, which is on disk and in neither slot.
    fn load(&mut self, index: u64) -> std::io::Result<Vec<u8>> {
        let last = index == self.last_index();
        let sealed_len = if last {
            (self.length - index * SEGMENT_BYTES as u64) as usize + SEAL_OVERHEAD
        } else {
            SEGMENT_BYTES + SEAL_OVERHEAD
        };
        get_segment(
            &mut self.file,
            &self.key,
            &self.fixed,
            SEGMENT_BYTES,
            index,
            sealed_len,
            last,
        )
        .map_err(SealError::into_io)
    }

    /// Makes segment `index` (not the first) the current one, writing out the one it replaces.
    fn select(&mut self, index: u64, growing: bool) -> std::io::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.index == index) {
            return Ok(());
        }
        let mut plain = Vec::new();
        if let Some(old) = self.current.take() {
            if old.dirty {
                let last = old.index == self.last_index() && !growing;
                let written = put_segment(
                    &mut self.file,
                    &self.key,
                    &self.fixed,
                    SEGMENT_BYTES,
                    old.index,
                    &old.plain,
                    last,
                );
                if let Err(error) = written {
                    self.current = Some(old);
                    return Err(error);
                }
            }
            plain = old.plain;
            plain.clear();
        }
        if !growing {
            plain = self.load(index)?;
        }
        self.current = Some(Segment {
            index,
            plain,
            dirty: false,
        });
        Ok(())
    }

    /// Writes out what changed and returns the blob's length; the caller makes the file durable.
    pub fn finish(&mut self) -> std::io::Result<u64> {
        self.flush()?;
        Ok(self.length)
    }

    /// The file, to make it durable.
    pub fn file(&self) -> &F {
        &self.file
    }
}

impl<F: Read + Write + Seek> Write for SealedWriter<F> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let index = self.position / SEGMENT_BYTES as u64;
        let within = (self.position % SEGMENT_BYTES as u64) as usize;
        let growing = index > self.last_index();
        if growing {
            // The segment before stops being the last: on disk, before the new one exists.
            let before = index - 1;
            let held = if before == 0 {
                Some(&mut self.first)
            } else {
                self.current.as_mut().filter(|c| c.index == before)
            };
            match held {
                Some(segment) => {
                    put_segment(
                        &mut self.file,
                        &self.key,
                        &self.fixed,
                        SEGMENT_BYTES,
                        before,
                        &segment.plain,
                        false,
                    )?;
                    segment.dirty = false;
                }
                None => {
                    let plain = self.load(before)?;
                    put_segment(
                        &mut self.file,
                        &self.key,
                        &self.fixed,
                        SEGMENT_BYTES,
                        before,
                        &plain,
                        false,
                    )?;
                }
            }
        }
        if index > 0 {
            self.select(index, growing)?;
        }
        let segment = if index == 0 {
            &mut self.first
        } else {
            self.current
                .as_mut()
                .expect("select made segment `index` the current one")
        };
        let count = bytes.len().min(SEGMENT_BYTES - within);
        let end = within + count;
        if segment.plain.len() < end {
            segment.plain.resize(end, 0);
        }
        segment.plain[within..end].copy_from_slice(&bytes[..count]);
        segment.dirty = true;
        self.position += count as u64;
        self.length = self.length.max(self.position);
        Ok(count)
    }

    /// Writes out the segment being written, then the first, each sealed as last if it is.
    fn flush(&mut self) -> std::io::Result<()> {
        let last = self.last_index();
        let current = self.current.as_mut().filter(|c| c.dirty);
        for segment in current
            .into_iter()
            .chain(Some(&mut self.first).filter(|f| f.dirty))
        {
            put_segment(
                &mut self.file,
                &self.key,
                &self.fixed,
                SEGMENT_BYTES,
                segment.index,
                &segment.plain,
                segment.index == last,
            )?;
            segment.dirty = false;
        }
        self.file.flush()
    }
}

impl<F: Read + Write + Seek> Seek for SealedWriter<F> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.length.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        match target {
            Some(at) if at <= self.length => {
                self.position = at;
                Ok(at)
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a sealed blob has no holes: seek within what was written",
            )),
        }
    }
}

/// What `repair` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Repair {
    /// The file was whole.
    Intact,
    /// Its last segment was sealed again as the last (a crash between a segment filling up
    /// and the next flush), or an empty segment added to a file with none.
    Sealed,
    /// Its last segment was torn (a write the system lost) and is dropped; the one before is
    /// sealed as the last.
    DroppedTorn,
}

/// Makes a blob a crash left unfinished readable, with the data key its header holds: its
/// last segment that opens becomes the sealed last one. Only the server, holding the key, can
/// do this; a file cut by someone else stays refused.
pub fn repair(file: &mut std::fs::File, vault: &Vault) -> Result<Repair, SealError> {
    let mut head = [0u8; HEADER_BYTES];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)
        .map_err(|_| SealError::Truncated)?;
    let header = Header::parse(&head)?;
    let key = vault.open(&header.slot)?;
    let segment = header.segment;
    let slot = (segment + SEAL_OVERHEAD) as u64;
    let body = file.metadata()?.len() - HEADER_BYTES as u64;
    if body == 0 {
        put_segment(file, &key, &header.fixed, segment, 0, &[], true)?;
        return Ok(Repair::Sealed);
    }
    let segments = body.div_ceil(slot);
    let last = segments - 1;
    let last_len = (body - last * slot) as usize;
    let open = |file: &mut std::fs::File, index: u64, len: usize, as_last: bool| {
        get_segment(file, &key, &header.fixed, segment, index, len, as_last)
    };
    if last_len >= SEAL_OVERHEAD {
        if open(file, last, last_len, true).is_ok() {
            return Ok(Repair::Intact);
        }
        if let Ok(plain) = open(file, last, last_len, false) {
            put_segment(file, &key, &header.fixed, segment, last, &plain, true)?;
            return Ok(Repair::Sealed);
        }
    }
    file.set_len(offset(segment, last))?;
    if last == 0 {
        put_segment(file, &key, &header.fixed, segment, 0, &[], true)?;
        return Ok(Repair::DroppedTorn);
    }
    let plain = open(file, last - 1, slot as usize, false)?;
    put_segment(file, &key, &header.fixed, segment, last - 1, &plain, true)?;
    Ok(Repair::DroppedTorn)
}

/// What `rewrap` did to a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrap {
    /// Its data key is now wrapped under the current key.
    Rewrapped,
    /// It already was.
    Current,
    /// It is a blob in clear from before encryption: left as it is.
    Clear,
}

/// Re-wraps a blob's data key under the vault's current key: the header's key slot is
/// rewritten in place (48 bytes, within the first disk sector) and synced; nothing else of the
/// file is touched.
pub fn rewrap(file: &mut std::fs::File, vault: &Vault) -> Result<Rewrap, SealError> {
    let mut head = [0u8; HEADER_BYTES];
    file.seek(SeekFrom::Start(0))?;
    let read = read_up_to(file, &mut head)?;
    if read < MAGIC.len() || !is_sealed(&head) {
        return Ok(Rewrap::Clear);
    }
    if read < HEADER_BYTES {
        return Err(SealError::Truncated);
    }
    let header = Header::parse(&head)?;
    match vault.rewrap(&header.slot)? {
        None => Ok(Rewrap::Current),
        Some(slot) => {
            file.seek(SeekFrom::Start(FIXED_BYTES as u64))?;
            file.write_all(&slot.to_bytes())?;
            file.sync_data()?;
            Ok(Rewrap::Rewrapped)
        }
    }
}

/// The master key a sealed file's data key is wrapped under; `None` for a file in clear.
pub fn sealed_under(file: &mut std::fs::File) -> Result<Option<KeyId>, SealError> {
    let mut head = [0u8; HEADER_BYTES];
    file.seek(SeekFrom::Start(0))?;
    if read_up_to(file, &mut head)? < HEADER_BYTES || !is_sealed(&head) {
        return Ok(None);
    }
    Ok(Some(Header::parse(&head)?.slot.key))
}

fn read_up_to(file: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut read = 0;
    while read < buffer.len() {
        match file.read(&mut buffer[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read)
}

/// A sealed blob read as a stream, a segment at a time (read ahead a few at once): it holds at
/// most `READ_AHEAD` sealed segments, never the whole blob.
pub struct SealedReader {
    file: tokio::fs::File,
    key: DataKey,
    fixed: [u8; FIXED_BYTES],
    layout: Layout,
    /// The next segment to open.
    next: u64,
    /// Sealed bytes read from the file; segments are opened in place.
    buffer: Box<[u8]>,
    /// Bytes of `buffer` read.
    filled: usize,
    /// Where the first segment not yet opened begins in `buffer`.
    unopened: usize,
    /// Opened plaintext not yet handed out.
    plain: Range<usize>,
    /// Plaintext to skip at the start of the next segment opened (a read from an offset).
    skip: usize,
    /// Sealed bytes of the file not yet read.
    remaining: u64,
}

impl SealedReader {
    /// Opens a sealed file to be read from plaintext offset `from`; returns the blob's whole
    /// length with it. The data key is unwrapped and the last segment opened first, so a
    /// wrong key, a cut or an extended file is refused before anything is read.
    pub async fn open(
        mut file: tokio::fs::File,
        vault: &Vault,
        from: u64,
    ) -> Result<(u64, SealedReader), SealError> {
        let file_len = file.metadata().await?.len();
        let mut head = [0u8; HEADER_BYTES];
        file.seek(SeekFrom::Start(0)).await?;
        file.read_exact(&mut head)
            .await
            .map_err(|_| SealError::Truncated)?;
        let header = Header::parse(&head)?;
        let key = vault.open(&header.slot)?;
        let layout = Layout::of(file_len, header.segment)?;
        let last = layout.segments - 1;
        let mut sealed = vec![0u8; layout.last_sealed];
        file.seek(SeekFrom::Start(offset(layout.segment, last)))
            .await?;
        file.read_exact(&mut sealed)
            .await
            .map_err(|_| SealError::Truncated)?;
        key.open(&aad(&header.fixed, last, true), &mut sealed)
            .map_err(|_| SealError::Segment(last))?;
        let size = layout.plain_len();
        let (next, skip) = if from >= size {
            (layout.segments, 0)
        } else {
            (
                from / layout.segment as u64,
                (from % layout.segment as u64) as usize,
            )
        };
        let start = offset(layout.segment, next).min(file_len);
        file.seek(SeekFrom::Start(start)).await?;
        let reader = SealedReader {
            file,
            key,
            fixed: header.fixed,
            layout,
            next,
            buffer: vec![0u8; READ_AHEAD * (layout.segment + SEAL_OVERHEAD)].into_boxed_slice(),
            filled: 0,
            unopened: 0,
            plain: 0..0,
            skip,
            remaining: file_len - start,
        };
        Ok((size, reader))
    }
}

impl AsyncRead for SealedReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.plain.is_empty() {
                let count = this.plain.len().min(out.remaining());
                out.put_slice(&this.buffer[this.plain.start..this.plain.start + count]);
                this.plain.start += count;
                return Poll::Ready(Ok(()));
            }
            if this.next == this.layout.segments {
                return Poll::Ready(Ok(()));
            }
            let need = this.layout.sealed_len(this.next);
            if this.filled - this.unopened >= need {
                let at = this.unopened;
                let last = this.next + 1 == this.layout.segments;
                let len = this
                    .key
                    .open(
                        &aad(&this.fixed, this.next, last),
                        &mut this.buffer[at..at + need],
                    )
                    .map_err(|_| SealError::Segment(this.next).into_io())?;
                let start = at + NONCE_BYTES + this.skip.min(len);
                this.plain = start..at + NONCE_BYTES + len;
                this.skip = 0;
                this.unopened += need;
                this.next += 1;
                continue;
            }
            // Move what is left to the front, then read as much as fits.
            this.buffer.copy_within(this.unopened..this.filled, 0);
            this.filled -= this.unopened;
            this.unopened = 0;
            let room = (this.buffer.len() - this.filled).min(this.remaining as usize);
            let mut read = ReadBuf::new(&mut this.buffer[this.filled..this.filled + room]);
            ready!(Pin::new(&mut this.file).poll_read(cx, &mut read))?;
            let count = read.filled().len();
            if count == 0 {
                return Poll::Ready(Err(SealError::Truncated.into_io()));
            }
            this.filled += count;
            this.remaining -= count as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn vault() -> Vault {
        Vault::new([5; 32], &[])
    }

    /// Bytes that differ everywhere, so a misplaced byte shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn written(vault: &Vault, plain: &[u8], piece: usize) -> Vec<u8> {
        let mut writer = SealedWriter::create(Cursor::new(Vec::new()), vault).unwrap();
        for chunk in plain.chunks(piece.max(1)) {
            writer.write_all(chunk).unwrap();
            writer.flush().unwrap();
        }
        assert_eq!(writer.finish().unwrap(), plain.len() as u64);
        writer.file.into_inner()
    }

    #[test]
    fn what_is_sealed_opens_whole_at_every_length() {
        let vault = vault();
        for len in [
            0,
            1,
            SEGMENT_BYTES - 1,
            SEGMENT_BYTES,
            SEGMENT_BYTES + 1,
            3 * SEGMENT_BYTES + 17,
        ] {
            let plain = pattern(len);
            let sealed = seal_whole(&vault, &plain).unwrap();
            assert!(is_sealed(&sealed));
            let segments = len.div_ceil(SEGMENT_BYTES).max(1);
            assert_eq!(
                sealed.len(),
                HEADER_BYTES + len + segments * SEAL_OVERHEAD,
                "{len}"
            );
            assert_eq!(open_whole(&vault, sealed).unwrap(), plain, "{len}");
            // The writer, in pieces of any size, makes a file that opens the same.
            for piece in [1000, SEGMENT_BYTES, 64_000] {
                let file = written(&vault, &plain, piece);
                assert_eq!(file.len(), HEADER_BYTES + len + segments * SEAL_OVERHEAD);
                assert_eq!(open_whole(&vault, file).unwrap(), plain, "{len} by {piece}");
            }
        }
    }

    #[test]
    fn the_writer_rewrites_any_place_it_seeks_to() {
        let vault = vault();
        let mut plain = pattern(5 * SEGMENT_BYTES + 300);
        let mut writer = SealedWriter::create(Cursor::new(Vec::new()), &vault).unwrap();
        writer.write_all(&plain).unwrap();
        writer.flush().unwrap();
        // A WAV-like header rewrite, a patch in a middle segment across a boundary, the end.
        for (at, patch) in [
            (4usize, &b"size"[..]),
            (2 * SEGMENT_BYTES - 2, &b"across"[..]),
            (5 * SEGMENT_BYTES + 298, &b"end!"[..]),
        ] {
            writer.seek(SeekFrom::Start(at as u64)).unwrap();
            writer.write_all(patch).unwrap();
            let end = (at + patch.len()).max(plain.len());
            plain.resize(end, 0);
            plain[at..at + patch.len()].copy_from_slice(patch);
        }
        assert!(
            writer.seek(SeekFrom::End(1)).is_err(),
            "no holes past the end"
        );
        writer.finish().unwrap();
        assert_eq!(open_whole(&vault, writer.file.into_inner()).unwrap(), plain);
    }

    #[test]
    fn a_rewritten_segment_gets_a_new_nonce() {
        let vault = vault();
        let mut writer = SealedWriter::create(Cursor::new(Vec::new()), &vault).unwrap();
        writer.write_all(&[0u8; 100]).unwrap();
        writer.flush().unwrap();
        let before = writer.file.get_ref().clone();
        writer.seek(SeekFrom::Start(0)).unwrap();
        writer.write_all(&[0u8; 100]).unwrap();
        writer.flush().unwrap();
        let after = writer.file.get_ref().clone();
        assert_eq!(before.len(), after.len());
        assert_ne!(
            before[HEADER_BYTES..HEADER_BYTES + 12],
            after[HEADER_BYTES..HEADER_BYTES + 12],
            "the same plaintext sealed again is sealed under another nonce"
        );
    }

    #[test]
    fn altered_reordered_cut_or_extended_files_are_refused() {
        let vault = vault();
        let plain = pattern(3 * SEGMENT_BYTES + 100);
        let file = written(&vault, &plain, 64_000);
        let slot = SEGMENT_BYTES + SEAL_OVERHEAD;
        let refused = |file: Vec<u8>| open_whole(&vault, file).unwrap_err();

        let mut altered = file.clone();
        altered[HEADER_BYTES + slot + 500] ^= 1;
        assert!(matches!(refused(altered), SealError::Segment(1)));

        let mut swapped = file.clone();
        let (one, two) = (HEADER_BYTES + slot, HEADER_BYTES + 2 * slot);
        let segment_one = file[one..one + slot].to_vec();
        swapped.copy_within(two..two + slot, one);
        swapped[two..two + slot].copy_from_slice(&segment_one);
        assert!(matches!(refused(swapped), SealError::Segment(1)));

        // Cut at a segment boundary: the new last one was sealed as not last.
        let cut = file[..HEADER_BYTES + 3 * slot].to_vec();
        assert!(matches!(refused(cut), SealError::Segment(2)));
        // Cut inside the last segment, or down to the header.
        assert!(matches!(
            refused(file[..file.len() - 1].to_vec()),
            SealError::Segment(3)
        ));
        assert!(matches!(
            refused(file[..HEADER_BYTES].to_vec()),
            SealError::Truncated
        ));
        // A segment added after the last.
        let mut extended = file.clone();
        extended.extend_from_slice(&file[HEADER_BYTES..HEADER_BYTES + 40]);
        assert!(matches!(refused(extended), SealError::Segment(3)));
        // The fixed header is bound in: another segment size or version does not open.
        let mut version = file.clone();
        version[8] = 2;
        assert!(matches!(refused(version), SealError::Header(_)));
        // Another key does not unwrap the data key.
        let other = Vault::new([6; 32], &[]);
        assert!(matches!(
            open_whole(&other, file.clone()),
            Err(SealError::Key(VaultError::UnknownKey(_)))
        ));
        assert_eq!(open_whole(&vault, file).unwrap(), plain);
    }

    fn temporary(bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("sealed-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn a_crash_leaves_what_was_flushed_and_repair_seals_it() {
        let vault = vault();
        let mut writer = SealedWriter::create(Cursor::new(Vec::new()), &vault).unwrap();
        let plain = pattern(2 * SEGMENT_BYTES + 10);
        writer.write_all(&plain).unwrap();
        writer.flush().unwrap();
        let flushed = writer.file.get_ref().clone();
        // Filling up segment 2 and writing into segment 3 without a flush: the crash comes
        // before segment 3 reaches the file, so the last segment on disk was sealed as not last.
        writer.write_all(&pattern(SEGMENT_BYTES)).unwrap();
        let crashed = writer.file.get_ref().clone();
        assert_eq!(crashed.len(), HEADER_BYTES + 3 * (SEGMENT_BYTES + 28));
        assert!(open_whole(&vault, crashed.clone()).is_err());

        let (path, mut file) = temporary(&crashed);
        assert_eq!(repair(&mut file, &vault).unwrap(), Repair::Sealed);
        let mut expected = plain.clone();
        expected.extend_from_slice(&pattern(SEGMENT_BYTES)[..SEGMENT_BYTES - 10]);
        assert_eq!(
            open_whole(&vault, std::fs::read(&path).unwrap()).unwrap(),
            expected
        );
        assert_eq!(repair(&mut file, &vault).unwrap(), Repair::Intact);

        // A torn last segment is dropped.
        let mut torn = flushed.clone();
        torn.truncate(torn.len() - 5);
        let (torn_path, mut file) = temporary(&torn);
        assert_eq!(repair(&mut file, &vault).unwrap(), Repair::DroppedTorn);
        assert_eq!(
            open_whole(&vault, std::fs::read(&torn_path).unwrap()).unwrap(),
            plain[..2 * SEGMENT_BYTES]
        );
        // A file with its header only (a crash right after it was made) opens empty.
        let (empty_path, mut file) = temporary(&crashed[..HEADER_BYTES]);
        assert_eq!(repair(&mut file, &vault).unwrap(), Repair::Sealed);
        assert!(open_whole(&vault, std::fs::read(&empty_path).unwrap())
            .unwrap()
            .is_empty());
        for path in [path, torn_path, empty_path] {
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn rewrap_rewrites_the_key_slot_and_nothing_else() {
        let old = vault();
        let plain = pattern(SEGMENT_BYTES + 5);
        let sealed = seal_whole(&old, &plain).unwrap();
        let (path, mut file) = temporary(&sealed);
        let rotated = Vault::new([8; 32], &[[5; 32]]);
        assert_eq!(sealed_under(&mut file).unwrap(), Some(old.current_id()));
        assert_eq!(rewrap(&mut file, &rotated).unwrap(), Rewrap::Rewrapped);
        assert_eq!(rewrap(&mut file, &rotated).unwrap(), Rewrap::Current);
        assert_eq!(sealed_under(&mut file).unwrap(), Some(rotated.current_id()));
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after.len(), sealed.len());
        assert_eq!(after[..FIXED_BYTES], sealed[..FIXED_BYTES]);
        assert_eq!(after[HEADER_BYTES..], sealed[HEADER_BYTES..]);
        let only_new = Vault::new([8; 32], &[]);
        assert_eq!(open_whole(&only_new, after).unwrap(), plain);
        std::fs::remove_file(&path).unwrap();

        let (clear_path, mut file) = temporary(b"RIFF....WAVE");
        assert_eq!(rewrap(&mut file, &rotated).unwrap(), Rewrap::Clear);
        assert_eq!(sealed_under(&mut file).unwrap(), None);
        std::fs::remove_file(clear_path).unwrap();
    }

    #[tokio::test]
    async fn the_reader_streams_from_any_offset_and_refuses_a_bad_segment_when_it_reaches_it() {
        let vault = vault();
        let plain = pattern(6 * SEGMENT_BYTES + 123);
        let sealed = seal_whole(&vault, &plain).unwrap();
        let (path, _) = temporary(&sealed);
        for from in [
            0u64,
            1,
            SEGMENT_BYTES as u64,
            3 * SEGMENT_BYTES as u64 + 77,
            plain.len() as u64 - 1,
            plain.len() as u64,
            plain.len() as u64 + 10,
        ] {
            let file = tokio::fs::File::open(&path).await.unwrap();
            let (size, mut reader) = SealedReader::open(file, &vault, from).await.unwrap();
            assert_eq!(size, plain.len() as u64);
            let mut read = Vec::new();
            reader.read_to_end(&mut read).await.unwrap();
            let from = (from as usize).min(plain.len());
            assert_eq!(read, plain[from..], "from {from}");
        }
        // A middle segment altered: the reader hands out what came before, then fails.
        let mut altered = sealed.clone();
        altered[HEADER_BYTES + 4 * (SEGMENT_BYTES + SEAL_OVERHEAD) + 9] ^= 0x40;
        std::fs::write(&path, &altered).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let (_, mut reader) = SealedReader::open(file, &vault, 0).await.unwrap();
        let mut read = Vec::new();
        let error = reader.read_to_end(&mut read).await.unwrap_err();
        assert!(matches!(into_seal_error(error), SealError::Segment(4)));
        assert_eq!(read, plain[..4 * SEGMENT_BYTES]);
        // A cut file is refused at open, before anything is read.
        std::fs::write(&path, &sealed[..sealed.len() - SEGMENT_BYTES - 100]).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        assert!(SealedReader::open(file, &vault, 0).await.is_err());
        std::fs::remove_file(path).unwrap();
    }
}
