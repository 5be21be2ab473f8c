//! The services on a real (in-memory SQLite) store: the change bus fans out to every
//! subscriber, configuration events rebuild routing before they return, events are encoded
//! once however many watch, the job worker dispatches by kind and applies the retry policy,
//! and the contact service stores a decision before it announces it.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use switchboard_core::presence::PresenceState;
use switchboard_core::{
    BuiltinRole, Channel, ContactStatus, EmailList, JobId, Name, Presence, QueueId, QueueKind,
    QueueNode, RoleKey, User, UserId, Username,
};
use switchboard_services::bus::{ChangeBus, ContactChange};
use switchboard_services::config::ConfigArea;
use switchboard_services::contacts::NewContact;
use switchboard_services::events::{DomainEvent, EventBus, Subject};
use switchboard_services::jobs::{JobHandler, JobKind, JobOutcome, JobWorker, Jobs};
use switchboard_services::Services;
use switchboard_store::{Job, JobState, Store};
use uuid::Uuid;

async fn store() -> Arc<dyn Store> {
    switchboard_store::open("sqlite::memory:")
        .await
        .expect("an in-memory store opens")
}

fn leaf(name: &str) -> QueueNode {
    QueueNode {
        id: QueueId::from_uuid(Uuid::new_v4()),
        channel: Channel::Web,
        parent: None,
        name: Name::parse("name", name).unwrap(),
        kind: QueueKind::Leaf,
        position: 0,
        priority: 0,
        languages: vec![],
    }
}

fn agent(username: &str, queue: QueueId) -> User {
    let now = Utc::now();
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        username: Username::parse(username).unwrap(),
        display_name: Name::parse("name", username).unwrap(),
        email: None,
        role: RoleKey::parse(BuiltinRole::Agent.key()).unwrap(),
        teams: vec![],
        managed_teams: vec![],
        queues: vec![queue],
        languages: vec![],
        capacity_profile: None,
        emergency_contacts: EmailList::default(),
        site: None,
        presence: PresenceState::new(now),
        disabled: false,
        totp_enabled: false,
        created_at: now,
    }
}

fn a_contact() -> switchboard_core::Contact {
    switchboard_core::Contact {
        id: switchboard_core::ContactId::from_uuid(Uuid::new_v4()),
        channel: Channel::Web,
        queue: None,
        issue: String::new(),
        priority: 0,
        language: None,
        status: ContactStatus::Queued,
        agent: None,
        customer: None,
        created_at: Utc::now(),
        assigned_at: None,
        ended_at: None,
        end_reason: None,
        transfers: 0,
        ended_by: None,
    }
}

#[tokio::test]
async fn the_change_bus_reaches_every_subscriber_and_forgets_the_gone() {
    let bus = ChangeBus::default();
    let mut first = bus.subscribe();
    let second = bus.subscribe();
    let contact = a_contact();
    bus.publish(ContactChange::Assigned(contact.clone()));
    drop(second);
    bus.publish(ContactChange::Ended(contact.clone()));
    assert!(matches!(first.recv().await, Some(ContactChange::Assigned(c)) if c.id == contact.id));
    assert!(matches!(first.recv().await, Some(ContactChange::Ended(c)) if c.id == contact.id));
    assert_eq!(bus.subscribers(), 1, "the dropped subscriber is forgotten");
}

#[tokio::test]
async fn configuration_changes_rebuild_routing_before_returning_and_reach_every_subscriber() {
    let services = Services::start(store().await).await.unwrap();
    let mut voice = services.config.subscribe();
    let mut other = services.config.subscribe();
    assert_eq!(services.config.generation(), 0);

    let queue = leaf("Support");
    services.store.create_queue(&queue).await.unwrap();
    assert!(services.contacts.queue_node(queue.id).await.is_none());
    services.config.changed(ConfigArea::Queues).await.unwrap();
    assert_eq!(services.config.generation(), 1);
    assert_eq!(
        services.contacts.queue_node(queue.id).await.map(|n| n.id),
        Some(queue.id),
        "routing knows the queue once changed() returns"
    );

    services.config.changed(ConfigArea::Trunks).await.unwrap();
    assert_eq!(services.config.generation(), 2);
    for receiver in [&mut voice, &mut other] {
        assert_eq!(receiver.try_recv().ok(), Some(ConfigArea::Queues));
        assert_eq!(receiver.try_recv().ok(), Some(ConfigArea::Trunks));
    }
}

static ENCODED: AtomicUsize = AtomicUsize::new(0);

fn counting_encoder(event: &DomainEvent) -> Option<String> {
    ENCODED.fetch_add(1, Ordering::SeqCst);
    Some(format!("{event:?}"))
}

#[tokio::test]
async fn an_event_is_encoded_once_however_many_watch() {
    let bus = EventBus::default();
    let mut watchers: Vec<_> = (0..3).map(|_| bus.subscribe()).collect();
    let user = UserId::from_uuid(Uuid::new_v4());
    bus.publish(
        Subject::Agent {
            id: user,
            teams: vec![],
        },
        DomainEvent::PresenceChanged {
            user,
            presence: Presence::Available,
            since: Utc::now(),
        },
    );
    let mut texts = Vec::new();
    for watcher in &mut watchers {
        let event = watcher.recv().await.unwrap();
        texts.push(event.encoded(counting_encoder).unwrap().to_owned());
    }
    assert_eq!(ENCODED.load(Ordering::SeqCst), 1);
    assert!(texts.iter().all(|t| t == &texts[0]));
}

/// Answers by payload: `done`, `retry` or `give up`; remembers what it ran.
#[derive(Default)]
struct Scripted {
    ran: Mutex<Vec<String>>,
}

#[async_trait]
impl JobHandler for Scripted {
    async fn run(&self, job: &Job, _now: DateTime<Utc>) -> JobOutcome {
        self.ran.lock().unwrap().push(job.payload.clone());
        match job.payload.as_str() {
            "done" => JobOutcome::Done,
            "retry" => JobOutcome::Retry {
                error: "the CRM is down".into(),
            },
            _ => JobOutcome::GiveUp {
                error: "that ticket is gone".into(),
            },
        }
    }
}

#[tokio::test]
async fn the_job_worker_dispatches_by_kind_retries_by_policy_and_fails_unknown_kinds() {
    let store = store().await;
    let jobs = Jobs::new(store.clone());
    let handler = Arc::new(Scripted::default());
    let worker = JobWorker::new(&jobs).register(JobKind::CrmDelivery, handler.clone());
    let now = Utc.with_ymd_and_hms(2026, 5, 4, 9, 30, 0).unwrap();
    let mut ids = Vec::new();
    for payload in ["done", "retry", "give up"] {
        let id = JobId::from_uuid(Uuid::new_v4());
        jobs.enqueue(id, JobKind::CrmDelivery, payload.into(), now)
            .await
            .unwrap();
        ids.push(id);
    }
    let fax = Job {
        id: JobId::from_uuid(Uuid::new_v4()),
        kind: "fax".into(),
        payload: "{}".into(),
        state: JobState::Pending,
        run_at: now,
        attempts: 0,
        last_error: None,
        created_at: now,
    };
    store.enqueue_job(&fax).await.unwrap();

    assert_eq!(worker.run_due(now).await, 4);
    let stored = store.list_jobs(10).await.unwrap();
    let job = |id: JobId| stored.iter().find(|j| j.id == id).unwrap().clone();
    assert_eq!(job(ids[0]).state, JobState::Done);
    let retried = job(ids[1]);
    assert_eq!(retried.state, JobState::Pending);
    assert_eq!(
        Some(retried.run_at),
        switchboard_core::jobs::next_attempt(1, now)
    );
    assert_eq!(retried.last_error.as_deref(), Some("the CRM is down"));
    assert_eq!(job(ids[2]).state, JobState::Failed);
    let unknown = job(fax.id);
    assert_eq!(unknown.state, JobState::Failed);
    assert!(
        unknown
            .last_error
            .as_deref()
            .unwrap()
            .contains("unknown job kind `fax`"),
        "{unknown:?}"
    );

    assert_eq!(worker.run_due(now).await, 0, "the retry is not due yet");
    assert_eq!(worker.run_due(retried.run_at).await, 1);
    let mut ran = handler.ran.lock().unwrap().clone();
    assert_eq!(ran.pop().as_deref(), Some("retry"), "the retry ran last");
    ran.sort();
    assert_eq!(ran, ["done", "give up", "retry"]);
}

#[tokio::test]
async fn a_routing_decision_is_stored_before_it_is_announced() {
    let store = store().await;
    let queue = leaf("Billing");
    store.create_queue(&queue).await.unwrap();
    let ada = agent("ada", queue.id);
    store.create_user(&ada, None).await.unwrap();
    let services = Services::start(store).await.unwrap();
    let mut changes = services.bus.subscribe();
    let mut events = services.events.subscribe();

    let user = services
        .contacts
        .set_presence(ada.id, Presence::Available)
        .await
        .unwrap();
    assert_eq!(user.presence.current(), &Presence::Available);
    let presence = events.recv().await.unwrap();
    assert!(matches!(
        presence.event,
        DomainEvent::PresenceChanged { user, presence: Presence::Available, .. } if user == ada.id
    ));

    let id = switchboard_core::ContactId::from_uuid(Uuid::new_v4());
    let request = NewContact {
        queue: queue.id,
        priority: None,
        language: None,
        customer: Some("Grace".into()),
        chat: None,
    };
    let contact = services.contacts.enqueue(request, id).await.unwrap();
    assert_eq!(contact.agent, Some(ada.id));
    let Some(ContactChange::Assigned(assigned)) = changes.recv().await else {
        panic!("the assignment is announced");
    };
    let stored = services.store.get_contact(assigned.id).await.unwrap();
    assert_eq!(
        (stored.status, stored.agent),
        (ContactStatus::Assigned, Some(ada.id))
    );
    let kinds: Vec<_> = [events.recv().await.unwrap(), events.recv().await.unwrap()]
        .iter()
        .map(|e| match &e.event {
            DomainEvent::ContactQueued(_) => "queued",
            DomainEvent::ContactAssigned(_) => "assigned",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["queued", "assigned"]);

    let ended = services.contacts.end(id, "completed".into()).await.unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("completed"));
    assert!(matches!(changes.recv().await, Some(ContactChange::Ended(c)) if c.id == id));
    assert!(services.contacts.open_contact(id).await.is_none());
}

#[tokio::test]
async fn an_emergency_call_forces_do_not_disturb_and_gives_back_what_it_replaced() {
    let store = store().await;
    let queue = leaf("Billing");
    store.create_queue(&queue).await.unwrap();
    let ada = agent("ada", queue.id);
    store.create_user(&ada, None).await.unwrap();
    let services = Services::start(store).await.unwrap();
    let contacts = &services.contacts;
    contacts
        .set_presence(ada.id, Presence::Break)
        .await
        .unwrap();
    let forced = contacts
        .force_presence(ada.id, Presence::DoNotDisturb)
        .await
        .unwrap();
    assert_eq!(forced.presence.current(), &Presence::DoNotDisturb);
    // Stored, so a restart in the middle of the call still knows what to give back.
    let stored = services.store.get_user(ada.id).await.unwrap();
    assert_eq!(stored.presence.forced_from(), Some(&Presence::Break));
    let restored = contacts.restore_presence(ada.id).await.unwrap();
    assert_eq!(restored.presence.current(), &Presence::Break);

    // A status chosen during the call is kept when it ends.
    contacts
        .force_presence(ada.id, Presence::DoNotDisturb)
        .await
        .unwrap();
    contacts
        .set_presence(ada.id, Presence::Available)
        .await
        .unwrap();
    let kept = contacts.restore_presence(ada.id).await.unwrap();
    assert_eq!(kept.presence.current(), &Presence::Available);

    // Do Not Disturb forced on Do Not Disturb gives back Do Not Disturb.
    contacts
        .set_presence(ada.id, Presence::DoNotDisturb)
        .await
        .unwrap();
    contacts
        .force_presence(ada.id, Presence::DoNotDisturb)
        .await
        .unwrap();
    let same = contacts.restore_presence(ada.id).await.unwrap();
    assert_eq!(same.presence.current(), &Presence::DoNotDisturb);
    assert_eq!(same.presence.forced_from(), None);
}

fn actor_of(user: &User, role: BuiltinRole) -> switchboard_core::Actor {
    switchboard_core::Actor {
        user_id: user.id,
        role: role.role(),
        teams: user.teams.clone(),
        managed_teams: vec![],
        queues: vec![],
    }
}

/// An emergency call beside the dialling path: logged, its mail stored as a job only when the
/// agent has contacts, supervisors alerted at once and told of its end, whichever of the two
/// runs first.
#[tokio::test]
async fn an_emergency_call_is_logged_mailed_as_a_job_and_alerted() {
    use switchboard_core::emergency::notice::MailStatus;
    use switchboard_core::CallId;
    use switchboard_services::emergency::EmergencyPlaced;
    let services = Services::start(store().await).await.unwrap();
    let queue = leaf("Support");
    services.store.create_queue(&queue).await.unwrap();
    let mut dana = agent("dana", queue.id);
    dana.emergency_contacts = EmailList::parse("kin@example.org;friend@example.org").unwrap();
    services.store.create_user(&dana, None).await.unwrap();
    let lone = agent("lone", queue.id);
    services.store.create_user(&lone, None).await.unwrap();
    let supervisor = actor_of(&agent("sue", queue.id), BuiltinRole::Supervisor);
    let other_agent = actor_of(&lone, BuiltinRole::Agent);
    let mut watcher = services.events.subscribe();
    let at = Utc.with_ymd_and_hms(2026, 5, 4, 9, 30, 0).unwrap();
    let placed = |call: CallId, who: UserId| EmergencyPlaced {
        call,
        agent: who,
        at,
        dialled: "9-911".into(),
        number: "911".into(),
        test: false,
        callback: Some("15550190".into()),
        location: Some("12 Main St, Springfield IL 62701, US".into()),
    };

    let call = CallId::from_uuid(Uuid::new_v4());
    services.emergency.placed(placed(call, dana.id)).await;
    let event = watcher.recv().await.unwrap();
    let DomainEvent::EmergencyStarted(alert) = &event.event else {
        panic!("{:?}", event.event)
    };
    assert_eq!(
        (alert.call, alert.agent_name.as_str(), alert.number.as_str()),
        (call, "dana", "911")
    );
    assert!(event.visible_to(&supervisor));
    assert!(
        !event.visible_to(&other_agent),
        "another agent is not alerted"
    );
    assert_eq!(services.emergency.in_progress(&supervisor).len(), 1);
    assert!(services.emergency.in_progress(&other_agent).is_empty());
    let logged = services.store.get_emergency_call(call).await.unwrap();
    assert_eq!(
        (logged.mail_status, logged.dialled.as_str(), logged.ended_at),
        (MailStatus::Queued, "9-911", None)
    );
    let jobs = services.store.list_jobs(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (
            jobs[0].kind.as_str(),
            jobs[0].payload.clone(),
            jobs[0].run_at
        ),
        ("emergency_mail", call.to_string(), at)
    );

    let end = at + chrono::Duration::minutes(3);
    services.emergency.ended(call, end).await;
    let event = watcher.recv().await.unwrap();
    assert!(
        matches!(event.event, DomainEvent::EmergencyEnded { call: c, at: e, .. } if c == call && e == end)
    );
    assert_eq!(
        services
            .store
            .get_emergency_call(call)
            .await
            .unwrap()
            .ended_at,
        Some(end)
    );
    assert!(services.emergency.in_progress(&supervisor).is_empty());

    // No contacts: logged as such, no mail job. Its end arrives first.
    let quick = CallId::from_uuid(Uuid::new_v4());
    services.emergency.ended(quick, end).await;
    services.emergency.placed(placed(quick, lone.id)).await;
    let kinds: Vec<_> = [watcher.recv().await.unwrap(), watcher.recv().await.unwrap()]
        .iter()
        .map(|e| match e.event {
            DomainEvent::EmergencyStarted(_) => "started",
            DomainEvent::EmergencyEnded { .. } => "ended",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["started", "ended"]);
    let logged = services.store.get_emergency_call(quick).await.unwrap();
    assert_eq!(
        (logged.mail_status, logged.ended_at),
        (MailStatus::NoContacts, Some(end))
    );
    assert_eq!(services.store.list_jobs(10).await.unwrap().len(), 1);
    assert!(services.emergency.in_progress(&supervisor).is_empty());
}
