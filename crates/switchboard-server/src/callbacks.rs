//! Scheduled callbacks in the shell (issue 12): the slots a voice queue offers, booking one,
//! and the scheduler that makes each due callback a voice contact in its queue.
//!
//! The scheduler wakes every `TICK` (and at once when a callback is booked), claims the due
//! callbacks in slot order with a lease, and for each opens a contact with the callback's
//! priority and arrival time (an in-queue request keeps the caller's original place), then
//! marks the callback queued. A claim that is not followed through (the server stopped) lapses
//! and the callback is claimed again; a step already taken is refused by the store, so nothing
//! is queued or dialled twice. At start, callbacks a previous run left queued go back to
//! scheduled, due at once, and an attempt left under way is ended as failed and retried by its
//! policy: the previous run may have dialled, and whether the consumer answered is unknown.

use crate::config::WallClock;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchboard_core::callback::{
    offered_slots, AfterAttempt, AttemptOutcome, Callback, CallbackError, CallbackStatus,
};
use switchboard_core::hours::HoursSet;
use switchboard_core::{CallbackId, Channel, ContactId, QueueId, QueueKind, UserId};
use switchboard_services::contacts::{ContactService, NewContact};
use switchboard_store::{Store, StoreError};
use tokio::sync::Notify;
use uuid::Uuid;

/// How often the scheduler looks for due callbacks (besides when one is booked).
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a claim holds a callback before another scheduler may take it.
pub const LEASE: Duration = Duration::seconds(30);
/// How many callbacks one claim takes.
pub const BATCH: u32 = 500;

/// Why a callback could not be booked.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("the queue is not a voice leaf queue")]
    NotVoiceLeaf,
    #[error("queue not found")]
    UnknownQueue,
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The next open slots of a voice leaf queue at `now` (its deciding schedule's, DST-correct in
/// the schedule's time zone).
pub async fn slots(
    store: &dyn Store,
    queue: QueueId,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, BookError> {
    let node = store
        .list_queues()
        .await?
        .into_iter()
        .find(|n| n.id == queue)
        .ok_or(BookError::UnknownQueue)?;
    if node.channel != Channel::Voice || node.kind != QueueKind::Leaf {
        return Err(BookError::NotVoiceLeaf);
    }
    let records = store.list_hours().await?;
    let set = HoursSet::new(records.into_iter().map(|r| (r.scope, r.schedule)).collect());
    Ok(offered_slots(
        set.schedule_for(queue, Channel::Voice, None),
        now,
    )?)
}

/// The live side of callbacks: which contact is which callback's, and the scheduler's wake-up.
#[derive(Default)]
pub struct Callbacks {
    by_contact: Mutex<HashMap<ContactId, CallbackId>>,
    wake: Notify,
}

impl Callbacks {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Books a callback for one of its queue's open slots.
    pub async fn book(
        &self,
        store: &dyn Store,
        request: switchboard_core::callback::CallbackRequest,
        now: DateTime<Utc>,
    ) -> Result<Callback, BookError> {
        let open = slots(store, request.queue, now).await?;
        let id = CallbackId::from_uuid(Uuid::now_v7());
        let callback = Callback::schedule(id, request, &open, now)?;
        store.insert_callback(&callback).await?;
        self.wake.notify_one();
        Ok(callback)
    }

    /// Stores a callback made elsewhere (a caller in an open queue asking for one) and wakes
    /// the scheduler.
    pub async fn add(&self, store: &dyn Store, callback: &Callback) -> Result<(), StoreError> {
        store.insert_callback(callback).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The callback whose contact this is, if any.
    pub fn of_contact(&self, contact: ContactId) -> Option<CallbackId> {
        self.by_contact.lock().ok()?.get(&contact).copied()
    }

    /// Puts what a previous run left in the middle back on its way (see the module's text).
    pub async fn recover(&self, store: &dyn Store, now: DateTime<Utc>) -> Result<u32, StoreError> {
        let mut count = 0;
        for mut callback in store
            .list_callbacks(Some(CallbackStatus::Queued), u32::MAX >> 1)
            .await?
        {
            if callback.unqueued(now).is_ok() {
                store
                    .save_callback(&callback, CallbackStatus::Queued)
                    .await?;
                count += 1;
            }
        }
        for mut callback in store
            .list_callbacks(Some(CallbackStatus::Dialing), u32::MAX >> 1)
            .await?
        {
            if callback.attempt_ended(AttemptOutcome::Failed, now).is_ok() {
                store
                    .save_callback(&callback, CallbackStatus::Dialing)
                    .await?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Makes every callback due at `now` a contact in its queue; says how many.
    pub async fn run_due(
        &self,
        store: &dyn Store,
        contacts: &ContactService,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut queued = 0;
        loop {
            match self.run_batch(store, contacts, now).await? {
                None => return Ok(queued),
                Some(done) => queued += done,
            }
        }
    }

    /// Claims one batch of callbacks due at `now` and makes each a contact in its queue; says
    /// how many were queued, `None` when none was due.
    pub async fn run_batch(
        &self,
        store: &dyn Store,
        contacts: &ContactService,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let claimed = store.claim_due_callbacks(now, now + LEASE, BATCH).await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let mut queued = 0;
        for mut callback in claimed {
            let contact = ContactId::from_uuid(Uuid::now_v7());
            let arrival = callback.arrival();
            let request = NewContact {
                queue: callback.queue,
                priority: Some(callback.priority),
                language: None,
                customer: Some(callback.number.as_str().to_owned()),
                chat: None,
            };
            // Known before routing can hand the contact to an agent.
            if let Ok(mut map) = self.by_contact.lock() {
                map.insert(contact, callback.id);
            }
            if callback.queued(contact, now).is_err() {
                continue;
            }
            match store
                .save_callback(&callback, CallbackStatus::Scheduled)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => continue,
                Err(other) => return Err(other),
            }
            if let Err(error) = contacts.enqueue_arrived(request, contact, arrival).await {
                // The queue went away or refused it: the callback waits for its next turn.
                tracing::warn!(callback = %callback.id, %error, "a due callback could not enter its queue");
                if callback.unqueued(now + LEASE).is_ok() {
                    store
                        .save_callback(&callback, CallbackStatus::Queued)
                        .await?;
                }
                continue;
            }
            queued += 1;
        }
        Ok(Some(queued))
    }

    /// Routing gave a callback's contact to `agent`: the attempt goes on the row before
    /// anyone is dialled. `None` when the contact is no callback's, or it moved on already.
    pub async fn dialing(
        &self,
        store: &dyn Store,
        contact: ContactId,
        agent: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Callback>, StoreError> {
        let Some(id) = self.of_contact(contact) else {
            return Ok(None);
        };
        let mut callback = store.get_callback(id).await?;
        if callback.contact != Some(contact) || callback.dialing(agent, now).is_err() {
            return Ok(None);
        }
        match store.save_callback(&callback, CallbackStatus::Queued).await {
            Ok(()) => Ok(Some(callback)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The attempt under way for this contact ended so: recorded, and the callback is done,
    /// retried by its policy, or failed.
    pub async fn attempt_ended(
        &self,
        store: &dyn Store,
        contact: ContactId,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<AfterAttempt>, StoreError> {
        let Some(id) = self.of_contact(contact) else {
            return Ok(None);
        };
        let mut callback = store.get_callback(id).await?;
        let Ok(next) = callback.attempt_ended(outcome, now) else {
            return Ok(None);
        };
        store
            .save_callback(&callback, CallbackStatus::Dialing)
            .await?;
        if let Ok(mut map) = self.by_contact.lock() {
            map.remove(&contact);
        }
        self.wake.notify_one();
        Ok(Some(next))
    }

    /// The scheduler: runs due callbacks every tick and whenever one is booked, on `clock`.
    pub fn spawn(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        contacts: ContactService,
        clock: WallClock,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match self.recover(store.as_ref(), clock.now()).await {
                Ok(0) => {}
                Ok(count) => tracing::warn!(count, "callbacks a previous run left under way"),
                Err(error) => tracing::error!(%error, "could not recover callbacks"),
            }
            loop {
                if let Err(error) = self.run_due(store.as_ref(), &contacts, clock.now()).await {
                    tracing::error!(%error, "the callback scheduler failed a round");
                }
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = self.wake.notified() => {}
                }
            }
        })
    }
}

/// Routing's change to a voice contact: a callback's contact given to an agent starts its
/// attempt (on the row first), then the engine rings the agent and dials the consumer. A
/// refused dial (no phone online, no outbound trunk) ends the attempt as failed and the
/// contact with it.
pub fn contact_changed(
    app: &crate::app::AppState,
    change: &switchboard_services::bus::ContactChange,
) {
    use switchboard_services::bus::ContactChange;
    let ContactChange::Assigned(contact) = change else {
        return;
    };
    let (Some(agent), id) = (contact.agent, contact.id) else {
        return;
    };
    if app.callbacks.of_contact(id).is_none() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        let store = app.services.store.clone();
        let now = app.config.wall_clock.now();
        let callback = match app.callbacks.dialing(store.as_ref(), id, agent, now).await {
            Ok(Some(callback)) => callback,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "could not record a callback's attempt; not dialling");
                return;
            }
        };
        let dialled = app
            .voice
            .callback_dial(
                id,
                agent,
                callback.number.as_str().to_owned(),
                callback.queue,
            )
            .await;
        if let Err(error) = dialled {
            tracing::warn!(callback = %callback.id, %error, "a callback could not be dialled");
            let now = app.config.wall_clock.now();
            if let Err(error) = app
                .callbacks
                .attempt_ended(store.as_ref(), id, AttemptOutcome::Failed, now)
                .await
            {
                tracing::error!(%error, "could not record a callback's failed attempt");
            }
            let _ = app
                .services
                .contacts
                .end(id, "callback_failed".into())
                .await;
        }
    });
}

/// A call's record from the engine: the end of a callback's call is its attempt's end,
/// answered when the consumer picked up, else not answered.
pub fn call_ended(app: &crate::app::AppState, record: &switchboard_core::voice::CallRecord) {
    let (Some(_), Some(contact)) = (record.ended_at, record.contact) else {
        return;
    };
    if app.callbacks.of_contact(contact).is_none() {
        return;
    }
    let outcome = if record.answered_at.is_some() {
        AttemptOutcome::Answered
    } else {
        AttemptOutcome::NoAnswer
    };
    let app = app.clone();
    tokio::spawn(async move {
        let now = app.config.wall_clock.now();
        let store = app.services.store.clone();
        if let Err(error) = app
            .callbacks
            .attempt_ended(store.as_ref(), contact, outcome, now)
            .await
        {
            tracing::error!(%error, "could not record a callback's attempt");
        }
    });
}

/// A caller waiting in `queue` pressed `*`: their callback is stored, due at once, keeping
/// the place of their contact (its arrival time), which ends once they are hung up. A caller
/// number that is not E.164 cannot be called back; the call still ends as the caller heard.
pub fn asked(app: &crate::app::AppState, contact: ContactId, queue: QueueId, number: String) {
    let app = app.clone();
    tokio::spawn(async move {
        let now = app.config.wall_clock.now();
        // The contact's own arrival time: the clock routing orders the queue by.
        let enqueued_at = app
            .services
            .contacts
            .open_contact(contact)
            .await
            .map_or(Utc::now(), |c| c.created_at);
        let priority = app
            .services
            .contacts
            .open_contact(contact)
            .await
            .map_or(0, |c| c.priority);
        let id = CallbackId::from_uuid(Uuid::now_v7());
        let number = if number.starts_with('+') {
            number
        } else {
            format!("+{number}")
        };
        let callback = match Callback::from_queue(
            id,
            queue,
            &number,
            priority,
            enqueued_at,
            switchboard_core::callback::RetryPolicy::default(),
            now,
        ) {
            Ok(callback) => callback,
            Err(error) => {
                tracing::warn!(%error, "a waiting caller's callback cannot be stored");
                return;
            }
        };
        if let Err(error) = app
            .callbacks
            .add(app.services.store.as_ref(), &callback)
            .await
        {
            tracing::error!(%error, "a waiting caller's callback was not stored");
        }
    });
}
