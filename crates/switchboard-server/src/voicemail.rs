//! Voicemail delivery (AHD-7). The call engine records a caller at a closed queue and says so
//! (`Output::Voicemail`); here the message becomes a row and reaches someone:
//! - a queue some agent is assigned to: a contact in that queue, routed like any other (it
//!   takes a call's capacity). Its agent's adapter is told over the agent protocol
//!   (`voicemail_offered`, and `voicemail_gone` when it leaves them) and plays it from
//!   `GET /api/v1/voicemails/{id}/audio`; Done ends the contact, and the call then gets its CRM
//!   ticket with the audio attached, as an answered call does;
//! - a queue nobody is assigned to: straight to the CRM as the call's ticket, with the audio
//!   attached by the recording's upload (`uploads.rs`), no contact.
//!
//! A voicemail's contact is a voice contact, so the carriers tell it apart from a call by its
//! row: `Voicemails` holds the ids of every contact that carries one (loaded at start, added
//! before the contact is queued), and `app.rs`'s carrier match sends those here.

use crate::app::AppState;
use crate::chat::protocol::ServerEvent;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use switchboard_call::VoicemailLeft;
use switchboard_core::{ContactId, UserId};
use switchboard_services::bus::ContactChange;
use switchboard_services::contacts::NewContact;
use switchboard_store::{Store, StoreResult, Voicemail};
use uuid::Uuid;

/// The contacts that carry a voicemail.
#[derive(Default)]
pub struct Voicemails {
    contacts: Mutex<HashSet<ContactId>>,
}

impl Voicemails {
    pub async fn load(store: &dyn Store) -> StoreResult<Self> {
        Ok(Voicemails {
            contacts: Mutex::new(store.voicemail_contacts().await?.into_iter().collect()),
        })
    }

    /// Whether this contact carries a voicemail (and not a call).
    pub fn carries(&self, contact: ContactId) -> bool {
        self.contacts
            .lock()
            .map(|c| c.contains(&contact))
            .unwrap_or(false)
    }

    fn add(&self, contact: ContactId) {
        if let Ok(mut contacts) = self.contacts.lock() {
            contacts.insert(contact);
        }
    }
}

/// The path agents fetch a voicemail's audio from.
pub fn audio_url(voicemail: &Voicemail) -> String {
    format!("/api/v1/voicemails/{}/audio", voicemail.recording)
}

/// What an agent's adapter is told of a voicemail routed to them.
pub fn offered(voicemail: &Voicemail, contact: ContactId) -> ServerEvent {
    ServerEvent::VoicemailOffered {
        contact_id: contact.to_string(),
        voicemail_id: voicemail.recording.to_string(),
        caller: voicemail.caller.clone(),
        queue_path: voicemail.queue_path.clone(),
        duration_ms: voicemail.duration_ms,
        left_at: voicemail.created_at,
        audio_url: audio_url(voicemail),
    }
}

/// Whether any enabled user is assigned to the queue.
async fn staffed(store: &dyn Store, queue: switchboard_core::QueueId) -> StoreResult<bool> {
    Ok(store
        .list_users()
        .await?
        .iter()
        .any(|u| !u.disabled && u.queues.contains(&queue)))
}

/// A caller left a voicemail: store it and send it on its way.
pub async fn left(app: &AppState, left: VoicemailLeft) {
    if let Err(error) = deliver(app, &left).await {
        tracing::error!(%error, call = %left.call, "a voicemail could not be delivered; it goes to the CRM");
        crate::crm::enqueue(
            &app.services.jobs,
            crate::crm::Event::CallEnded { call: left.call },
        )
        .await;
    }
}

async fn deliver(app: &AppState, left: &VoicemailLeft) -> Result<(), String> {
    let store = &app.services.store;
    let contacts = &app.services.contacts;
    let queue_path = contacts.issue_of(left.queue).await.unwrap_or_default();
    let to_agents = staffed(store.as_ref(), left.queue)
        .await
        .map_err(|e| e.to_string())?;
    let contact = to_agents.then(|| ContactId::from_uuid(Uuid::now_v7()));
    let voicemail = Voicemail {
        recording: left.recording,
        call: left.call,
        queue: Some(left.queue),
        queue_path,
        caller: left.caller.clone(),
        duration_ms: left.duration_ms,
        blob_key: crate::recordings::blob_key(left.recording),
        contact,
        created_at: left.started_at,
    };
    if let Some(contact) = contact {
        // Known as a voicemail before routing can announce it.
        app.voicemails.add(contact);
    }
    store
        .insert_voicemail(&voicemail)
        .await
        .map_err(|e| e.to_string())?;
    let Some(contact) = contact else {
        // Nobody serves the queue: the call's ticket in the CRM, the recording attached to it
        // once it is complete (REC-1's upload waits for the ticket).
        crate::crm::enqueue(
            &app.services.jobs,
            crate::crm::Event::CallEnded { call: left.call },
        )
        .await;
        return Ok(());
    };
    contacts
        .enqueue(
            NewContact {
                queue: left.queue,
                priority: None,
                language: left.language.clone(),
                customer: Some(left.caller.clone()),
                chat: None,
            },
            contact,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A voicemail's contact changed: its agent's adapters hear of it.
pub async fn on_change(app: &AppState, change: ContactChange) {
    let contact = change.contact().clone();
    let tell = |agent: UserId, event: ServerEvent| {
        app.chat.hub.to_agent(agent, &event.to_json(), None);
    };
    let gone = |id: ContactId| ServerEvent::VoicemailGone {
        contact_id: id.to_string(),
    };
    match &change {
        ContactChange::Assigned(_) | ContactChange::Handed { .. } => {
            if let ContactChange::Handed { from, .. } = &change {
                tell(*from, gone(contact.id));
            }
            let Some(agent) = contact.agent else {
                return;
            };
            match app.services.store.voicemail_of_contact(contact.id).await {
                Ok(Some(voicemail)) => tell(agent, offered(&voicemail, contact.id)),
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, contact = %contact.id, "a voicemail could not be read")
                }
            }
        }
        ContactChange::Requeued { from, .. } => tell(*from, gone(contact.id)),
        ContactChange::Ended(_) => {
            if let Some(agent) = contact.agent {
                tell(agent, gone(contact.id));
            }
        }
    }
}

/// The voicemails now with `agent`, oldest first (what a reconnecting adapter shows).
pub async fn of_agent(app: &AppState, agent: UserId) -> StoreResult<Vec<(ContactId, Voicemail)>> {
    let store = &app.services.store;
    let mut found = Vec::new();
    for contact in store.open_contacts().await? {
        if contact.agent != Some(agent) || !app.voicemails.carries(contact.id) {
            continue;
        }
        if let Some(voicemail) = store.voicemail_of_contact(contact.id).await? {
            found.push((contact.id, voicemail));
        }
    }
    found.sort_by_key(|(_, v)| v.created_at);
    Ok(found)
}

/// Keeps the handle type in one place for `App`.
pub type Shared = Arc<Voicemails>;
