//! Audio for calls: 8 kHz 16-bit mono samples from uploaded WAV files, text-to-speech (an
//! engine run as a separate process, rendered prompts cached on disk), and built-in tones.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Samples at 8 kHz.
pub type Samples = Arc<[i16]>;

pub const RATE: u32 = 8000;

/// Decodes a WAV file (PCM, any rate and channel count) to 8 kHz mono.
pub fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a WAV file: {e}"))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err("the WAV file must hold 16-bit PCM".into());
    }
    if spec.channels == 0 || spec.sample_rate < 8000 || spec.sample_rate > 48000 {
        return Err("the WAV file must be 8 to 48 kHz".into());
    }
    let channels = usize::from(spec.channels);
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the WAV file is damaged: {e}"))?;
    let mono: Vec<i16> = samples
        .chunks(channels)
        .map(|frame| (frame.iter().map(|s| i32::from(*s)).sum::<i32>() / channels as i32) as i16)
        .collect();
    Ok(resample(&mono, spec.sample_rate))
}

/// Resamples to 8 kHz by averaging (rates are whole multiples in practice: 16, 22.05, 44.1, 48).
fn resample(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == RATE {
        return samples.to_vec();
    }
    let step = f64::from(rate) / f64::from(RATE);
    let count = (samples.len() as f64 / step) as usize;
    (0..count)
        .map(|i| {
            let start = (i as f64 * step) as usize;
            let end = (((i + 1) as f64 * step) as usize).clamp(start + 1, samples.len());
            let window = &samples[start..end];
            (window.iter().map(|s| i32::from(*s)).sum::<i32>() / window.len() as i32) as i16
        })
        .collect()
}

/// A tone pattern: (frequency Hz, milliseconds) steps; frequency 0 is silence.
pub fn tones(steps: &[(f32, u32)]) -> Vec<i16> {
    let mut out = Vec::new();
    for (frequency, ms) in steps {
        let count = (RATE * ms / 1000) as usize;
        for n in 0..count {
            let value = if *frequency == 0.0 {
                0.0
            } else {
                let t = n as f32 / RATE as f32;
                // A short fade in and out avoids clicks.
                let edge = (n.min(count - n) as f32 / 80.0).min(1.0);
                (2.0 * std::f32::consts::PI * frequency * t).sin() * 6000.0 * edge
            };
            out.push(value as i16);
        }
    }
    out
}

pub fn silence(ms: u32) -> Vec<i16> {
    vec![0; (RATE * ms / 1000) as usize]
}

/// The built-in hold music: a slow four-note pattern and a pause.
pub fn hold_music() -> Vec<i16> {
    tones(&[
        (523.25, 300),
        (0.0, 100),
        (659.25, 300),
        (0.0, 100),
        (783.99, 300),
        (0.0, 100),
        (659.25, 300),
        (0.0, 1500),
    ])
}

/// What the caller hears instead of speech when no text-to-speech engine is installed: one
/// short beep per menu option, so the menu can still be used.
fn beeps(count: usize) -> Vec<i16> {
    let mut steps = Vec::new();
    for _ in 0..count.clamp(1, 9) {
        steps.push((880.0, 150));
        steps.push((0.0, 150));
    }
    tones(&steps)
}

/// Renders prompts with a text-to-speech engine, keeping each rendering in memory and on disk.
pub struct Speech {
    engine: Option<String>,
    dir: PathBuf,
    cache: Mutex<HashMap<String, Samples>>,
}

impl Speech {
    /// Checks the configured engine is installed; without one, prompts become tones.
    pub fn new(configured: &str, dir: PathBuf) -> Self {
        let engine = match configured {
            "none" => None,
            name if installed(name) => Some(name.to_owned()),
            name => {
                tracing::warn!(
                    engine = name,
                    "the text-to-speech engine is not installed; voice prompts will be tones"
                );
                None
            }
        };
        Speech {
            engine,
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn engine(&self) -> Option<&str> {
        self.engine.as_deref()
    }

    /// The prompt for `text`; `options` is how many beeps stand in for it without an engine.
    pub async fn say(&self, text: &str, options: usize) -> Samples {
        let Some(engine) = &self.engine else {
            return beeps(options).into();
        };
        let key = hex(&Sha256::digest(format!("{engine}\n{text}").as_bytes()));
        if let Some(found) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return found;
        }
        let path = self.dir.join(format!("{key}.wav"));
        let samples = match self.load_or_render(engine, text, &path).await {
            Ok(samples) => samples,
            Err(error) => {
                tracing::warn!(%error, "text-to-speech failed; playing tones instead");
                beeps(options)
            }
        };
        let samples: Samples = samples.into();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, samples.clone());
        }
        samples
    }

    async fn load_or_render(
        &self,
        engine: &str,
        text: &str,
        path: &std::path::Path,
    ) -> Result<Vec<i16>, String> {
        if let Ok(bytes) = tokio::fs::read(path).await {
            if let Ok(samples) = decode_wav(&bytes) {
                return Ok(samples);
            }
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| e.to_string())?;
        let partial = path.with_extension("part");
        let mut command = tokio::process::Command::new(engine);
        match engine {
            "espeak-ng" => command.arg("-w").arg(&partial).arg("--").arg(text),
            _ => command.arg("-t").arg(text).arg("-o").arg(&partial),
        };
        let status = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("{engine} exited with {status}"));
        }
        let bytes = tokio::fs::read(&partial).await.map_err(|e| e.to_string())?;
        let samples = decode_wav(&bytes)?;
        tokio::fs::rename(&partial, path)
            .await
            .map_err(|e| e.to_string())?;
        Ok(samples)
    }
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
