//! The contact service: the routing engine inside the IO shell, and the one writer of routing
//! decisions. It keeps the engine in step with the store, stores every decision before
//! announcing it (domain events for watchers, contact changes for the carriers), and keeps the
//! routing metrics.
//!
//! `ContactService` is a handle (clone it freely); every method takes owned arguments and
//! gives owned results, so a call could later cross a network between nodes. All routing work
//! goes through one lock, so decisions and their writes happen in one order. Configuration
//! changes (queues, users, roles, capacity profiles, teams) rebuild the engine from the store
//! (see `config`); presence changes and contacts update it incrementally. If a write fails
//! after the engine decided, the engine is rebuilt from the store, which stays the truth.

use crate::bus::{ChangeBus, ContactChange, RequeueReason};
use crate::events::{DomainEvent, EventBus, Subject};
use crate::metrics::{Metrics, PresenceLabels};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_core::routing::{AgentSpec, Assignment, RoutingEngine, WaitingContact, WorkKind};
use switchboard_core::wait::QueuePace;
use switchboard_core::{
    CapacityProfile, Channel, Contact, ContactId, ContactStatus, EndedBy, Language, Permission,
    Presence, QueueId, QueueKind, QueueTree, TeamId, User, UserId,
};
use switchboard_store::{ChatSession, Store, StoreError, StoreResult, Ticket};
use tokio::sync::Mutex;

/// Where a transfer sends a contact.
#[derive(Clone, Copy, Debug)]
pub enum TransferTarget {
    Queue(QueueId),
    Agent(UserId),
}

/// The not-ready status an agent gets when a call rang out on their phone.
pub const MISSED_CALL: &str = "Missed call";

/// What the service knows about an agent besides routing.
struct AgentInfo {
    teams: Vec<TeamId>,
    presence: String,
}

struct State {
    engine: RoutingEngine,
    tree: QueueTree,
    agents: HashMap<UserId, AgentInfo>,
    /// Open contacts by id (queued or assigned).
    open: HashMap<ContactId, Contact>,
    /// Each queue's recent hand-offs to agents, for waiting consumers' estimates; kept across
    /// rebuilds (it is history, not configuration).
    pace: QueuePace,
}

/// Where a waiting contact stands in its queue.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Standing {
    /// 1 for the next contact the queue serves.
    pub position: usize,
    /// The estimated wait from now (see `switchboard_core::wait`); `None` without a recent
    /// pace.
    pub estimate: Option<chrono::Duration>,
    /// When the contact arrived (kept through a return to its queue, so it keeps its place).
    pub waiting_since: DateTime<Utc>,
    /// The leaf queue it waits in.
    pub queue: QueueId,
}

/// A request to put a contact in a queue.
#[derive(Clone, Debug)]
pub struct NewContact {
    pub queue: QueueId,
    pub priority: Option<i32>,
    pub language: Option<Language>,
    pub customer: Option<String>,
    /// For a chat: its session and ticket, stored with the contact in one transaction.
    pub chat: Option<(ChatSession, Ticket)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("queue not found")]
    UnknownQueue,
    #[error("queue is a menu; contacts wait in leaf queues")]
    NotALeaf,
    #[error("contact not found")]
    UnknownContact,
    #[error("contact has already ended")]
    AlreadyEnded,
    #[error("the contact is not with an agent")]
    NotAssigned,
    #[error("the agent is not available or has no room for it")]
    AgentUnavailable,
    #[error("contacts are transferred within their channel")]
    WrongChannel,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The handle to the contact service. Cloning gives another handle to the same service.
#[derive(Clone)]
pub struct ContactService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Watchers' events (what happened, for people).
    events: EventBus,
    /// Carriers' changes (what to do, for voice and chat).
    changes: ChangeBus,
    metrics: Arc<Metrics>,
    /// The engine and what the service knows besides it; held for a decision and its writes.
    state: Mutex<State>,
}

fn kind_of(channel: Channel) -> WorkKind {
    if channel.is_call() {
        WorkKind::Call
    } else {
        WorkKind::Chat
    }
}

impl ContactService {
    /// Starts the service with routing built from the store.
    pub async fn start(
        store: Arc<dyn Store>,
        events: EventBus,
        changes: ChangeBus,
        metrics: Arc<Metrics>,
    ) -> StoreResult<Self> {
        let empty = State {
            engine: RoutingEngine::new(),
            tree: QueueTree::default(),
            agents: HashMap::new(),
            open: HashMap::new(),
            pace: QueuePace::default(),
        };
        let service = Self {
            inner: Arc::new(Inner {
                store,
                events,
                changes,
                metrics,
                state: Mutex::new(empty),
            }),
        };
        service.rebuild().await?;
        Ok(service)
    }

    /// Rebuilds routing from the store: after configuration changes, and after a failed write.
    pub async fn rebuild(&self) -> StoreResult<()> {
        let mut state = self.inner.state.lock().await;
        self.inner.rebuild_locked(&mut state, Utc::now()).await
    }

    /// The issue path of a queue ("Billing > Refunds").
    pub async fn issue_of(&self, queue: QueueId) -> Option<String> {
        self.inner.state.lock().await.tree.path(queue)
    }

    /// Puts a new contact in a queue; it may reach an agent at once.
    pub async fn enqueue(
        &self,
        request: NewContact,
        id: ContactId,
    ) -> Result<Contact, ContactError> {
        self.inner.enqueue(request, id, None).await
    }

    /// Puts a new contact in a queue as if it had arrived at `arrived_at` (a callback asked
    /// for by a caller who was waiting keeps their place ahead of later arrivals).
    pub async fn enqueue_arrived(
        &self,
        request: NewContact,
        id: ContactId,
        arrived_at: chrono::DateTime<Utc>,
    ) -> Result<Contact, ContactError> {
        self.inner.enqueue(request, id, Some(arrived_at)).await
    }

    /// Opens the contact of an agent's own outbound call: with that agent from the start, not
    /// in any queue, taking their call capacity so routing offers them no call meanwhile.
    pub async fn start_outbound(
        &self,
        id: ContactId,
        agent: UserId,
        number: String,
    ) -> Result<Contact, ContactError> {
        self.inner.start_outbound(id, agent, number).await
    }

    /// Ends a contact (completed by the agent, ended by a supervisor, abandoned by the
    /// consumer); `reason` is stored as its end reason.
    pub async fn end(&self, id: ContactId, reason: String) -> Result<Contact, ContactError> {
        self.inner.end(id, &reason, None).await
    }

    /// Ends someone else's contact, a stuck one (MON-7): like `end`, and the record names the
    /// user who did it. A call's contact ending hangs the call up (its carrier hears of it).
    pub async fn end_by(
        &self,
        id: ContactId,
        reason: String,
        by: EndedBy,
    ) -> Result<Contact, ContactError> {
        self.inner.end(id, &reason, Some(by)).await
    }

    /// Transfers a contact that is with an agent: back to waiting in a queue of its channel
    /// (keeping its arrival time), or straight to another agent who is available and has room.
    /// A refused transfer leaves the contact with its agent.
    pub async fn transfer(
        &self,
        id: ContactId,
        target: TransferTarget,
    ) -> Result<Contact, ContactError> {
        self.inner.move_contact(id, target, None).await
    }

    /// Puts a contact an agent did not take (a call that rang out) back in its queue, keeping
    /// its place; not counted as a transfer.
    pub async fn return_to_queue(&self, id: ContactId) -> Result<Contact, ContactError> {
        let queue = self
            .open_contact(id)
            .await
            .and_then(|c| c.queue)
            .ok_or(ContactError::UnknownContact)?;
        self.inner
            .move_contact(
                id,
                TransferTarget::Queue(queue),
                Some(RequeueReason::NotTaken),
            )
            .await
    }

    /// An agent has gone: signed out, or their adapter was gone for the grace with no phone
    /// registered. They go offline first (so routing offers them nothing more), then every
    /// chat or message contact they hold goes back to its queue keeping its place (calls end
    /// with their media, and a contact given to them directly has no queue to go back to).
    /// Returns the contacts sent back.
    pub async fn agent_gone(&self, agent: UserId) -> Result<Vec<Contact>, ContactError> {
        self.set_presence(agent, Presence::Offline).await?;
        let held: Vec<ContactId> = {
            let state = self.inner.state.lock().await;
            let mut held: Vec<&Contact> = state
                .open
                .values()
                .filter(|c| {
                    c.agent == Some(agent)
                        && c.status == ContactStatus::Assigned
                        && !c.channel.is_call()
                        && c.queue.is_some()
                })
                .collect();
            // The longest waiting first, so they meet the queue in their own order.
            held.sort_by_key(|c| (c.created_at, c.id));
            held.into_iter().map(|c| c.id).collect()
        };
        let mut returned = Vec::with_capacity(held.len());
        for id in held {
            let Some(queue) = self.open_contact(id).await.and_then(|c| c.queue) else {
                continue;
            };
            match self
                .inner
                .move_contact(
                    id,
                    TransferTarget::Queue(queue),
                    Some(RequeueReason::AgentOffline),
                )
                .await
            {
                Ok(contact) => returned.push(contact),
                // Ended or moved meanwhile by someone else: nothing to send back.
                Err(ContactError::UnknownContact | ContactError::NotAssigned) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(returned)
    }

    /// Sets an agent's presence (stored, announced, and given to routing); the user as stored
    /// afterwards.
    pub async fn set_presence(
        &self,
        user: UserId,
        presence: Presence,
    ) -> Result<User, ContactError> {
        let mut user = self.inner.store.get_user(user).await?;
        self.inner
            .change_presence(&mut user, |state, now| state.set(presence, now))
            .await?;
        Ok(user)
    }

    /// Forces an agent's presence (Do Not Disturb while they are on an emergency call, EMG-2),
    /// remembering the status it replaced.
    pub async fn force_presence(
        &self,
        user: UserId,
        presence: Presence,
    ) -> Result<User, ContactError> {
        let mut user = self.inner.store.get_user(user).await?;
        self.inner
            .change_presence(&mut user, |state, now| state.force(presence, now))
            .await?;
        Ok(user)
    }

    /// Returns an agent to the status a forced change replaced (EMG-8); a status chosen since
    /// (by the agent or a supervisor) is kept.
    pub async fn restore_presence(&self, user: UserId) -> Result<User, ContactError> {
        let mut user = self.inner.store.get_user(user).await?;
        self.inner
            .change_presence(&mut user, |state, now| state.restore(now))
            .await?;
        Ok(user)
    }

    /// Makes an agent who missed a call not ready (the custom status "Missed call", created
    /// when the center has none), so routing tries the next agent.
    pub async fn mark_not_ready(&self, agent: UserId) -> Result<(), ContactError> {
        let name = switchboard_core::Name::parse("custom status", MISSED_CALL)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let store = &self.inner.store;
        if !store
            .list_custom_statuses()
            .await?
            .iter()
            .any(|s| s == MISSED_CALL)
        {
            match store.create_custom_status(MISSED_CALL).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.set_presence(agent, Presence::Custom(name)).await?;
        Ok(())
    }

    /// An open contact (queued or assigned) as routing holds it; `None` once it has ended.
    pub async fn open_contact(&self, id: ContactId) -> Option<Contact> {
        self.inner.state.lock().await.open.get(&id).cloned()
    }

    /// A queue node of the current tree.
    pub async fn queue_node(&self, id: QueueId) -> Option<switchboard_core::QueueNode> {
        self.inner.state.lock().await.tree.get(id).cloned()
    }

    /// How many calls and chats an agent holds now.
    pub async fn load_of(&self, user: UserId) -> (u16, u16) {
        self.inner
            .state
            .lock()
            .await
            .engine
            .load_of(user)
            .unwrap_or((0, 0))
    }

    /// How many contacts wait ahead of this one.
    pub async fn position(&self, contact: ContactId) -> Option<usize> {
        self.inner.state.lock().await.engine.position(contact)
    }

    /// Where each of these contacts stands in its queue, for those that wait in one.
    pub async fn standings(&self, contacts: Vec<ContactId>) -> Vec<(ContactId, Standing)> {
        let now = Utc::now();
        let state = self.inner.state.lock().await;
        contacts
            .into_iter()
            .filter_map(|id| {
                let contact = state.open.get(&id)?;
                let queue = contact
                    .queue
                    .filter(|_| contact.status == ContactStatus::Queued)?;
                let position = state.engine.position(id)? + 1;
                let estimate = state.pace.estimate(queue, position, now);
                Some((
                    id,
                    Standing {
                        position,
                        estimate,
                        waiting_since: contact.created_at,
                        queue,
                    },
                ))
            })
            .collect()
    }
}

impl Inner {
    fn tell(&self, change: ContactChange) {
        self.changes.publish(change);
    }

    async fn rebuild_locked(&self, state: &mut State, now: DateTime<Utc>) -> StoreResult<()> {
        let queues = self.store.list_queues().await?;
        let tree = QueueTree::new(queues).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let profiles: HashMap<_, CapacityProfile> = self
            .store
            .list_capacity_profiles()
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let roles: HashMap<String, _> = self
            .store
            .list_roles()
            .await?
            .into_iter()
            .map(|r| (r.key.to_string(), r))
            .collect();
        let users = self.store.list_users().await?;
        let open = self.store.open_contacts().await?;

        let mut engine = RoutingEngine::new();
        for node in tree.nodes().filter(|n| n.kind == QueueKind::Leaf) {
            engine
                .upsert_queue(node.id, kind_of(node.channel))
                .map_err(corrupt)?;
        }
        let mut agents = HashMap::new();
        for user in &users {
            let handles = roles
                .get(user.role.as_str())
                .is_some_and(|r| r.permissions.contains(Permission::HandleContacts));
            if !handles || user.disabled {
                continue;
            }
            let (chats, calls) = match user.capacity_profile.and_then(|p| profiles.get(&p)) {
                Some(profile) => (profile.max_chats(), profile.max_calls()),
                None => CapacityProfile::default_limits(),
            };
            let spec = AgentSpec {
                id: user.id,
                queues: user.queues.clone(),
                languages: user.languages.clone(),
                max_calls: calls,
                max_chats: chats,
            };
            engine
                .upsert_agent(spec, user.presence.since())
                .map_err(corrupt)?;
            agents.insert(
                user.id,
                AgentInfo {
                    teams: user.teams.clone(),
                    presence: user.presence.current().to_string(),
                },
            );
        }
        // Contacts already with an agent keep that agent and use their capacity.
        for contact in open.iter().filter(|c| c.status == ContactStatus::Assigned) {
            if let Some(agent) = contact.agent.filter(|a| agents.contains_key(a)) {
                engine
                    .restore_assigned(
                        contact.id,
                        agent,
                        contact.queue,
                        kind_of(contact.channel),
                        contact.queue.is_none(),
                    )
                    .map_err(corrupt)?;
            }
        }
        // Then available agents, then waiting contacts in arrival order, which may route some.
        let mut decided = Vec::new();
        for user in users
            .iter()
            .filter(|u| agents.contains_key(&u.id) && u.presence.current().is_routable())
        {
            decided.extend(
                engine
                    .set_routable(user.id, true, user.presence.since())
                    .map_err(corrupt)?,
            );
        }
        for contact in open.iter().filter(|c| c.status == ContactStatus::Queued) {
            let Some(queue) = contact
                .queue
                .filter(|q| tree.get(*q).is_some_and(|n| n.kind == QueueKind::Leaf))
            else {
                continue;
            };
            let waiting = WaitingContact {
                id: contact.id,
                queue,
                priority: contact.priority,
                enqueued_at: contact.created_at,
                language: contact.language.clone(),
            };
            decided.extend(engine.enqueue(waiting, now).map_err(corrupt)?);
        }
        *state = State {
            engine,
            tree,
            agents,
            open: open.into_iter().map(|c| (c.id, c)).collect(),
            pace: std::mem::take(&mut state.pace),
        };
        self.apply_assignments(state, decided, now).await?;
        self.refresh_gauges(state);
        Ok(())
    }

    async fn enqueue(
        &self,
        request: NewContact,
        id: ContactId,
        arrived_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<Contact, ContactError> {
        let now = Utc::now();
        let arrived = arrived_at.map_or(now, |at| at.min(now));
        let mut state = self.state.lock().await;
        let node = state
            .tree
            .get(request.queue)
            .ok_or(ContactError::UnknownQueue)?;
        if node.kind != QueueKind::Leaf {
            return Err(ContactError::NotALeaf);
        }
        let contact = Contact {
            id,
            channel: node.channel,
            queue: Some(node.id),
            issue: state.tree.path(node.id).unwrap_or_default(),
            priority: request.priority.unwrap_or(node.priority),
            language: request.language,
            status: ContactStatus::Queued,
            agent: None,
            customer: request.customer,
            created_at: arrived,
            assigned_at: None,
            ended_at: None,
            end_reason: None,
            transfers: 0,
            ended_by: None,
        };
        match &request.chat {
            Some((chat, ticket)) => self.store.insert_chat(&contact, chat, ticket).await?,
            None => self.store.insert_contact(&contact).await?,
        }
        self.metrics
            .count_contact(contact.channel.as_str(), "queued");
        self.publish_contact(DomainEvent::ContactQueued, &contact, &state);
        let waiting = WaitingContact {
            id,
            queue: node.id,
            priority: contact.priority,
            enqueued_at: arrived,
            language: contact.language.clone(),
        };
        state.open.insert(id, contact);
        let decided = match state.engine.enqueue(waiting, now) {
            Ok(decided) => decided.into_iter().collect(),
            Err(error) => {
                tracing::error!(%error, "routing refused a stored contact; rebuilding");
                self.rebuild_locked(&mut state, now).await?;
                Vec::new()
            }
        };
        self.apply_or_rebuild(&mut state, decided, now).await?;
        self.refresh_gauges(&state);
        match state.open.get(&id) {
            Some(contact) => Ok(contact.clone()),
            None => Ok(self.store.get_contact(id).await?),
        }
    }

    async fn start_outbound(
        &self,
        id: ContactId,
        agent: UserId,
        number: String,
    ) -> Result<Contact, ContactError> {
        let now = Utc::now();
        let mut state = self.state.lock().await;
        if !state.agents.contains_key(&agent) {
            return Err(ContactError::AgentUnavailable);
        }
        let contact = Contact {
            id,
            channel: Channel::Voice,
            queue: None,
            issue: "Outbound call".into(),
            priority: 0,
            language: None,
            status: ContactStatus::Assigned,
            agent: Some(agent),
            customer: Some(number),
            created_at: now,
            assigned_at: Some(now),
            ended_at: None,
            end_reason: None,
            transfers: 0,
            ended_by: None,
        };
        state
            .engine
            .assign_override(id, agent, WorkKind::Call)
            .map_err(|_| ContactError::AgentUnavailable)?;
        if let Err(error) = self.store.insert_contact(&contact).await {
            self.rebuild_locked(&mut state, now).await?;
            return Err(error.into());
        }
        self.metrics
            .count_contact(contact.channel.as_str(), "outbound");
        self.publish_contact(DomainEvent::ContactAssigned, &contact, &state);
        state.open.insert(id, contact.clone());
        self.refresh_gauges(&state);
        Ok(contact)
    }

    async fn end(
        &self,
        id: ContactId,
        reason: &str,
        by: Option<EndedBy>,
    ) -> Result<Contact, ContactError> {
        let now = Utc::now();
        let mut state = self.state.lock().await;
        let Some(mut contact) = state.open.get(&id).cloned() else {
            let stored = self.store.get_contact(id).await.map_err(|e| match e {
                StoreError::NotFound(_) => ContactError::UnknownContact,
                other => ContactError::Store(other),
            })?;
            return Err(if stored.status.is_open() {
                ContactError::UnknownContact
            } else {
                ContactError::AlreadyEnded
            });
        };
        contact.finish(reason, now);
        contact.ended_by = by;
        // The engine may not know the contact (a queue that became a menu); ending still counts.
        let decided = state.engine.release(id, now).unwrap_or_default();
        let mut changed = vec![contact.clone()];
        let assigned = self.assigned_contacts(&state, &decided, now);
        changed.extend(assigned.iter().cloned());
        if let Err(error) = self.store.update_contacts(&changed).await {
            self.rebuild_locked(&mut state, now).await?;
            return Err(error.into());
        }
        state.open.remove(&id);
        let event = if contact.status == ContactStatus::Abandoned {
            "abandoned"
        } else {
            "ended"
        };
        self.metrics.count_contact(contact.channel.as_str(), event);
        if contact.status == ContactStatus::Abandoned {
            if let Some(wait) = contact.wait_millis() {
                self.metrics.wait_seconds.observe(wait as f64 / 1000.0);
            }
        }
        self.publish_contact(DomainEvent::ContactEnded, &contact, &state);
        self.tell(ContactChange::Ended(contact.clone()));
        self.announce_assigned(&mut state, assigned);
        self.refresh_gauges(&state);
        Ok(contact)
    }

    /// Sets an agent's presence (stored, announced, and given to routing).
    /// Changes an agent's presence as `change` says; a change is stored, announced and given
    /// to routing. The remembered status of a forced change is stored even when the status
    /// itself stays (Do Not Disturb forced on Do Not Disturb).
    async fn change_presence(
        &self,
        user: &mut User,
        change: impl FnOnce(
            &mut switchboard_core::PresenceState,
            chrono::DateTime<Utc>,
        ) -> Option<switchboard_core::presence::PresenceChange>,
    ) -> StoreResult<()> {
        let before = user.presence.forced_from().cloned();
        let changed = change(&mut user.presence, Utc::now());
        if changed.is_none() && before.as_ref() != user.presence.forced_from() {
            self.store.save_presence(user.id, &user.presence).await?;
        }
        if let Some(change) = changed {
            self.store.save_presence(user.id, &user.presence).await?;
            self.events.publish(
                Subject::Agent {
                    id: user.id,
                    teams: user.teams.clone(),
                },
                DomainEvent::PresenceChanged {
                    user: user.id,
                    presence: change.to,
                    since: change.at,
                },
            );
            self.presence_changed(user).await?;
        }
        Ok(())
    }

    /// Moves a contact that is with an agent. `returned` is why it goes back to its queue
    /// when the agent did not choose to transfer it (then it is not counted as a transfer);
    /// `None` for a transfer.
    async fn move_contact(
        &self,
        id: ContactId,
        target: TransferTarget,
        returned: Option<RequeueReason>,
    ) -> Result<Contact, ContactError> {
        let now = Utc::now();
        let mut state = self.state.lock().await;
        let mut contact = state
            .open
            .get(&id)
            .cloned()
            .ok_or(ContactError::UnknownContact)?;
        let from = contact
            .agent
            .filter(|_| contact.status == ContactStatus::Assigned)
            .ok_or(ContactError::NotAssigned)?;
        let kind = kind_of(contact.channel);
        let decided = match target {
            TransferTarget::Queue(queue) => {
                let node = state.tree.get(queue).ok_or(ContactError::UnknownQueue)?;
                if node.kind != QueueKind::Leaf {
                    return Err(ContactError::NotALeaf);
                }
                if node.channel != contact.channel {
                    return Err(ContactError::WrongChannel);
                }
                let issue = state.tree.path(queue).unwrap_or_default();
                contact.requeue(queue, issue);
                if returned.is_some() {
                    contact.transfers = contact.transfers.saturating_sub(1);
                }
                let mut decided = state.engine.release(id, now).unwrap_or_default();
                let waiting = WaitingContact {
                    id,
                    queue,
                    priority: contact.priority,
                    enqueued_at: contact.created_at,
                    language: contact.language.clone(),
                };
                decided.extend(state.engine.enqueue(waiting, now).map_err(corrupt)?);
                decided
            }
            TransferTarget::Agent(agent) => {
                if agent == from || !state.agents.contains_key(&agent) {
                    return Err(ContactError::AgentUnavailable);
                }
                let released = state.engine.release(id, now).unwrap_or_default();
                if state
                    .engine
                    .assign_direct(id, agent, contact.queue, kind, now)
                    .is_err()
                {
                    // Back to the agent who had it a moment ago; what their release decided stands.
                    state
                        .engine
                        .restore_assigned(id, from, contact.queue, kind, false)
                        .map_err(corrupt)?;
                    self.apply_or_rebuild(&mut state, released, now).await?;
                    return Err(ContactError::AgentUnavailable);
                }
                contact.assign(agent, now);
                contact.transfers += 1;
                released
            }
        };
        state.open.insert(id, contact.clone());
        let assigned = self.assigned_contacts(&state, &decided, now);
        let mut changed = vec![contact.clone()];
        changed.extend(assigned.iter().filter(|c| c.id != id).cloned());
        if let Err(error) = self.store.update_contacts(&changed).await {
            self.rebuild_locked(&mut state, now).await?;
            return Err(error.into());
        }
        match target {
            TransferTarget::Queue(_) => {
                self.publish_contact(DomainEvent::ContactQueued, &contact, &state);
                self.tell(ContactChange::Requeued {
                    contact: contact.clone(),
                    from,
                    reason: returned.unwrap_or(RequeueReason::Transferred),
                });
            }
            TransferTarget::Agent(_) => {
                self.publish_contact(DomainEvent::ContactAssigned, &contact, &state);
                self.tell(ContactChange::Handed {
                    contact: contact.clone(),
                    from,
                });
            }
        }
        self.announce_assigned(&mut state, assigned);
        self.refresh_gauges(&state);
        Ok(state.open.get(&id).cloned().unwrap_or(contact))
    }

    /// Tells routing that a user's presence changed (already stored).
    async fn presence_changed(&self, user: &User) -> StoreResult<()> {
        let now = Utc::now();
        let mut state = self.state.lock().await;
        let Some(info) = state.agents.get_mut(&user.id) else {
            return Ok(());
        };
        info.presence = user.presence.current().to_string();
        let routable = user.presence.current().is_routable();
        let decided = state
            .engine
            .set_routable(user.id, routable, now)
            .unwrap_or_default();
        self.apply_or_rebuild(&mut state, decided, now).await?;
        self.refresh_gauges(&state);
        Ok(())
    }

    async fn apply_or_rebuild(
        &self,
        state: &mut State,
        decided: Vec<Assignment>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Err(error) = self.apply_assignments(state, decided, now).await {
            tracing::error!(%error, "saving routing decisions failed; rebuilding from the store");
            self.rebuild_locked(state, now).await?;
        }
        Ok(())
    }

    /// Stores the engine's decisions in one transaction, then announces them.
    async fn apply_assignments(
        &self,
        state: &mut State,
        decided: Vec<Assignment>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if decided.is_empty() {
            return Ok(());
        }
        let assigned = self.assigned_contacts(state, &decided, now);
        self.store.update_contacts(&assigned).await?;
        self.announce_assigned(state, assigned);
        Ok(())
    }

    fn assigned_contacts(
        &self,
        state: &State,
        decided: &[Assignment],
        now: DateTime<Utc>,
    ) -> Vec<Contact> {
        decided
            .iter()
            .filter_map(|a| {
                let mut contact = state.open.get(&a.contact)?.clone();
                contact.assign(a.agent, now);
                Some(contact)
            })
            .collect()
    }

    fn announce_assigned(&self, state: &mut State, assigned: Vec<Contact>) {
        for contact in assigned {
            self.metrics
                .count_contact(contact.channel.as_str(), "assigned");
            if let Some(wait) = contact.wait_millis() {
                self.metrics.wait_seconds.observe(wait as f64 / 1000.0);
            }
            if let (Some(queue), Some(at)) = (contact.queue, contact.assigned_at) {
                state.pace.record(queue, at);
            }
            self.publish_contact(DomainEvent::ContactAssigned, &contact, state);
            self.tell(ContactChange::Assigned(contact.clone()));
            state.open.insert(contact.id, contact);
        }
    }

    fn publish_contact(&self, event: fn(Contact) -> DomainEvent, contact: &Contact, state: &State) {
        let subject = match contact.agent {
            Some(agent) => Subject::Agent {
                id: agent,
                teams: state
                    .agents
                    .get(&agent)
                    .map(|a| a.teams.clone())
                    .unwrap_or_default(),
            },
            None => Subject::Waiting {
                queue: contact.queue,
                channel: contact.channel,
            },
        };
        self.events.publish(subject, event(contact.clone()));
    }

    fn refresh_gauges(&self, state: &State) {
        self.metrics
            .contacts_waiting
            .set(state.engine.waiting_total() as i64);
        self.metrics.contacts_in_progress.set(
            state
                .open
                .values()
                .filter(|c| c.status == ContactStatus::Assigned)
                .count() as i64,
        );
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for name in ["available", "busy", "break", "do_not_disturb", "offline"] {
            counts.insert(name, 0);
        }
        for info in state.agents.values() {
            let label = if info.presence.starts_with("custom:") {
                "custom"
            } else {
                info.presence.as_str()
            };
            *counts.entry(label).or_default() += 1;
        }
        for (presence, count) in counts {
            self.metrics
                .agents
                .get_or_create(&PresenceLabels {
                    presence: presence.to_owned(),
                })
                .set(count);
        }
    }
}

fn corrupt(error: switchboard_core::routing::RoutingError) -> StoreError {
    StoreError::Corrupt(error.to_string())
}
