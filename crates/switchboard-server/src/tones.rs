//! Notification tones (NTF-3): built-in tones made here as WAV, and uploaded .mp3 tones.

use std::io::Cursor;
use std::sync::OnceLock;

pub const DEFAULT_NEW_CHAT: &str = "chime";
pub const DEFAULT_NEW_MESSAGE: &str = "pop";
pub const DEFAULT_NEW_CALL: &str = "ring";
/// A ringing call's tone repeats every this many seconds unless the agent chose otherwise.
pub const DEFAULT_CALL_REPEAT: u32 = 4;
/// The largest tone upload.
pub const MAX_TONE_BYTES: usize = 1024 * 1024;

/// Built-in tones: (name, [(frequency Hz, milliseconds)]), silence where the frequency is 0.
const BUILT_IN: [(&str, &[(f32, u32)]); 4] = [
    ("chime", &[(880.0, 140), (0.0, 40), (1320.0, 220)]),
    ("bell", &[(660.0, 400)]),
    ("pop", &[(1200.0, 60)]),
    // A telephone's double ring.
    ("ring", &[(480.0, 400), (0.0, 200), (480.0, 400)]),
];

pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(name, _)| *name)
}

/// A built-in tone as a 16-bit mono WAV file at 16 kHz, with short fades so it does not click.
pub fn built_in(name: &str) -> Option<&'static [u8]> {
    static RENDERED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    let rendered = RENDERED.get_or_init(|| {
        BUILT_IN
            .iter()
            .map(|(name, notes)| (*name, render(notes)))
            .collect()
    });
    rendered
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| bytes.as_slice())
}

fn render(notes: &[(f32, u32)]) -> Vec<u8> {
    const RATE: u32 = 16_000;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::new());
    if let Ok(mut writer) = hound::WavWriter::new(&mut cursor, spec) {
        for &(frequency, millis) in notes {
            let count = RATE * millis / 1000;
            for i in 0..count {
                let fade = (i.min(count - i) as f32 / (RATE as f32 * 0.005)).min(1.0);
                let t = i as f32 / RATE as f32;
                let sample = (t * frequency * std::f32::consts::TAU).sin() * 0.4 * fade;
                let _ = writer.write_sample((sample * f32::from(i16::MAX)) as i16);
            }
        }
        let _ = writer.finalize();
    }
    cursor.into_inner()
}
