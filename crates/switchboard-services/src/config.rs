//! Configuration events: what an administrator changed, for every service that holds a copy
//! of the configuration.
//!
//! A handler that edits the center's configuration calls `ConfigEvents::changed` once, with
//! the area it changed, after the change is stored. That
//! - counts a new generation, readable at once with `generation()`: a service that holds a
//!   copy can check synchronously whether it is stale (voice does, before each new call);
//! - rebuilds routing from the store when the area affects routing (queues, users, roles,
//!   capacity profiles, teams) and returns only after that, so the next request sees the
//!   change exactly as stored;
//! - tells every subscriber the area (unbounded queues, so nothing is dropped for a live
//!   subscriber; subscribers that have gone are forgotten).

use crate::contacts::ContactService;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use switchboard_store::StoreError;
use tokio::sync::mpsc;

/// A part of the center's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigArea {
    /// The center's name, time zone and languages.
    Settings,
    Roles,
    Teams,
    /// Users: their profile, role, teams, queues, languages, capacity profile, being disabled.
    Users,
    /// The queue menu trees.
    Queues,
    CapacityProfiles,
    /// Business-hours schedules.
    Hours,
    CustomStatuses,
    ApiKeys,
    /// The identity secret and the CRM connector.
    Integration,
    /// Notification tones uploaded for the center.
    Tones,
    Trunks,
    /// Dialled numbers and where their calls start.
    Numbers,
    /// Agents' SIP phone credentials.
    SipPhones,
    /// Uploaded menu prompts and hold music.
    VoiceAudio,
    /// What agents hear before a caller is connected (the whisper and countdown).
    Whisper,
    /// Emergency calls: the emergency numbers and their direct routes, sites and agents' own
    /// addresses (the callback pool is a setting, trunks' emergency flag a trunk change).
    Emergency,
}

impl ConfigArea {
    /// Whether routing must be rebuilt from the store after a change here: the queue trees,
    /// who takes contacts (users, their roles and capacity profiles) and agents' teams (which
    /// decide who may watch them).
    pub const fn affects_routing(self) -> bool {
        matches!(
            self,
            ConfigArea::Queues
                | ConfigArea::Users
                | ConfigArea::Roles
                | ConfigArea::CapacityProfiles
                | ConfigArea::Teams
        )
    }
}

/// The handle to configuration events. Cloning gives another handle to the same events.
#[derive(Clone)]
pub struct ConfigEvents {
    inner: Arc<Inner>,
}

struct Inner {
    /// Counts changes since start; only ever goes up.
    generation: AtomicU64,
    /// One sender per subscriber; pruned when a send fails.
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ConfigArea>>>,
    /// Rebuilt inline after changes that affect routing.
    contacts: ContactService,
}

impl ConfigEvents {
    pub fn new(contacts: ContactService) -> Self {
        Self {
            inner: Arc::new(Inner {
                generation: AtomicU64::new(0),
                subscribers: Mutex::new(Vec::new()),
                contacts,
            }),
        }
    }

    /// How many changes there have been; a copy taken at one generation is stale once this
    /// has moved on.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// A new subscriber: it gets the area of every change from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ConfigArea> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.with_subscribers(|subscribers| subscribers.push(sender));
        receiver
    }

    /// Announces a stored change of `area`: a new generation, routing rebuilt when the area
    /// affects it (returning only after that), and every subscriber told. Subscribers are told
    /// even when the rebuild fails, because the store has changed; the rebuild's error is the
    /// answer.
    pub async fn changed(&self, area: ConfigArea) -> Result<(), StoreError> {
        self.changed_all(vec![area]).await
    }

    /// Announces several stored changes at once (seeding a center): a generation for each
    /// area, routing rebuilt once if any of them affects it, every subscriber told every area.
    pub async fn changed_all(&self, areas: Vec<ConfigArea>) -> Result<(), StoreError> {
        // Release: whoever sees the new generation also sees the stored change before it.
        self.inner
            .generation
            .fetch_add(areas.len() as u64, Ordering::Release);
        let rebuilt = if areas.iter().any(|area| area.affects_routing()) {
            self.inner.contacts.rebuild().await
        } else {
            Ok(())
        };
        self.with_subscribers(|subscribers| {
            subscribers.retain(|subscriber| areas.iter().all(|area| subscriber.send(*area).is_ok()))
        });
        rebuilt
    }

    fn with_subscribers<T>(
        &self,
        f: impl FnOnce(&mut Vec<mpsc::UnboundedSender<ConfigArea>>) -> T,
    ) -> T {
        // The lock guards a plain list; a panic while holding it cannot leave it half-changed.
        let mut subscribers = self
            .inner
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut subscribers)
    }
}
