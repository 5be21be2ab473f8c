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

/// Ringback for an agent whose call is ringing at the far end: 440 + 480 Hz for 2 s, then
/// 4 s of silence (the North American pattern most callers know).
pub fn ringback() -> Vec<i16> {
    let count = (RATE * 2) as usize;
    let mut out: Vec<i16> = (0..count)
        .map(|n| {
            let t = n as f32 / RATE as f32;
            let edge = (n.min(count - n) as f32 / 80.0).min(1.0);
            let tau = 2.0 * std::f32::consts::PI;
            (((tau * 440.0 * t).sin() + (tau * 480.0 * t).sin()) * 3000.0 * edge) as i16
        })
        .collect();
    out.extend(silence(4000));
    out
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
/// Each prompt is rendered once however many callers ask at the same moment (the others wait
/// for that rendering), into a temporary file of its own; a failed rendering plays tones for
/// that caller and is never remembered, so the next caller tries again.
pub struct Speech {
    engine: Option<String>,
    dir: PathBuf,
    cache: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Samples>>>>,
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
        self.say_at(text, options, 100).await
    }

    /// `text` spoken at `speed` percent of the engine's normal rate.
    pub async fn say_at(&self, text: &str, options: usize, speed: u16) -> Samples {
        let Some(engine) = &self.engine else {
            return beeps(options).into();
        };
        let speed = speed.clamp(25, 400);
        let name = if speed == 100 {
            format!("{engine}\n{text}")
        } else {
            format!("{engine}\n{speed}\n{text}")
        };
        let key = hex(&Sha256::digest(name.as_bytes()));
        let cell = match self.cache.lock() {
            Ok(mut cache) => cache.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let path = self.dir.join(format!("{key}.wav"));
        let rendered = cell
            .get_or_try_init(|| async {
                self.load_or_render(engine, text, speed, &path)
                    .await
                    .map(Samples::from)
            })
            .await;
        match rendered {
            Ok(samples) => samples.clone(),
            Err(error) => {
                tracing::warn!(%error, "text-to-speech failed; playing tones instead");
                beeps(options).into()
            }
        }
    }

    async fn load_or_render(
        &self,
        engine: &str,
        text: &str,
        speed: u16,
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
        // A name of its own, so that no other rendering can write into it.
        let partial = path.with_extension(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let mut command = tokio::process::Command::new(engine);
        match engine {
            "espeak-ng" => {
                // Words per minute; 175 is espeak-ng's normal.
                let rate = 175 * u32::from(speed) / 100;
                command.arg("-s").arg(rate.to_string());
                command.arg("-w").arg(&partial).arg("--").arg(text)
            }
            _ => {
                if speed != 100 {
                    // flite stretches durations: above 1 is slower.
                    let stretch = 100.0 / f32::from(speed);
                    command
                        .arg("--setf")
                        .arg(format!("duration_stretch={stretch:.2}"));
                }
                command.arg("-t").arg(text).arg("-o").arg(&partial)
            }
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
        let read = tokio::fs::read(&partial).await.map_err(|e| e.to_string());
        let samples = read.and_then(|bytes| decode_wav(&bytes));
        match &samples {
            Ok(_) => tokio::fs::rename(&partial, path)
                .await
                .map_err(|e| e.to_string())?,
            Err(_) => {
                let _ = tokio::fs::remove_file(&partial).await;
            }
        }
        samples
    }
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A text-to-speech stand-in: counts its runs in `runs`, waits a little (so callers
    /// overlap), and writes `good.wav` to its output, or fails while `fail` exists.
    fn fake_engine(dir: &std::path::Path) -> PathBuf {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(dir.join("good.wav"), spec).unwrap();
        for n in 0..800 {
            writer.write_sample(((n % 20) as i16 - 10) * 900).unwrap();
        }
        writer.finalize().unwrap();
        let script = dir.join("fake-tts");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> {dir}/runs\nsleep 0.2\n[ -e {dir}/fail ] && exit 1\ncp {dir}/good.wav \"$4\"\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[tokio::test]
    async fn a_prompt_is_rendered_once_for_concurrent_callers_and_a_failure_is_not_kept() {
        let dir = std::env::temp_dir().join(format!("switchboard-tts-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let engine = fake_engine(&dir);
        let speech = Arc::new(Speech::new(engine.to_str().unwrap(), dir.join("prompts")));
        let beeped: Samples = beeps(2).into();
        // Eight first callers at once: one rendering, the same prompt for all, no tones.
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let speech = speech.clone();
                tokio::spawn(async move { speech.say("For Sales, press 1.", 2).await })
            })
            .collect();
        for caller in callers {
            let samples = caller.await.unwrap();
            assert_eq!(samples.len(), 800);
            assert_ne!(samples, beeped);
        }
        let runs = || {
            std::fs::read_to_string(dir.join("runs"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        assert_eq!(runs(), 1);
        // No temporary file is left behind.
        let parts = std::fs::read_dir(dir.join("prompts"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().to_string_lossy().ends_with(".part"))
            .count();
        assert_eq!(parts, 0);
        // A failing engine: this caller hears tones, and the next one gets a real prompt.
        std::fs::write(dir.join("fail"), "").unwrap();
        assert_eq!(
            speech.say("You are number 2 in the queue.", 1).await,
            beeps(1).into()
        );
        std::fs::remove_file(dir.join("fail")).unwrap();
        assert_eq!(
            speech.say("You are number 2 in the queue.", 1).await.len(),
            800
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
