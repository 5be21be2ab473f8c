//! What callers hear: menu prompts (an uploaded recording for the menu and language, else
//! text-to-speech of the choices), position announcements, and hold music (uploaded for the
//! queue or the center, else the built-in pattern), and closed queues' after-hours messages
//! (uploaded per queue or for the IVR and per language, else the rule's text spoken); and what agents hear: the whisper (spoken,
//! or the queue's uploaded recording), the countdown, and ringback on their own calls.

use super::audio::{self, Samples, Speech};
use crate::blobs::BlobStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_call::Sound;
use switchboard_core::{Language, QueueId};
use switchboard_store::Store;

/// The key of uploaded audio: `menu:<queue or main>[:<language>]`, `hold:<queue or default>`.
pub fn menu_key(node: Option<QueueId>, language: Option<&Language>) -> String {
    let node = node.map_or_else(|| "main".to_owned(), |n| n.to_string());
    match language {
        Some(language) => format!("menu:{node}:{}", language.as_str()),
        None => format!("menu:{node}"),
    }
}

/// The key of a queue's uploaded whisper recording.
pub fn whisper_key(queue: QueueId) -> String {
    format!("whisper:{queue}")
}

/// The key of an uploaded after-hours message: `after-hours:<queue or main>[:<language>]`
/// (`main` is the IVR's, for every queue without its own).
pub fn after_hours_key(queue: Option<QueueId>, language: Option<&Language>) -> String {
    let node = queue.map_or_else(|| "main".to_owned(), |q| q.to_string());
    match language {
        Some(language) => format!("after-hours:{node}:{}", language.as_str()),
        None => format!("after-hours:{node}"),
    }
}

pub fn hold_key(queue: Option<QueueId>) -> String {
    format!(
        "hold:{}",
        queue.map_or_else(|| "default".to_owned(), |q| q.to_string())
    )
}

pub struct Prompts {
    pub speech: Speech,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    /// Decoded uploads by blob id.
    uploads: Mutex<HashMap<String, Samples>>,
    /// Which blob (if any) each key names, as last read from the store.
    keys: Mutex<HashMap<String, Option<String>>>,
    hold: Samples,
    ringback: Samples,
}

impl Prompts {
    pub fn new(speech: Speech, store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> Self {
        Prompts {
            speech,
            store,
            blobs,
            uploads: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            hold: audio::hold_music().into(),
            ringback: audio::ringback().into(),
        }
    }

    /// Uploaded audio under `key`, decoded once.
    async fn upload(&self, key: &str) -> Option<Samples> {
        let known = self.keys.lock().ok()?.get(key).cloned();
        let blob = match known {
            Some(blob) => blob?,
            None => {
                let blob = self.store.voice_audio(key).await.ok()?;
                self.keys.lock().ok()?.insert(key.to_owned(), blob.clone());
                blob?
            }
        };
        if let Some(found) = self.uploads.lock().ok()?.get(&blob).cloned() {
            return Some(found);
        }
        let bytes = match self.blobs.get(&blob).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, blob, "uploaded audio cannot be read; callers hear the built-in sound");
                return None;
            }
        };
        let samples: Samples = audio::decode_wav(&bytes).ok()?.into();
        self.uploads.lock().ok()?.insert(blob, samples.clone());
        Some(samples)
    }

    pub async fn render(&self, sound: Sound) -> Samples {
        match sound {
            Sound::Menu {
                node,
                language,
                choices,
            } => {
                if let Some(language) = &language {
                    if let Some(found) = self.upload(&menu_key(node, Some(language))).await {
                        return found;
                    }
                }
                if let Some(found) = self.upload(&menu_key(node, None)).await {
                    return found;
                }
                let text = if choices.is_empty() {
                    "Please hold.".to_owned()
                } else {
                    choices
                        .iter()
                        .enumerate()
                        .map(|(i, name)| format!("For {name}, press {}.", i + 1))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                self.speech.say(&text, choices.len()).await
            }
            Sound::Invalid => {
                self.speech
                    .say("Sorry, that is not one of the choices.", 1)
                    .await
            }
            Sound::Position(position) => {
                self.speech
                    .say(&format!("You are number {position} in the queue."), 1)
                    .await
            }
            Sound::Hold(queue) => {
                if let Some(found) = self.upload(&hold_key(queue)).await {
                    return found;
                }
                if queue.is_some() {
                    if let Some(found) = self.upload(&hold_key(None)).await {
                        return found;
                    }
                }
                self.hold.clone()
            }
            Sound::Silence(ms) => audio::silence(ms).into(),
            Sound::Speak { text, speed } => self.speech.say_at(&text, 1, speed).await,
            Sound::WhisperRecording {
                queue,
                fallback,
                speed,
            } => match self.upload(&whisper_key(queue)).await {
                Some(found) => found,
                None => self.speech.say_at(&fallback, 1, speed).await,
            },
            Sound::Ringback => self.ringback.clone(),
            Sound::AfterHours {
                queue,
                language,
                text,
            } => {
                // The queue's recording in the caller's language, then for any language, then
                // the IVR's the same way; else the rule's text spoken.
                for node in [Some(queue), None] {
                    if let Some(language) = &language {
                        if let Some(found) =
                            self.upload(&after_hours_key(node, Some(language))).await
                        {
                            return found;
                        }
                    }
                    if let Some(found) = self.upload(&after_hours_key(node, None)).await {
                        return found;
                    }
                }
                self.speech.say(&text, 1).await
            }
            // After a voicemail greeting: half a second at 1 kHz.
            Sound::Beep => audio::tones(&[(1000.0, 500)]).into(),
        }
    }

    /// Forgets uploads and which keys name them (after an upload is replaced or removed).
    pub fn forget_uploads(&self) {
        if let Ok(mut uploads) = self.uploads.lock() {
            uploads.clear();
        }
        if let Ok(mut keys) = self.keys.lock() {
            keys.clear();
        }
    }
}
