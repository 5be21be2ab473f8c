//! Checks on uploaded audio: an .mp3 notification tone (NTF-3) must really be MPEG audio.

/// Why an upload is not an MP3 we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    #[error("the file is not an MP3 (no MPEG Layer III frames found)")]
    NotMp3,
    #[error("the file is larger than {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
}

const BITRATES_V1: [u32; 15] = [
    0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];
const BITRATES_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// The length in bytes of the MPEG Layer III frame whose header starts `bytes`, if it is one.
fn frame_length(bytes: &[u8]) -> Option<usize> {
    let [b0, b1, b2, ..] = *bytes else {
        return None;
    };
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b1 >> 3) & 3; // 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    let layer = (b1 >> 1) & 3; // 1: Layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let bitrate_index = usize::from(b2 >> 4);
    let rate_index = usize::from((b2 >> 2) & 3);
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let padding = u32::from((b2 >> 1) & 1);
    let (bitrate, rate, factor) = match version {
        3 => (
            BITRATES_V1[bitrate_index],
            [44_100, 48_000, 32_000][rate_index],
            144,
        ),
        2 => (
            BITRATES_V2[bitrate_index],
            [22_050, 24_000, 16_000][rate_index],
            72,
        ),
        _ => (
            BITRATES_V2[bitrate_index],
            [11_025, 12_000, 8_000][rate_index],
            72,
        ),
    };
    Some((factor * bitrate * 1000 / rate + padding) as usize)
}

/// Accepts an MP3: an optional ID3v2 tag, then at least two consecutive Layer III frames.
pub fn check_mp3(bytes: &[u8], max_bytes: usize) -> Result<(), AudioError> {
    if bytes.len() > max_bytes {
        return Err(AudioError::TooLarge { max_bytes });
    }
    let mut offset = 0;
    if bytes.starts_with(b"ID3") && bytes.len() >= 10 {
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7F));
        offset = 10 + size;
    }
    let mut frames = 0;
    while frames < 3 {
        match bytes.get(offset..).and_then(frame_length) {
            Some(length) if length > 4 => {
                frames += 1;
                offset += length;
                if offset >= bytes.len() {
                    break;
                }
            }
            _ => break,
        }
    }
    if frames >= 2 {
        Ok(())
    } else {
        Err(AudioError::NotMp3)
    }
}

/// Builds silent-sounding MP3 frames (MPEG 1 Layer III, 128 kbit/s, 44.1 kHz): for tests and
/// examples of what `check_mp3` accepts.
pub fn sample_mp3(frames: usize) -> Vec<u8> {
    let header = [0xFF, 0xFB, 0x90, 0x64];
    let length = frame_length(&header).unwrap_or(417);
    let mut bytes = Vec::with_capacity(frames * length);
    for _ in 0..frames {
        bytes.extend_from_slice(&header);
        bytes.resize(bytes.len() + length - header.len(), 0);
    }
    bytes
}
