//! One storage story, run against every backend: SQLite (a fresh file) and PostgreSQL (a fresh
//! database on the server named by `SWITCHBOARD_TEST_POSTGRES`, default
//! `postgres://root@127.0.0.1:5432/postgres`). PostgreSQL being unreachable fails the test
//! unless `SWITCHBOARD_TEST_SKIP_POSTGRES=1` says to leave it out.

use chrono::{Duration, TimeZone, Utc};
use sqlx::Connection;
use std::sync::Arc;
use switchboard_core::chat::{AttachmentKind, ClientMessageId, ReservedProperties, Sender};
use switchboard_core::hours::{parse_time_zone, HoursScope, Schedule, WeeklyPeriod};
use switchboard_core::presence::{Presence, PresenceState};
use switchboard_core::{AttachmentId, IdentityId, JobId, MessageId, TicketId, VisitorId};
use switchboard_core::{
    BuiltinRole, CapacityProfile, CapacityProfileId, Channel, Contact, ContactId, ContactStatus,
    EmailList, EndedBy, Language, Name, Permission, PermissionSet, QueueId, QueueKind, QueueNode,
    Role, RoleKey, RoleScope, Team, TeamId, TreeError, User, UserId, Username, WrapUp,
};
use switchboard_store::{
    ApiKey, Attachment, CenterSettings, ChatSession, HoursRecord, Identity, IntegrationSettings,
    Job, JobState, NewMessage, NotificationSettings, SecretKeys, Session, Store, StoreError,
    Ticket, Tone, UploadBytes, Visitor,
};
use uuid::Uuid;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 30, 0).unwrap()
}

fn name(text: &str) -> Name {
    Name::parse("name", text).unwrap()
}

fn queue(channel: Channel, parent: Option<QueueId>, text: &str, kind: QueueKind) -> QueueNode {
    QueueNode {
        id: QueueId::from_uuid(Uuid::new_v4()),
        channel,
        parent,
        name: name(text),
        kind,
        position: 0,
        priority: 0,
        languages: vec![],
    }
}

fn user(username: &str, role: BuiltinRole) -> User {
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        username: Username::parse(username).unwrap(),
        display_name: name(username),
        email: None,
        role: RoleKey::parse(role.key()).unwrap(),
        teams: vec![],
        managed_teams: vec![],
        queues: vec![],
        languages: vec![],
        capacity_profile: None,
        emergency_contacts: EmailList::default(),
        site: None,
        presence: PresenceState::new(now()),
        disabled: false,
        totp_enabled: false,
        created_at: now(),
    }
}

/// The story every backend must tell the same way.
async fn story(store: Arc<dyn Store>) {
    let backend = store.backend();
    store.ping().await.unwrap();
    store.probe_write(now()).await.unwrap();
    store.probe_write(now()).await.unwrap();

    // Settings and built-in roles exist from the first migration.
    let mut settings = store.center_settings().await.unwrap();
    assert_eq!(settings.time_zone, "UTC");
    settings = CenterSettings {
        name: "Acme".into(),
        time_zone: "Europe/Paris".into(),
        languages: vec![
            Language::parse("fr").unwrap(),
            Language::parse("en").unwrap(),
        ],
        country: "DK".into(),
        callback_pool: "15550190-15550199, +4533000000".into(),
    };
    store.update_center_settings(&settings).await.unwrap();
    assert_eq!(store.center_settings().await.unwrap(), settings);
    let roles = store.list_roles().await.unwrap();
    for builtin in BuiltinRole::ALL {
        let stored = roles
            .iter()
            .find(|r| r.key.as_str() == builtin.key())
            .expect("built-in role stored");
        assert_eq!(
            *stored,
            builtin.role(),
            "{backend}: built-in role {}",
            builtin.key()
        );
    }

    // Custom roles: create, update, refuse duplicates and changes to built-ins.
    let qa = Role {
        key: RoleKey::parse("qa").unwrap(),
        name: "Quality".into(),
        permissions: PermissionSet::of(&[
            Permission::MonitorCallsListen,
            Permission::MonitorChatsView,
        ]),
        scope: RoleScope::AssignedTeams,
        builtin: false,
    };
    store.create_role(&qa).await.unwrap();
    assert!(
        matches!(store.create_role(&qa).await, Err(StoreError::Conflict(_))),
        "{backend}: duplicate role"
    );
    let mut admin = BuiltinRole::Admin.role();
    admin.name = "Renamed".into();
    assert!(
        matches!(
            store.update_role(&admin).await,
            Err(StoreError::NotFound(_))
        ),
        "{backend}: built-ins are fixed"
    );
    assert!(matches!(
        store.delete_role(&admin.key).await,
        Err(StoreError::NotFound(_))
    ));
    let mut qa2 = qa.clone();
    qa2.permissions = PermissionSet::of(&[Permission::MonitorCallsListen]);
    store.update_role(&qa2).await.unwrap();
    assert_eq!(store.get_role(&qa.key).await.unwrap(), qa2);

    // Teams.
    let red = Team {
        id: TeamId::from_uuid(Uuid::new_v4()),
        name: name("Red"),
        created_at: now(),
    };
    store.create_team(&red).await.unwrap();
    let clash = Team {
        id: TeamId::from_uuid(Uuid::new_v4()),
        name: name("red"),
        created_at: now(),
    };
    assert!(
        matches!(
            store.create_team(&clash).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: team names are unique ignoring case"
    );
    assert_eq!(store.list_teams().await.unwrap(), vec![red.clone()]);

    // Capacity profiles.
    let blended = CapacityProfile::new(
        CapacityProfileId::from_uuid(Uuid::new_v4()),
        name("Blended"),
        3,
        1,
        true,
    )
    .unwrap();
    store.create_capacity_profile(&blended).await.unwrap();
    assert_eq!(
        store.get_capacity_profile(blended.id).await.unwrap(),
        blended
    );

    // The queue tree, with its invariants enforced inside the write transaction.
    let billing = queue(Channel::Web, None, "Billing", QueueKind::Menu);
    let refunds = queue(Channel::Web, Some(billing.id), "Refunds", QueueKind::Leaf);
    store.create_queue(&billing).await.unwrap();
    store.create_queue(&refunds).await.unwrap();
    let under_leaf = queue(Channel::Web, Some(refunds.id), "Nope", QueueKind::Leaf);
    assert!(matches!(
        store.create_queue(&under_leaf).await,
        Err(StoreError::Tree(TreeError::ParentIsLeaf))
    ));
    let twin = queue(Channel::Web, Some(billing.id), "REFUNDS", QueueKind::Leaf);
    assert!(matches!(
        store.create_queue(&twin).await,
        Err(StoreError::Tree(TreeError::DuplicateName(_)))
    ));
    assert!(matches!(
        store.delete_queue(billing.id).await,
        Err(StoreError::Tree(TreeError::HasChildren))
    ));
    assert_eq!(
        store.list_queues().await.unwrap().len(),
        2,
        "{backend}: refused changes change nothing"
    );

    // Users with teams, queues, profile; the whole user is one write.
    let mut agent = user("agent1", BuiltinRole::Agent);
    agent.teams = vec![red.id];
    agent.queues = vec![refunds.id];
    agent.languages = vec![Language::parse("fr").unwrap()];
    agent.capacity_profile = Some(blended.id);
    agent.emergency_contacts = EmailList::parse("a@example.org;b@example.org").unwrap();
    store.create_user(&agent, Some("hash")).await.unwrap();
    assert_eq!(
        store.get_user(agent.id).await.unwrap(),
        agent,
        "{backend}: user round trip"
    );
    let mut manager = user("manager1", BuiltinRole::Manager);
    manager.managed_teams = vec![red.id];
    store.create_user(&manager, None).await.unwrap();
    assert_eq!(
        store
            .find_user(&manager.username)
            .await
            .unwrap()
            .unwrap()
            .managed_teams,
        vec![red.id]
    );
    let mut duplicate = user("agent1", BuiltinRole::Agent);
    assert!(matches!(
        store.create_user(&duplicate, None).await,
        Err(StoreError::Conflict(_))
    ));
    duplicate = user("agent9", BuiltinRole::Agent);
    duplicate.queues = vec![billing.id];
    assert!(
        matches!(
            store.create_user(&duplicate, None).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: menus take no agents"
    );
    assert!(
        store
            .find_user(&duplicate.username)
            .await
            .unwrap()
            .is_none(),
        "{backend}: a refused user leaves nothing behind"
    );
    duplicate.queues = vec![];
    duplicate.teams = vec![TeamId::from_uuid(Uuid::new_v4())];
    assert!(store.create_user(&duplicate, None).await.is_err());
    assert!(
        store
            .find_user(&duplicate.username)
            .await
            .unwrap()
            .is_none(),
        "{backend}: rolled back"
    );
    // An update that fails halfway leaves the user as they were.
    let mut broken = agent.clone();
    broken.display_name = name("Changed");
    broken.queues = vec![QueueId::from_uuid(Uuid::new_v4())];
    assert!(store.update_user(&broken).await.is_err());
    assert_eq!(
        store.get_user(agent.id).await.unwrap(),
        agent,
        "{backend}: failed update rolled back"
    );
    agent.role = qa.key.clone();
    store.update_user(&agent).await.unwrap();
    assert!(
        matches!(
            store.delete_role(&qa.key).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: role in use"
    );
    assert!(matches!(
        store.delete_capacity_profile(blended.id).await,
        Err(StoreError::Conflict(_))
    ));

    // Presence and credentials.
    let mut presence = agent.presence.clone();
    presence.set(Presence::Available, now());
    presence.force(Presence::DoNotDisturb, now() + Duration::minutes(1));
    store.save_presence(agent.id, &presence).await.unwrap();
    assert_eq!(store.get_user(agent.id).await.unwrap().presence, presence);
    store
        .set_totp(agent.id, Some("SECRET"), false)
        .await
        .unwrap();
    let creds = store.credentials(agent.id).await.unwrap();
    assert_eq!(
        (
            creds.password_hash.as_deref(),
            creds.totp_secret.as_deref(),
            creds.totp_enabled
        ),
        (Some("hash"), Some("SECRET"), false)
    );
    store
        .set_totp(agent.id, Some("SECRET"), true)
        .await
        .unwrap();
    assert!(store.get_user(agent.id).await.unwrap().totp_enabled);
    assert!(store.use_totp_step(agent.id, 100).await.unwrap());
    assert!(
        !store.use_totp_step(agent.id, 100).await.unwrap(),
        "{backend}: a TOTP step is used once"
    );
    assert!(!store.use_totp_step(agent.id, 99).await.unwrap());

    // Sessions: expiry, and a password change ends them.
    let session = Session {
        token_hash: "t1".into(),
        user_id: agent.id,
        created_at: now(),
        expires_at: now() + Duration::hours(8),
        mfa: true,
        step_up_at: None,
    };
    store.create_session(&session).await.unwrap();
    // A step-up is kept on the session (recordings need one in the last 15 minutes).
    store.step_up_session("t1", now()).await.unwrap();
    assert_eq!(
        store
            .get_session("t1", now())
            .await
            .unwrap()
            .unwrap()
            .step_up_at,
        Some(now())
    );
    assert!(matches!(
        store.step_up_session("nobody", now()).await,
        Err(StoreError::NotFound(_))
    ));
    let session = Session {
        step_up_at: Some(now()),
        ..session
    };
    assert_eq!(
        store.get_session("t1", now()).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store
            .get_session("t1", now() + Duration::hours(9))
            .await
            .unwrap(),
        None
    );
    store.set_password(agent.id, "hash2").await.unwrap();
    assert_eq!(
        store.get_session("t1", now()).await.unwrap(),
        None,
        "{backend}: password change ends sessions"
    );
    store
        .create_session(&Session {
            token_hash: "old".into(),
            expires_at: now(),
            ..session.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.purge_sessions(now()).await.unwrap(), 1);

    // Business hours: one schedule per scope.
    let schedule = Schedule::new(
        parse_time_zone("Europe/Paris").unwrap(),
        vec![WeeklyPeriod::parse("mon 09:00-17:00").unwrap()],
        vec![],
        vec![],
    )
    .unwrap();
    let global = HoursRecord {
        id: "global".into(),
        name: "Center".into(),
        scope: HoursScope::default(),
        schedule: schedule.clone(),
    };
    store.put_hours(&global).await.unwrap();
    let for_queue = HoursRecord {
        id: "refunds".into(),
        name: "Refunds".into(),
        scope: HoursScope {
            queue: Some(refunds.id),
            ..Default::default()
        },
        schedule,
    };
    store.put_hours(&for_queue).await.unwrap();
    let same_scope = HoursRecord {
        id: "other".into(),
        ..global.clone()
    };
    assert!(matches!(
        store.put_hours(&same_scope).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.list_hours().await.unwrap(),
        vec![global.clone(), for_queue.clone()]
    );

    // Custom statuses and API keys.
    store.create_custom_status("Training").await.unwrap();
    assert!(store.create_custom_status("Training").await.is_err());
    assert_eq!(
        store.list_custom_statuses().await.unwrap(),
        vec!["Training".to_owned()]
    );
    let key = ApiKey {
        key_id: "k1".into(),
        name: "CRM".into(),
        secret_hash: "h".into(),
        created_at: now(),
        scopes: vec!["recordings".into()],
    };
    store.create_api_key(&key).await.unwrap();
    assert_eq!(store.get_api_key("k1").await.unwrap(), Some(key));
    store.delete_api_key("k1").await.unwrap();
    assert_eq!(store.get_api_key("k1").await.unwrap(), None);

    // Contacts: queued, assigned and ended in one write each.
    let mut contact = Contact {
        id: ContactId::from_uuid(Uuid::new_v4()),
        channel: Channel::Web,
        queue: Some(refunds.id),
        issue: "Billing > Refunds".into(),
        priority: 0,
        language: Some(Language::parse("fr").unwrap()),
        status: ContactStatus::Queued,
        agent: None,
        customer: Some("Web User".into()),
        created_at: now(),
        assigned_at: None,
        ended_at: None,
        end_reason: None,
        transfers: 0,
        ended_by: None,
    };
    store.insert_contact(&contact).await.unwrap();
    assert_eq!(store.open_contacts().await.unwrap(), vec![contact.clone()]);
    contact.assign(agent.id, now() + Duration::seconds(20));
    store
        .update_contacts(std::slice::from_ref(&contact))
        .await
        .unwrap();
    assert_eq!(store.get_contact(contact.id).await.unwrap(), contact);
    let ghost = Contact {
        id: ContactId::from_uuid(Uuid::new_v4()),
        ..contact.clone()
    };
    let mut ended = contact.clone();
    ended.finish("ended_by_supervisor", now() + Duration::minutes(5));
    // A stuck contact ended by someone else names them (MON-7).
    ended.ended_by = Some(EndedBy {
        user: agent.id,
        name: "Ada Admin".into(),
    });
    assert!(store
        .update_contacts(&[ended.clone(), ghost])
        .await
        .is_err());
    assert_eq!(
        store.get_contact(contact.id).await.unwrap(),
        contact,
        "{backend}: a batch that fails writes nothing"
    );
    store
        .update_contacts(std::slice::from_ref(&ended))
        .await
        .unwrap();
    assert!(store.open_contacts().await.unwrap().is_empty());
    assert_eq!(store.recent_contacts(10).await.unwrap(), vec![ended]);

    // Wrap-up: the center's dispositions in order, one wrap-up per contact (the last wins).
    assert!(store.dispositions().await.unwrap().is_empty());
    let list = vec!["Resolved".to_owned(), "Call back".to_owned()];
    store.set_dispositions(&list).await.unwrap();
    assert_eq!(store.dispositions().await.unwrap(), list, "{backend}");
    store.set_dispositions(&list[1..]).await.unwrap();
    assert_eq!(store.dispositions().await.unwrap(), &list[1..], "{backend}");
    assert_eq!(store.wrap_up(contact.id).await.unwrap(), None);
    let mut wrap = WrapUp {
        contact: contact.id,
        agent: agent.id,
        disposition: Some("Call back".into()),
        note: "wants a refund".into(),
        at: now() + Duration::minutes(6),
    };
    store.put_wrap_up(&wrap).await.unwrap();
    wrap.note = "refund sent".into();
    wrap.disposition = None;
    store.put_wrap_up(&wrap).await.unwrap();
    assert_eq!(
        store.wrap_up(contact.id).await.unwrap(),
        Some(wrap.clone()),
        "{backend}"
    );
    let orphan = WrapUp {
        contact: ContactId::from_uuid(Uuid::new_v4()),
        ..wrap
    };
    assert!(
        matches!(
            store.put_wrap_up(&orphan).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: a wrap-up needs its contact"
    );
    assert!(
        matches!(
            store.delete_user(agent.id).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: history keeps the agent"
    );
    assert!(
        matches!(
            store.delete_queue(refunds.id).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: history keeps the queue"
    );

    chat_story(store.as_ref(), refunds.id, agent.id).await;
    voice_story(store.as_ref(), refunds.id).await;
    emergency_story(store.as_ref()).await;
    recordings_story(store.as_ref()).await;
    after_hours_story(store.as_ref()).await;
    offers_story(store.as_ref()).await;
    voicemail_story(store.as_ref()).await;
    callbacks_story(store.as_ref()).await;
    dashboards_story(store.as_ref()).await;
    emergency_log_story(store.as_ref(), agent.id).await;
    sms_story(store.as_ref(), agent.id).await;

    // Deleting a team removes memberships, not users.
    store.delete_team(red.id).await.unwrap();
    assert!(store.get_user(agent.id).await.unwrap().teams.is_empty());
    assert!(matches!(
        store.get_team(red.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Emergency calls: the registry (seeded, replaced whole, a refused replacement changes
/// nothing, a direct-routing trunk cannot be deleted), sites, agents' own addresses and the
/// effective location, callback leases.
async fn emergency_story(store: &dyn Store) {
    use switchboard_core::emergency::location::{AddressInput, CivicAddress, SetBy, Site};
    use switchboard_core::emergency::{EmergencyNumber, Lease, Registry};
    use switchboard_core::voice::{Trunk, TrunkDirection};
    use switchboard_core::{SiteId, TrunkId};
    let backend = store.backend();

    // The registry starts as the core's default.
    assert_eq!(
        store.emergency_registry().await.unwrap(),
        Registry::default(),
        "{backend}: seeded registry"
    );
    let trunk = Trunk {
        id: TrunkId::from_uuid(Uuid::new_v4()),
        name: name("Emergency carrier"),
        direction: TrunkDirection::Outbound,
        addresses: vec![],
        username: None,
        secret: None,
        host: Some("e911.example.net".into()),
        port: None,
        tcp: false,
        caller_id: None,
        dial_rules: vec![],
        max_calls: None,
        max_calls_per_second: None,
        header_flags: vec![],
        emergency: true,
    };
    store.put_trunk(&trunk).await.unwrap();
    assert!(store.get_trunk(trunk.id).await.unwrap().emergency);
    // Kept in the order given, not sorted.
    let registry = Registry {
        numbers: vec![
            EmergencyNumber::new("GB", "999", false, None).unwrap(),
            EmergencyNumber::new("US", "911", false, Some(trunk.id)).unwrap(),
            EmergencyNumber::new("US", "933", true, None).unwrap(),
        ],
    };
    store.set_emergency_registry(&registry).await.unwrap();
    assert_eq!(
        store.emergency_registry().await.unwrap(),
        registry,
        "{backend}"
    );
    // A replacement naming a trunk that does not exist, or a number twice, changes nothing.
    let ghost = Registry {
        numbers: vec![
            EmergencyNumber::new("DK", "112", false, None).unwrap(),
            EmergencyNumber::new("US", "911", false, Some(TrunkId::from_uuid(Uuid::new_v4())))
                .unwrap(),
        ],
    };
    assert!(
        matches!(
            store.set_emergency_registry(&ghost).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: unknown trunk"
    );
    let twice = Registry {
        numbers: vec![
            EmergencyNumber::new("DK", "112", false, None).unwrap(),
            EmergencyNumber::new("DK", "112", true, None).unwrap(),
        ],
    };
    assert!(matches!(
        store.set_emergency_registry(&twice).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.emergency_registry().await.unwrap(),
        registry,
        "{backend}: refused replacements changed nothing"
    );
    // A trunk that an emergency number routes through stays.
    assert!(
        matches!(
            store.delete_trunk(trunk.id).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: direct-routing trunk deleted"
    );
    store
        .set_emergency_registry(&Registry::default())
        .await
        .unwrap();
    assert_eq!(
        store.emergency_registry().await.unwrap(),
        Registry::default()
    );
    store.delete_trunk(trunk.id).await.unwrap();

    // Sites.
    let address = |street: &str, number: &str| {
        CivicAddress::parse(&AddressInput {
            country: "US".into(),
            state: "IL".into(),
            city: "Springfield".into(),
            street: street.into(),
            number: number.into(),
            postcode: "62701".into(),
            floor: "2".into(),
            method: "DHCP".into(),
            ..AddressInput::default()
        })
        .unwrap()
    };
    let mut office = Site {
        id: SiteId::from_uuid(Uuid::new_v4()),
        name: name("Office"),
        address: address("Main Street", "100"),
    };
    let annex = Site {
        id: SiteId::from_uuid(Uuid::new_v4()),
        name: name("Annex"),
        address: address("Elm Street", "7"),
    };
    store.create_site(&office).await.unwrap();
    store.create_site(&annex).await.unwrap();
    assert_eq!(
        store.get_site(office.id).await.unwrap(),
        office,
        "{backend}"
    );
    assert_eq!(
        store.list_sites().await.unwrap(),
        vec![annex.clone(), office.clone()],
        "{backend}: sites by name"
    );
    let same_name = Site {
        id: SiteId::from_uuid(Uuid::new_v4()),
        ..office.clone()
    };
    assert!(matches!(
        store.create_site(&same_name).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.update_site(&same_name).await,
        Err(StoreError::NotFound(_))
    ));
    office.name = name("Head office");
    office.address = address("Main Street", "101");
    store.update_site(&office).await.unwrap();
    assert_eq!(store.get_site(office.id).await.unwrap(), office);
    let renamed_like_office = Site {
        name: office.name.clone(),
        ..annex.clone()
    };
    assert!(matches!(
        store.update_site(&renamed_like_office).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.get_site(SiteId::from_uuid(Uuid::new_v4())).await,
        Err(StoreError::NotFound(_))
    ));

    // A user on a site is located there until they have an address of their own.
    let mut carol = user("carol", BuiltinRole::Agent);
    carol.site = Some(office.id);
    store.create_user(&carol, None).await.unwrap();
    assert_eq!(
        store.get_user(carol.id).await.unwrap().site,
        Some(office.id)
    );
    let mut dave = user("dave", BuiltinRole::Agent);
    dave.site = Some(SiteId::from_uuid(Uuid::new_v4()));
    assert!(
        matches!(
            store.create_user(&dave, None).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: user on a missing site"
    );
    dave.site = None;
    store.create_user(&dave, None).await.unwrap();
    assert_eq!(store.location_of(dave.id).await.unwrap(), None);
    assert_eq!(store.agent_address(carol.id).await.unwrap(), None);
    assert_eq!(
        store.location_of(carol.id).await.unwrap(),
        Some(office.address.clone())
    );
    let home = address("Oak Avenue", "12");
    store
        .set_agent_address(carol.id, &home, SetBy::Agent)
        .await
        .unwrap();
    assert_eq!(
        store.agent_address(carol.id).await.unwrap(),
        Some((home.clone(), SetBy::Agent))
    );
    assert_eq!(
        store.location_of(carol.id).await.unwrap(),
        Some(home.clone())
    );
    let desk = address("Oak Avenue", "14");
    store
        .set_agent_address(carol.id, &desk, SetBy::Admin)
        .await
        .unwrap();
    assert_eq!(
        store.agent_address(carol.id).await.unwrap(),
        Some((desk.clone(), SetBy::Admin)),
        "{backend}: replaced"
    );
    assert!(matches!(
        store
            .set_agent_address(UserId::from_uuid(Uuid::new_v4()), &home, SetBy::Admin)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // A site with users on it stays; moving them away lets it go.
    assert!(
        matches!(
            store.delete_site(office.id).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: site in use deleted"
    );
    store.clear_agent_address(carol.id).await.unwrap();
    store.clear_agent_address(carol.id).await.unwrap();
    assert_eq!(
        store.location_of(carol.id).await.unwrap(),
        Some(office.address.clone())
    );
    carol.site = Some(annex.id);
    store.update_user(&carol).await.unwrap();
    assert_eq!(
        store.location_of(carol.id).await.unwrap(),
        Some(annex.address.clone())
    );
    store.delete_site(office.id).await.unwrap();
    assert!(matches!(
        store.delete_site(office.id).await,
        Err(StoreError::NotFound(_))
    ));

    // Callback leases: one row per number, replaced when the number is leased again.
    assert!(store.callback_leases().await.unwrap().is_empty());
    let lease = |number: &str, agent: UserId, minutes: i64| Lease {
        number: number.into(),
        agent,
        leased_at: now() + Duration::minutes(minutes),
        expires_at: now() + Duration::minutes(minutes + 60),
    };
    store
        .put_lease(&lease("15550191", carol.id, 0))
        .await
        .unwrap();
    store
        .put_lease(&lease("15550190", dave.id, 5))
        .await
        .unwrap();
    assert_eq!(
        store.callback_leases().await.unwrap(),
        vec![
            lease("15550190", dave.id, 5),
            lease("15550191", carol.id, 0)
        ],
        "{backend}"
    );
    store
        .put_lease(&lease("15550191", dave.id, 70))
        .await
        .unwrap();
    assert_eq!(
        store.callback_leases().await.unwrap(),
        vec![
            lease("15550190", dave.id, 5),
            lease("15550191", dave.id, 70)
        ],
        "{backend}: upserted by number"
    );
    assert!(matches!(
        store
            .put_lease(&lease("15550192", UserId::from_uuid(Uuid::new_v4()), 0))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.callback_leases().await.unwrap().len(), 2);
    assert_eq!(
        store.center_settings().await.unwrap().callback_pool,
        "15550190-15550199, +4533000000"
    );
}

/// The emergency log and the notification template: calls logged, ended once, their mail's
/// state kept, listed newest first by agent and time; the default template until one is saved.
async fn emergency_log_story(store: &dyn Store, agent: UserId) {
    use switchboard_core::emergency::notice::{MailStatus, Template};
    use switchboard_core::CallId;
    use switchboard_store::{EmergencyCall, EmergencyFilter};
    let backend = store.backend();

    assert_eq!(
        store.emergency_template().await.unwrap(),
        Template::default(),
        "{backend}: the default until one is saved"
    );
    let template = Template::parse("{agent_name} dialled {number}", "At {time}.\nBye").unwrap();
    store
        .put_emergency_template(&template, now())
        .await
        .unwrap();
    let changed = Template::parse("Emergency: {agent_name}", "At {time}, {location}.").unwrap();
    store.put_emergency_template(&changed, now()).await.unwrap();
    assert_eq!(
        store.emergency_template().await.unwrap(),
        changed,
        "{backend}"
    );

    let other = UserId::from_uuid(Uuid::new_v4());
    let call = |minutes: i64, who: UserId| EmergencyCall {
        call: CallId::from_uuid(Uuid::new_v4()),
        agent: who,
        agent_name: "Dana".into(),
        started_at: now() + Duration::minutes(minutes),
        ended_at: None,
        dialled: "9-911".into(),
        number: "911".into(),
        test: false,
        callback_number: Some("15550190".into()),
        location: Some("12 Main St, Springfield IL 62701, US".into()),
        mail_status: MailStatus::Queued,
        mail_error: None,
        mail_sent_at: None,
    };
    let first = call(0, agent);
    let second = EmergencyCall {
        number: "933".into(),
        dialled: "933".into(),
        test: true,
        callback_number: None,
        location: None,
        mail_status: MailStatus::NoContacts,
        ..call(10, agent)
    };
    let third = call(20, other);
    for c in [&first, &second, &third] {
        store.insert_emergency_call(c).await.unwrap();
    }
    assert!(
        matches!(
            store.insert_emergency_call(&first).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: a call is logged once"
    );
    assert_eq!(store.get_emergency_call(second.call).await.unwrap(), second);

    // Ended once: a second end keeps the first.
    let ended = now() + Duration::minutes(4);
    store.end_emergency_call(first.call, ended).await.unwrap();
    store
        .end_emergency_call(first.call, ended + Duration::minutes(1))
        .await
        .unwrap();
    assert!(matches!(
        store
            .end_emergency_call(CallId::from_uuid(Uuid::new_v4()), ended)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // The mail fails, then goes.
    store
        .set_emergency_mail(
            first.call,
            MailStatus::Failed,
            Some("connection refused"),
            now(),
        )
        .await
        .unwrap();
    let failed = store.get_emergency_call(first.call).await.unwrap();
    assert_eq!(
        (
            failed.mail_status,
            failed.mail_error.as_deref(),
            failed.ended_at
        ),
        (MailStatus::Failed, Some("connection refused"), Some(ended)),
        "{backend}"
    );
    let sent_at = now() + Duration::seconds(30);
    store
        .set_emergency_mail(first.call, MailStatus::Sent, None, sent_at)
        .await
        .unwrap();
    let sent = store.get_emergency_call(first.call).await.unwrap();
    assert_eq!(
        (sent.mail_status, sent.mail_error, sent.mail_sent_at),
        (MailStatus::Sent, None, Some(sent_at)),
        "{backend}"
    );

    let list = |filter: EmergencyFilter| async move {
        store
            .list_emergency_calls(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.call)
            .collect::<Vec<_>>()
    };
    let all = EmergencyFilter {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        list(all.clone()).await,
        vec![third.call, second.call, first.call],
        "{backend}: newest first"
    );
    assert_eq!(
        list(EmergencyFilter {
            agent: Some(agent),
            ..all.clone()
        })
        .await,
        vec![second.call, first.call]
    );
    assert_eq!(
        list(EmergencyFilter {
            from: Some(now() + Duration::minutes(10)),
            to: Some(now() + Duration::minutes(20)),
            ..all.clone()
        })
        .await,
        vec![second.call],
        "{backend}: from is inclusive, to is not"
    );
    assert_eq!(
        list(EmergencyFilter {
            in_progress: true,
            ..all.clone()
        })
        .await,
        vec![third.call, second.call]
    );
    assert_eq!(
        list(EmergencyFilter { limit: 1, ..all }).await,
        vec![third.call]
    );
}

/// Dashboards: a seeded day of contacts with known outcomes in one queue (and some outside
/// the day or the queue) gives the expected service level, abandon rate and handle time, for
/// the queue and for a team whose member takes its contacts; presence changes are kept as a
/// history that gives agents by status.
async fn dashboards_story(store: &dyn Store) {
    use switchboard_core::dashboard::{compute, Range, Scope, Threshold};
    let backend = store.backend();
    let day = |h: u32, m: u32, s: u32| Utc.with_ymd_and_hms(2026, 6, 1, h, m, s).unwrap();
    let sales = queue(Channel::Voice, None, "Dashboard sales", QueueKind::Leaf);
    let other = queue(Channel::Voice, None, "Dashboard other", QueueKind::Leaf);
    store.create_queue(&sales).await.unwrap();
    store.create_queue(&other).await.unwrap();
    let team = Team {
        id: TeamId::from_uuid(Uuid::new_v4()),
        name: name("Dashboard team"),
        created_at: now(),
    };
    store.create_team(&team).await.unwrap();
    let mut dana = user("dashboard-dana", BuiltinRole::Agent);
    dana.teams = vec![team.id];
    dana.queues = vec![sales.id];
    store.create_user(&dana, None).await.unwrap();

    let mut presence = PresenceState::new(day(7, 0, 0));
    presence.set(Presence::Available, day(7, 0, 0));
    store.save_presence(dana.id, &presence).await.unwrap();
    presence.set(Presence::Break, day(12, 0, 0));
    store.save_presence(dana.id, &presence).await.unwrap();

    // (queue, arrival, seconds to an agent or to abandoning, seconds talking; None: abandoned)
    let seeded = [
        (sales.id, day(9, 0, 0), 10, Some(60)),
        (sales.id, day(9, 10, 0), 20, Some(120)),
        (sales.id, day(9, 20, 0), 25, Some(180)),
        (sales.id, day(10, 0, 0), 90, Some(240)),
        (sales.id, day(10, 30, 0), 45, None),
        (sales.id, day(11, 0, 0), 5, None),
        (sales.id, day(11, 30, 0), 15, Some(300)),
        (other.id, day(9, 0, 0), 1, Some(1)),
        (sales.id, day(0, 0, 0) - Duration::seconds(1), 1, Some(1)),
    ];
    for (queue, created, wait, talk) in seeded {
        let mut contact = Contact {
            id: ContactId::from_uuid(Uuid::new_v4()),
            channel: Channel::Voice,
            queue: Some(queue),
            issue: "Sales".into(),
            priority: 0,
            language: None,
            status: ContactStatus::Queued,
            agent: None,
            customer: None,
            created_at: created,
            assigned_at: None,
            ended_at: None,
            end_reason: None,
            transfers: 0,
            ended_by: None,
        };
        let answered = created + Duration::seconds(wait);
        match talk {
            Some(talk) => {
                contact.assign(dana.id, answered);
                contact.finish("completed", answered + Duration::seconds(talk));
            }
            None => contact.finish("abandoned", answered),
        }
        store.insert_contact(&contact).await.unwrap();
    }

    let range = Range::new(day(0, 0, 0), day(0, 0, 0) + Duration::days(1)).unwrap();
    for scope in [Scope::Queue(sales.id), Scope::Team(team.id)] {
        let contacts = store.dashboard_contacts(scope, range).await.unwrap();
        let changes = store.dashboard_presence(scope, range).await.unwrap();
        let dashboard = compute(range, Threshold::default(), &contacts, &changes);
        let t = &dashboard.totals;
        assert_eq!(
            (t.offered, t.answered, t.abandoned),
            (7, 5, 2),
            "{backend}: {scope:?}"
        );
        // 10 s, 20 s and 15 s answered within 20 s, of 5 answered and 2 abandoned.
        assert_eq!(t.service_level, Some(3.0 / 7.0), "{backend}: service level");
        assert_eq!(t.abandon_rate, Some(2.0 / 7.0), "{backend}: abandon rate");
        assert_eq!(t.average_handle_ms, Some(180_000), "{backend}: handle time");
        assert_eq!(t.average_wait_ms, Some(32_000), "{backend}: wait");
        assert_eq!(t.p90_wait_ms, Some(90_000), "{backend}: p90 wait");
        assert_eq!(dashboard.hours[9].figures.offered, 3);
        assert_eq!(
            dashboard.hours[8].agents.get("available"),
            Some(&1),
            "{backend}: presence"
        );
        assert_eq!(
            dashboard.hours[12].agents.get("break"),
            Some(&1),
            "{backend}: presence"
        );
    }
    // The next day starts from the last change before it.
    let next = Range::new(
        day(0, 0, 0) + Duration::days(1),
        day(0, 0, 0) + Duration::days(2),
    )
    .unwrap();
    let changes = store
        .dashboard_presence(Scope::Team(team.id), next)
        .await
        .unwrap();
    assert_eq!(
        changes.len(),
        1,
        "{backend}: only the last change before the range"
    );
    assert_eq!(changes[0].presence, "break");
}

/// Recordings: metadata with paused spans kept whole, per call in order, the oldest for
/// retention, interrupted ones after a restart, and queues' `record_calls`.
/// After-hours deflection: a channel's rule and a queue's, replaced in place, their actions
/// and messages read back as written, a rule gone with its queue, and the transfer setting.
async fn after_hours_story(store: &dyn Store) {
    use switchboard_core::after_hours::{AfterHoursAction, AfterHoursMessage, DeflectionRule};
    use switchboard_core::voice::PhoneNumber;
    let backend = store.backend();
    let day = queue(Channel::Voice, None, "Daytime", QueueKind::Leaf);
    let night = queue(Channel::Voice, None, "Night line", QueueKind::Leaf);
    store.create_queue(&day).await.unwrap();
    store.create_queue(&night).await.unwrap();
    let nodes = store.list_queues().await.unwrap();
    let messages = vec![
        AfterHoursMessage::new(None, "We are closed.").unwrap(),
        AfterHoursMessage::new(Some(Language::parse("fr").unwrap()), "Nous sommes fermés.")
            .unwrap(),
    ];
    let center = DeflectionRule::new(
        None,
        Channel::Voice,
        true,
        AfterHoursAction::Message,
        messages.clone(),
        &nodes,
    )
    .unwrap();
    let to_night = DeflectionRule::new(
        Some(day.id),
        Channel::Voice,
        true,
        AfterHoursAction::Queue(night.id),
        vec![],
        &nodes,
    )
    .unwrap();
    store.put_deflection_rule(&to_night).await.unwrap();
    store.put_deflection_rule(&center).await.unwrap();
    assert_eq!(
        store.list_deflection_rules().await.unwrap(),
        vec![center.clone(), to_night],
        "{backend}"
    );
    // Replacing the queue's rule keeps one row per queue and channel.
    let forward = DeflectionRule::new(
        Some(day.id),
        Channel::Voice,
        false,
        AfterHoursAction::Forward(PhoneNumber::parse("number", "+15550199").unwrap()),
        messages,
        &nodes,
    )
    .unwrap();
    store.put_deflection_rule(&forward).await.unwrap();
    assert_eq!(
        store.list_deflection_rules().await.unwrap(),
        vec![center.clone(), forward],
        "{backend}"
    );
    // A web rule's offers are kept; a scheduled call into a deleted queue is offered no more.
    use switchboard_core::after_hours::ChatOffer;
    let web = DeflectionRule::new(
        None,
        Channel::Web,
        true,
        AfterHoursAction::Message,
        vec![],
        &nodes,
    )
    .unwrap()
    .with_offers(
        vec![ChatOffer::ScheduledCall { queue: day.id }, ChatOffer::Email],
        &nodes,
    )
    .unwrap();
    store.put_deflection_rule(&web).await.unwrap();
    let stored = store.list_deflection_rules().await.unwrap();
    assert_eq!(
        stored.iter().find(|r| r.channel == Channel::Web),
        Some(&web),
        "{backend}"
    );
    // A rule goes with its queue.
    store.delete_queue(day.id).await.unwrap();
    let stored = store.list_deflection_rules().await.unwrap();
    let web_offers = stored
        .iter()
        .find(|r| r.channel == Channel::Web)
        .unwrap()
        .offers()
        .to_vec();
    assert_eq!(web_offers, vec![ChatOffer::Email], "{backend}");
    store
        .delete_deflection_rule(None, Channel::Web)
        .await
        .unwrap();
    assert_eq!(
        store.list_deflection_rules().await.unwrap(),
        vec![center],
        "{backend}"
    );
    store
        .delete_deflection_rule(None, Channel::Voice)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_deflection_rule(None, Channel::Voice).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_deflection_rules().await.unwrap().is_empty());
    store.delete_queue(night.id).await.unwrap();
    assert!(
        !store.after_hours_transfers().await.unwrap(),
        "{backend}: off until set"
    );
    store.set_after_hours_transfers(true).await.unwrap();
    assert!(store.after_hours_transfers().await.unwrap(), "{backend}");
    store.set_after_hours_transfers(false).await.unwrap();
    assert!(!store.after_hours_transfers().await.unwrap(), "{backend}");
}

async fn offers_story(store: &dyn Store) {
    use switchboard_core::offer::OfferSettings;
    let backend = store.backend();
    assert_eq!(
        store.offer_settings().await.unwrap(),
        OfferSettings::default(),
        "{backend}: nothing is offered until set"
    );
    let set = OfferSettings::new(Some("help@example.com"), Some(300)).unwrap();
    store.set_offer_settings(&set).await.unwrap();
    assert_eq!(store.offer_settings().await.unwrap(), set, "{backend}");
    // The other center settings are untouched by the offers', and theirs by a center edit.
    let center = store.center_settings().await.unwrap();
    store.update_center_settings(&center).await.unwrap();
    assert_eq!(store.offer_settings().await.unwrap(), set, "{backend}");
    store
        .set_offer_settings(&OfferSettings::default())
        .await
        .unwrap();
    assert_eq!(
        store.offer_settings().await.unwrap(),
        OfferSettings::default(),
        "{backend}"
    );
}

/// Voicemail (AHD-7): a voicemail rule keeps its length; voicemails are stored once each,
/// found by their contact, outlive their queue, and their contacts survive a restart's closing
/// of interrupted calls.
async fn voicemail_story(store: &dyn Store) {
    use switchboard_core::after_hours::{AfterHoursAction, DeflectionRule};
    use switchboard_core::{CallId, RecordingId};
    use switchboard_store::Voicemail;
    let backend = store.backend();
    let closed = queue(Channel::Voice, None, "Voicemail line", QueueKind::Leaf);
    let unserved = queue(Channel::Voice, None, "Unserved line", QueueKind::Leaf);
    store.create_queue(&closed).await.unwrap();
    store.create_queue(&unserved).await.unwrap();
    let nodes = store.list_queues().await.unwrap();
    let rule = DeflectionRule::new(
        Some(closed.id),
        Channel::Voice,
        true,
        AfterHoursAction::Voicemail { max_seconds: 45 },
        vec![],
        &nodes,
    )
    .unwrap();
    store.put_deflection_rule(&rule).await.unwrap();
    assert_eq!(
        store.list_deflection_rules().await.unwrap(),
        vec![rule],
        "{backend}"
    );

    let contact = Contact {
        id: ContactId::from_uuid(Uuid::new_v4()),
        channel: Channel::Voice,
        queue: Some(closed.id),
        issue: "Voicemail line".into(),
        priority: 0,
        language: None,
        status: ContactStatus::Queued,
        agent: None,
        customer: Some("+15550123".into()),
        created_at: now(),
        assigned_at: None,
        ended_at: None,
        end_reason: None,
        transfers: 0,
        ended_by: None,
    };
    store.insert_contact(&contact).await.unwrap();
    let routed = Voicemail {
        recording: RecordingId::from_uuid(Uuid::new_v4()),
        call: CallId::from_uuid(Uuid::new_v4()),
        queue: Some(closed.id),
        queue_path: "Voicemail line".into(),
        caller: "+15550123".into(),
        duration_ms: 12_345,
        blob_key: "rec-1".into(),
        contact: Some(contact.id),
        created_at: now(),
    };
    let to_crm = Voicemail {
        recording: RecordingId::from_uuid(Uuid::new_v4()),
        call: CallId::from_uuid(Uuid::new_v4()),
        queue: Some(unserved.id),
        queue_path: "Unserved line".into(),
        contact: None,
        created_at: now() + Duration::seconds(5),
        blob_key: "rec-2".into(),
        ..routed.clone()
    };
    store.insert_voicemail(&routed).await.unwrap();
    store.insert_voicemail(&to_crm).await.unwrap();
    assert!(
        matches!(
            store.insert_voicemail(&routed).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: one voicemail per recording"
    );
    assert_eq!(store.get_voicemail(routed.recording).await.unwrap(), routed);
    assert!(matches!(
        store
            .get_voicemail(RecordingId::from_uuid(Uuid::new_v4()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.voicemail_of_contact(contact.id).await.unwrap(),
        Some(routed.clone())
    );
    assert_eq!(store.voicemail_contacts().await.unwrap(), vec![contact.id]);
    assert_eq!(
        store.list_voicemails(10).await.unwrap(),
        vec![to_crm.clone(), routed.clone()],
        "{backend}: newest first"
    );
    // A restart closes the calls it interrupted, never a voicemail waiting for an agent.
    store.close_interrupted_calls(now()).await.unwrap();
    assert_eq!(
        store.get_contact(contact.id).await.unwrap().status,
        ContactStatus::Queued,
        "{backend}"
    );
    // A voicemail outlives its queue.
    store.delete_queue(unserved.id).await.unwrap();
    assert_eq!(
        store.get_voicemail(to_crm.recording).await.unwrap().queue,
        None,
        "{backend}"
    );
    store
        .delete_deflection_rule(Some(closed.id), Channel::Voice)
        .await
        .unwrap();
}

/// Callbacks: booked, claimed in slot order under a lease that keeps others off until it
/// lapses, moved on one checked step at a time (a stale step is refused, so nothing is dialled
/// twice), with every attempt on the row.
async fn callbacks_story(store: &dyn Store) {
    use switchboard_core::callback::{
        AfterAttempt, AttemptOutcome, Callback, CallbackRequest, CallbackStatus, RetryPolicy,
    };
    use switchboard_core::CallbackId;
    let backend = store.backend();
    let line = queue(Channel::Voice, None, "Callback line", QueueKind::Leaf);
    store.create_queue(&line).await.unwrap();
    let slot = |minutes| now() + Duration::minutes(minutes);
    let book = |minutes: i64, priority| {
        Callback::schedule(
            CallbackId::from_uuid(Uuid::new_v4()),
            CallbackRequest {
                queue: line.id,
                number: "+33612345678".into(),
                priority,
                slot: slot(minutes),
                policy: RetryPolicy::new(2, Duration::minutes(10)).unwrap(),
            },
            &[slot(minutes)],
            now(),
        )
        .unwrap()
    };
    let later = book(60, 0);
    let first = book(30, 0);
    let urgent = book(30, 9);
    let waiting = Callback::from_queue(
        CallbackId::from_uuid(Uuid::new_v4()),
        line.id,
        "+4915112345678",
        0,
        now() - Duration::minutes(5),
        RetryPolicy::default(),
        slot(45),
    )
    .unwrap();
    for callback in [&later, &first, &urgent, &waiting] {
        store.insert_callback(callback).await.unwrap();
    }
    assert!(
        store.insert_callback(&first).await.is_err(),
        "{backend}: one row an id"
    );
    assert_eq!(
        store.get_callback(waiting.id).await.unwrap(),
        waiting,
        "{backend}"
    );
    assert!(matches!(
        store
            .get_callback(CallbackId::from_uuid(Uuid::new_v4()))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.next_callback_due().await.unwrap(),
        Some(slot(30)),
        "{backend}"
    );
    // Nothing is due before its slot.
    let lease = Duration::seconds(30);
    assert!(store
        .claim_due_callbacks(slot(29), slot(29) + lease, 10)
        .await
        .unwrap()
        .is_empty());
    // Due ones in slot order (then priority), at most the limit.
    let claimed = store
        .claim_due_callbacks(slot(50), slot(50) + lease, 2)
        .await
        .unwrap();
    let ids: Vec<_> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![urgent.id, first.id], "{backend}");
    // Held by the lease: another claim gets only the rest.
    let rest = store
        .claim_due_callbacks(slot(50), slot(50) + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![waiting.id],
        "{backend}"
    );
    // A claimer that died: once the lease lapses the callback is claimed again.
    let again = store
        .claim_due_callbacks(slot(50) + lease, slot(51) + lease, 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![urgent.id, first.id, waiting.id],
        "{backend}"
    );
    // Queued, then an agent picked: the attempt is on the row.
    let mut moving = again[0].clone();
    moving
        .queued(ContactId::from_uuid(Uuid::new_v4()), slot(51))
        .unwrap();
    store
        .save_callback(&moving, CallbackStatus::Scheduled)
        .await
        .unwrap();
    // The same step again (a second scheduler, a replay) is refused.
    assert!(
        matches!(
            store
                .save_callback(&moving, CallbackStatus::Scheduled)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}"
    );
    let agent = UserId::from_uuid(Uuid::new_v4());
    moving.dialing(agent, slot(52)).unwrap();
    store
        .save_callback(&moving, CallbackStatus::Queued)
        .await
        .unwrap();
    let stored = store.get_callback(moving.id).await.unwrap();
    assert_eq!(stored.status, CallbackStatus::Dialing, "{backend}");
    assert_eq!(stored.attempts.len(), 1, "{backend}");
    assert_eq!(stored.attempts[0].agent, Some(agent), "{backend}");
    assert_eq!(stored.attempts[0].outcome, None, "{backend}");
    // No answer: retried after the policy's delay, and the queued one is not claimable.
    let next = moving
        .attempt_ended(AttemptOutcome::NoAnswer, slot(53))
        .unwrap();
    assert_eq!(next, AfterAttempt::Retry(slot(63)));
    store
        .save_callback(&moving, CallbackStatus::Dialing)
        .await
        .unwrap();
    assert_eq!(
        store.get_callback(moving.id).await.unwrap(),
        moving,
        "{backend}"
    );
    assert!(store
        .claim_due_callbacks(slot(62), slot(62) + lease, 10)
        .await
        .unwrap()
        .iter()
        .all(|c| c.id != moving.id));
    let listed = store
        .list_callbacks(Some(CallbackStatus::Scheduled), 100)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first.id, waiting.id, later.id, moving.id],
        "{backend}: by due time"
    );
    let mut cancelled = store.get_callback(later.id).await.unwrap();
    cancelled.cancel(slot(55)).unwrap();
    store
        .save_callback(&cancelled, CallbackStatus::Scheduled)
        .await
        .unwrap();
    assert_eq!(
        store
            .list_callbacks(Some(CallbackStatus::Cancelled), 100)
            .await
            .unwrap(),
        vec![cancelled],
        "{backend}"
    );
    assert_eq!(
        store.list_callbacks(None, 100).await.unwrap().len(),
        4,
        "{backend}"
    );
    // A queue's waiting callers may ask for callbacks unless it says not.
    assert!(store
        .queues_without_queue_callbacks()
        .await
        .unwrap()
        .is_empty());
    store.set_queue_callbacks(line.id, false).await.unwrap();
    assert_eq!(
        store.queues_without_queue_callbacks().await.unwrap(),
        vec![line.id],
        "{backend}"
    );
    store.set_queue_callbacks(line.id, true).await.unwrap();
    assert!(
        store
            .queues_without_queue_callbacks()
            .await
            .unwrap()
            .is_empty(),
        "{backend}"
    );
    store.set_queue_callbacks(line.id, false).await.unwrap();
    // Callbacks (and the setting) go with their queue.
    store.delete_queue(line.id).await.unwrap();
    assert!(
        store
            .queues_without_queue_callbacks()
            .await
            .unwrap()
            .is_empty(),
        "{backend}"
    );
    assert!(
        store.list_callbacks(None, 100).await.unwrap().is_empty(),
        "{backend}"
    );
    assert_eq!(store.next_callback_due().await.unwrap(), None, "{backend}");
}

async fn recordings_story(store: &dyn Store) {
    use switchboard_core::voice::{Recording, RecordingStatus};
    use switchboard_core::{CallId, RecordingId};
    let call = CallId::from_uuid(Uuid::new_v4());
    let recording = |minutes_ago: i64| Recording {
        id: RecordingId::from_uuid(Uuid::new_v4()),
        call,
        agent: None,
        started_at: now() - Duration::minutes(minutes_ago),
        ended_at: None,
        duration_ms: 0,
        size_bytes: 0,
        paused: Vec::new(),
        status: RecordingStatus::Recording,
        blob_key: "rec-x".into(),
    };
    let (first, second) = (recording(20), recording(10));
    store.put_recording(&second).await.unwrap();
    store.put_recording(&first).await.unwrap();
    let done = Recording {
        ended_at: Some(now()),
        duration_ms: 600_000,
        size_bytes: 19_200_044,
        paused: vec![(1000, 2500), (7000, 9000)],
        status: RecordingStatus::Complete,
        ..first.clone()
    };
    store.put_recording(&done).await.unwrap();
    assert_eq!(store.get_recording(first.id).await.unwrap(), done);
    assert_eq!(
        store.recordings_of_call(call).await.unwrap(),
        vec![done.clone(), second.clone()]
    );
    assert_eq!(
        store
            .recordings_started_before(now() - Duration::minutes(15), 10)
            .await
            .unwrap(),
        vec![done.clone()]
    );
    assert_eq!(store.interrupt_recordings().await.unwrap(), 1);
    assert_eq!(
        store.get_recording(second.id).await.unwrap().status,
        RecordingStatus::Interrupted
    );
    store.delete_recording(first.id).await.unwrap();
    assert!(matches!(
        store.get_recording(first.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_recording(first.id).await,
        Err(StoreError::NotFound(_))
    ));
    let sales = queue(Channel::Voice, None, "Recorded sales", QueueKind::Leaf);
    store.create_queue(&sales).await.unwrap();
    assert!(store.queue_records_calls(sales.id).await.unwrap());
    store.set_queue_recording(sales.id, false).await.unwrap();
    assert!(!store.queue_records_calls(sales.id).await.unwrap());
    assert_eq!(store.unrecorded_queues().await.unwrap(), vec![sales.id]);
    store.set_queue_recording(sales.id, true).await.unwrap();
    assert!(store.unrecorded_queues().await.unwrap().is_empty());
    call_ticket_story(store, call, second.id).await;
}

/// A call's ticket (one per call) and its recording's upload, which outlives the recording.
async fn call_ticket_story(
    store: &dyn Store,
    call: switchboard_core::CallId,
    recording: switchboard_core::RecordingId,
) {
    use switchboard_store::{RecordingUpload, UploadState};
    assert_eq!(store.ticket_of_call(call).await.unwrap(), None);
    let ticket = Ticket {
        id: TicketId::from_uuid(Uuid::new_v4()),
        contact: None,
        visitor: None,
        identity: None,
        name: "Phone User - 05/04 05:30 (+15551230000)".into(),
        status: "open".into(),
        transcript: Some("Phone call from +15551230000 to 15550100".into()),
        external_id: None,
        created_at: now(),
        updated_at: now(),
        call: Some(call),
        phone: Some("15551230000".into()),
    };
    store.insert_ticket(&ticket).await.unwrap();
    assert_eq!(
        store.ticket_of_call(call).await.unwrap(),
        Some(ticket.clone())
    );
    assert_eq!(store.get_ticket(ticket.id).await.unwrap(), ticket);
    let again = Ticket {
        id: TicketId::from_uuid(Uuid::new_v4()),
        ..ticket.clone()
    };
    assert!(matches!(
        store.insert_ticket(&again).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_upload(recording).await.unwrap(), None);
    let mut upload = RecordingUpload {
        recording,
        call,
        ticket: ticket.id,
        connector: "webhook".into(),
        state: UploadState::Sending,
        size_bytes: 120_000_044,
        parts_total: 3,
        parts_done: 0,
        bytes_done: 0,
        part_bytes: 50_000_000,
        receipts: Vec::new(),
        last_error: None,
        queued_at: now(),
        updated_at: now(),
    };
    store.put_upload(&upload).await.unwrap();
    assert_eq!(
        store.get_upload(recording).await.unwrap(),
        Some(upload.clone())
    );
    upload.parts_done = 1;
    upload.bytes_done = 50_000_000;
    upload.receipts.push("att-1".into());
    upload.last_error = Some("webhook answered 503".into());
    upload.updated_at = now() + Duration::seconds(5);
    store.put_upload(&upload).await.unwrap();
    assert_eq!(
        store.get_upload(recording).await.unwrap(),
        Some(upload.clone())
    );
    assert_eq!(
        store.list_uploads(true, 10).await.unwrap(),
        vec![upload.clone()]
    );
    upload.state = UploadState::Uploaded;
    store.put_upload(&upload).await.unwrap();
    assert!(store.list_uploads(true, 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_uploads(false, 10).await.unwrap(),
        vec![upload.clone()]
    );
    assert_eq!(
        store.uploads_of_call(call).await.unwrap(),
        vec![upload.clone()]
    );
    // The upload says where the recording went after the recording is gone.
    store.delete_recording(recording).await.unwrap();
    assert_eq!(store.get_upload(recording).await.unwrap(), Some(upload));
}

/// Voice: trunks, dialled numbers (only into voice queues), SIP phones, uploaded audio, and
/// call records kept whole.
async fn voice_story(store: &dyn Store, not_voice: QueueId) {
    use switchboard_core::voice::{
        CallRecord, DialRule, Did, Disposition, HeaderFlag, Network, PhoneNumber, RtpCounts, Trunk,
        TrunkDirection,
    };
    use switchboard_core::{CallId, TrunkId};
    let backend = store.backend();
    let phone_queue = queue(Channel::Voice, None, "Phone sales", QueueKind::Leaf);
    store.create_queue(&phone_queue).await.unwrap();
    let mut trunk = Trunk {
        id: TrunkId::from_uuid(Uuid::new_v4()),
        name: name("Carrier"),
        direction: TrunkDirection::Outbound,
        addresses: vec![
            Network::parse("192.0.2.0/24").unwrap(),
            Network::parse("2001:db8::1").unwrap(),
        ],
        username: Some("acct".into()),
        secret: Some("pw".into()),
        host: Some("sip.example.net".into()),
        port: Some(5080),
        tcp: true,
        caller_id: Some(PhoneNumber::parse("caller_id", "+15550100").unwrap()),
        dial_rules: vec![DialRule::new("9", 1, "+1").unwrap()],
        max_calls: Some(250),
        max_calls_per_second: None,
        header_flags: vec![
            HeaderFlag::new("X-Verified-Customer", "reserved_verified_customer").unwrap(),
        ],
        emergency: false,
    };
    store.put_trunk(&trunk).await.unwrap();
    assert_eq!(store.get_trunk(trunk.id).await.unwrap(), trunk, "{backend}");
    trunk.name = name("Carrier (renamed)");
    trunk.port = None;
    trunk.emergency = true;
    store.put_trunk(&trunk).await.unwrap();
    assert_eq!(
        store.list_trunks().await.unwrap(),
        vec![trunk.clone()],
        "{backend}"
    );
    store.delete_trunk(trunk.id).await.unwrap();
    assert!(matches!(
        store.delete_trunk(trunk.id).await,
        Err(StoreError::NotFound(_))
    ));

    let did = Did {
        number: PhoneNumber::parse("number", "+15550100").unwrap(),
        entry: Some(phone_queue.id),
        language: Some(Language::parse("en").unwrap()),
    };
    store.put_did(&did).await.unwrap();
    let mut into_chat = did.clone();
    into_chat.entry = Some(not_voice);
    assert!(
        matches!(
            store.put_did(&into_chat).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}"
    );
    into_chat.entry = Some(QueueId::from_uuid(Uuid::new_v4()));
    assert!(
        matches!(
            store.put_did(&into_chat).await,
            Err(StoreError::NotFound(_))
        ),
        "{backend}"
    );
    assert_eq!(
        store.list_dids().await.unwrap(),
        vec![did.clone()],
        "{backend}: refused changes changed nothing"
    );
    store.delete_did("+15550100").await.unwrap();
    assert!(store.list_dids().await.unwrap().is_empty());

    let agent = user("phoneagent", BuiltinRole::Agent);
    store.create_user(&agent, None).await.unwrap();
    store.set_sip_phone(agent.id, Some("ha1")).await.unwrap();
    assert_eq!(
        store.list_sip_phones().await.unwrap(),
        vec![(agent.id, agent.username.clone(), "ha1".to_owned())]
    );
    store.set_sip_phone(agent.id, None).await.unwrap();
    assert!(store.list_sip_phones().await.unwrap().is_empty());
    assert!(matches!(
        store
            .set_sip_phone(UserId::from_uuid(Uuid::new_v4()), Some("x"))
            .await,
        Err(StoreError::NotFound(_))
    ));

    store
        .put_voice_audio("hold:default", "blob-1", now())
        .await
        .unwrap();
    store
        .put_voice_audio("hold:default", "blob-2", now())
        .await
        .unwrap();
    assert_eq!(
        store.voice_audio("hold:default").await.unwrap().as_deref(),
        Some("blob-2")
    );
    store.delete_voice_audio("hold:default").await.unwrap();
    assert!(matches!(
        store.delete_voice_audio("hold:default").await,
        Err(StoreError::NotFound(_))
    ));

    let mut first = CallRecord::new(
        CallId::from_uuid(Uuid::new_v4()),
        "15551234567".into(),
        "15550100".into(),
        now(),
    );
    store.put_call(&first).await.unwrap();
    first.ivr_path = "12".into();
    first.queue = Some(phone_queue.id);
    first.agent = Some(agent.id);
    first.queued_at = Some(now() + Duration::seconds(5));
    first.ringing_at = Some(now() + Duration::seconds(6));
    first.answered_at = Some(now() + Duration::seconds(9));
    first.transfers = vec![format!("queue:{}", phone_queue.id)];
    first.rtp = RtpCounts {
        from_caller: 1000,
        to_caller: 990,
        from_agent: 980,
        to_agent: 970,
    };
    first.properties = ReservedProperties {
        verified_customer: Some(true),
        bad_actor: Some(false),
        repeat_customer: None,
    };
    first.end(now() + Duration::seconds(70), "agent", None);
    store.put_call(&first).await.unwrap();
    let stored = store.get_call(first.id).await.unwrap();
    assert_eq!(stored, first, "{backend}");
    assert_eq!(stored.disposition, Disposition::Answered);
    assert_eq!(
        (stored.wait_ms(), stored.talk_ms()),
        (Some(4000), Some(61_000))
    );
    let second = CallRecord::new(
        CallId::from_uuid(Uuid::new_v4()),
        "anonymous".into(),
        "15550100".into(),
        now() + Duration::seconds(1),
    );
    store.put_call(&second).await.unwrap();
    let newest: Vec<CallId> = store
        .list_calls(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(newest, vec![second.id, first.id], "{backend}");
    assert!(matches!(
        store.get_call(CallId::from_uuid(Uuid::new_v4())).await,
        Err(StoreError::NotFound(_))
    ));
    // After a restart the call still in progress is closed as interrupted; the ended one is
    // left as it was.
    let restarted = now() + Duration::seconds(120);
    let (calls, _) = store.close_interrupted_calls(restarted).await.unwrap();
    assert_eq!(calls, 1, "{backend}");
    let closed = store.get_call(second.id).await.unwrap();
    assert_eq!(closed.disposition, Disposition::Interrupted, "{backend}");
    assert_eq!(closed.ended_at, Some(restarted));
    assert_eq!(store.get_call(first.id).await.unwrap(), first, "{backend}");
    assert_eq!(
        store.close_interrupted_calls(restarted).await.unwrap(),
        (0, 0)
    );
}

/// Chats: visitors, messages with client ids, attachments, tickets, identity merge, jobs, tones.
async fn chat_story(store: &dyn Store, queue: QueueId, agent: UserId) {
    let backend = store.backend();
    let first = store.integration_settings("secret-one").await.unwrap();
    assert_eq!(
        (first.identity_secret.as_str(), first.crm_connector.as_str()),
        ("secret-one", "builtin")
    );
    assert_eq!(
        store
            .integration_settings("secret-two")
            .await
            .unwrap()
            .identity_secret,
        "secret-one",
        "{backend}: generated once"
    );
    let webhook = IntegrationSettings {
        crm_connector: "webhook".into(),
        crm_webhook_url: Some("http://127.0.0.1:9/hook".into()),
        crm_webhook_secret: Some("s".into()),
        crm_record_url: Some("https://crm.example.com/tickets/{external_id}".into()),
        ..first
    };
    store.update_integration_settings(&webhook).await.unwrap();
    assert_eq!(store.integration_settings("x").await.unwrap(), webhook);
    let zendesk = IntegrationSettings {
        crm_connector: "zendesk".into(),
        zendesk_url: Some("https://acme.zendesk.com".into()),
        zendesk_email: Some("integration@acme.example".into()),
        zendesk_token: Some("zendesk-token-0123".into()),
        ..webhook.clone()
    };
    store.update_integration_settings(&zendesk).await.unwrap();
    assert_eq!(store.integration_settings("x").await.unwrap(), zendesk);
    // Back to the webhook: the Zendesk fields are cleared as given.
    store.update_integration_settings(&webhook).await.unwrap();
    assert_eq!(store.integration_settings("x").await.unwrap(), webhook);

    let visitor = Visitor {
        id: VisitorId::from_uuid(Uuid::new_v4()),
        token_hash: "th".into(),
        identity: None,
        created_at: now(),
    };
    store.create_visitor(&visitor).await.unwrap();
    assert_eq!(store.get_visitor(visitor.id).await.unwrap(), visitor);
    let contact = Contact {
        id: ContactId::from_uuid(Uuid::new_v4()),
        channel: Channel::Web,
        queue: Some(queue),
        issue: "Billing > Refunds".into(),
        priority: 0,
        language: None,
        status: ContactStatus::Queued,
        agent: None,
        customer: Some("Web User - 05/04 05:30".into()),
        created_at: now(),
        assigned_at: None,
        ended_at: None,
        end_reason: None,
        transfers: 0,
        ended_by: None,
    };
    let ticket = Ticket {
        id: TicketId::from_uuid(Uuid::new_v4()),
        contact: Some(contact.id),
        visitor: Some(visitor.id),
        identity: None,
        name: "Web User - 05/04 05:30".into(),
        status: "open".into(),
        transcript: None,
        external_id: None,
        created_at: now(),
        updated_at: now(),
        call: None,
        phone: None,
    };
    let chat = ChatSession {
        contact: contact.id,
        visitor: visitor.id,
        identity: None,
        ticket: ticket.id,
        source: "web".into(),
        properties: ReservedProperties {
            verified_customer: Some(true),
            ..Default::default()
        },
        accepted_at: None,
    };
    store.insert_chat(&contact, &chat, &ticket).await.unwrap();
    assert_eq!(store.get_chat(contact.id).await.unwrap(), chat);
    assert_eq!(store.get_contact(contact.id).await.unwrap(), contact);
    assert_eq!(
        store.open_chats_of_visitor(visitor.id).await.unwrap(),
        vec![contact.id]
    );
    let ghost_chat = ChatSession {
        contact: ContactId::from_uuid(Uuid::new_v4()),
        visitor: VisitorId::from_uuid(Uuid::new_v4()),
        ..chat.clone()
    };
    let ghost_contact = Contact {
        id: ghost_chat.contact,
        ..contact.clone()
    };
    let ghost_ticket = Ticket {
        id: TicketId::from_uuid(Uuid::new_v4()),
        ..ticket.clone()
    };
    assert!(store
        .insert_chat(&ghost_contact, &ghost_chat, &ghost_ticket)
        .await
        .is_err());
    assert!(
        matches!(
            store.get_contact(ghost_contact.id).await,
            Err(StoreError::NotFound(_))
        ),
        "{backend}: a refused chat leaves no contact"
    );

    // Messages: sequence numbers in order, a resend with the same client id is the same message.
    let send = |n: u32, sender: Sender, client: &str| NewMessage {
        id: MessageId::from_uuid(Uuid::new_v4()),
        contact: contact.id,
        sender,
        client_id: Some(ClientMessageId::parse(client).unwrap()),
        text: format!("message {n}"),
        attachment: None,
        sent_at: now() + Duration::seconds(n.into()),
    };
    let (m1, new1) = store
        .append_message(&send(1, Sender::Consumer, "c1"))
        .await
        .unwrap();
    let (m2, _) = store
        .append_message(&send(2, Sender::Agent(agent), "c1"))
        .await
        .unwrap();
    let (again, new_again) = store
        .append_message(&send(3, Sender::Consumer, "c1"))
        .await
        .unwrap();
    assert!(new1 && !new_again, "{backend}: resend recognised");
    assert_eq!(
        again, m1,
        "{backend}: the resend answers with the stored message"
    );
    assert_eq!(
        (m1.seq, m2.seq),
        (1, 2),
        "{backend}: another sender may reuse a client id"
    );
    assert_eq!(
        store.messages(contact.id, 0, 10).await.unwrap(),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(store.messages(contact.id, 1, 10).await.unwrap(), vec![m2]);
    let nowhere = NewMessage {
        contact: ContactId::from_uuid(Uuid::new_v4()),
        ..send(4, Sender::Consumer, "c9")
    };
    assert!(matches!(
        store.append_message(&nowhere).await,
        Err(StoreError::NotFound(_))
    ));

    // Attachments and chat properties.
    let file = Attachment {
        id: AttachmentId::from_uuid(Uuid::new_v4()),
        contact: contact.id,
        kind: AttachmentKind::Png,
        size: 1234,
        name: "receipt.png".into(),
        uploaded_by: Sender::Consumer,
        created_at: now(),
    };
    store.insert_attachment(&file).await.unwrap();
    assert_eq!(store.get_attachment(file.id).await.unwrap(), file);
    assert_eq!(
        store.attachments_of(contact.id).await.unwrap(),
        vec![file.clone()]
    );
    // Upload quotas count the consumer's bytes, per chat and per visitor; agents' files do not.
    let agents_file = Attachment {
        id: AttachmentId::from_uuid(Uuid::new_v4()),
        size: 999,
        uploaded_by: Sender::System,
        ..file
    };
    store.insert_attachment(&agents_file).await.unwrap();
    assert_eq!(
        store.consumer_upload_bytes(contact.id).await.unwrap(),
        UploadBytes {
            chat: 1234,
            visitor: 1234
        }
    );
    let flags = ReservedProperties {
        bad_actor: Some(false),
        repeat_customer: Some(true),
        verified_customer: None,
    };
    store.set_chat_properties(contact.id, &flags).await.unwrap();
    store.mark_chat_accepted(contact.id, now()).await.unwrap();
    let stored = store.get_chat(contact.id).await.unwrap();
    assert_eq!(
        (stored.properties, stored.accepted_at),
        (flags, Some(now()))
    );
    // Moved to another agent, the chat is accepted afresh.
    store.clear_chat_accepted(contact.id).await.unwrap();
    assert_eq!(store.get_chat(contact.id).await.unwrap().accepted_at, None);
    store.mark_chat_accepted(contact.id, now()).await.unwrap();

    // A transfer keeps the contact's arrival and counts.
    let mut moved = contact.clone();
    moved.requeue(queue, "Billing > Refunds".into());
    store
        .update_contacts(std::slice::from_ref(&moved))
        .await
        .unwrap();
    assert_eq!(store.get_contact(contact.id).await.unwrap().transfers, 1);

    // Identifying the visitor moves the anonymous ticket and chat; another identity cannot.
    let identity = Identity {
        id: IdentityId::from_uuid(Uuid::new_v4()),
        external_id: "crm-42".into(),
        email: Some("ann@example.org".into()),
        name: None,
        phone: None,
        created_at: now(),
    };
    let outcome = store.identify_visitor(visitor.id, &identity).await.unwrap();
    assert_eq!(
        (outcome.merged_tickets, outcome.merged_chats),
        (1, 1),
        "{backend}"
    );
    assert_eq!(
        store.get_ticket(ticket.id).await.unwrap().identity,
        Some(outcome.identity.id)
    );
    let again = store
        .identify_visitor(
            visitor.id,
            &Identity {
                id: IdentityId::from_uuid(Uuid::new_v4()),
                name: Some("Ann".into()),
                email: None,
                ..identity.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        again.identity.id, outcome.identity.id,
        "{backend}: same external id, same identity"
    );
    assert_eq!(
        (
            again.identity.email.as_deref(),
            again.identity.name.as_deref()
        ),
        (Some("ann@example.org"), Some("Ann"))
    );
    let other = Identity {
        id: IdentityId::from_uuid(Uuid::new_v4()),
        external_id: "crm-99".into(),
        email: None,
        name: None,
        phone: None,
        created_at: now(),
    };
    assert!(
        matches!(
            store.identify_visitor(visitor.id, &other).await,
            Err(StoreError::Conflict(_))
        ),
        "{backend}: no second identity"
    );
    assert_eq!(
        store.get_ticket(ticket.id).await.unwrap().identity,
        Some(outcome.identity.id),
        "{backend}: history stays"
    );

    let mut solved = store.get_ticket(ticket.id).await.unwrap();
    solved.status = "solved".into();
    solved.transcript = Some("consumer: message 1".into());
    solved.external_id = Some("ext-1".into());
    store.update_ticket(&solved).await.unwrap();
    assert_eq!(store.get_ticket(ticket.id).await.unwrap(), solved);
    assert_eq!(store.list_tickets(10).await.unwrap(), vec![solved.clone()]);
    assert_eq!(
        store.tickets_of_visitor(visitor.id).await.unwrap(),
        vec![solved]
    );
    assert!(store
        .tickets_of_visitor(VisitorId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap()
        .is_empty());

    // Jobs: due ones are claimed once, failures come back later, leases expire.
    let job = Job {
        id: JobId::from_uuid(Uuid::new_v4()),
        kind: "crm_ticket".into(),
        payload: "{}".into(),
        state: JobState::Pending,
        run_at: now(),
        attempts: 0,
        last_error: None,
        created_at: now(),
    };
    store.enqueue_job(&job).await.unwrap();
    assert_eq!(
        store
            .claim_job(
                now() - Duration::seconds(1),
                now(),
                switchboard_store::JobFilter::Any
            )
            .await
            .unwrap(),
        None,
        "{backend}: not due yet"
    );
    let claimed = store
        .claim_job(
            now(),
            now() + Duration::seconds(60),
            switchboard_store::JobFilter::Any,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.attempts, claimed.state),
        (job.id, 1, JobState::Running)
    );
    assert_eq!(
        store
            .claim_job(
                now(),
                now() + Duration::seconds(60),
                switchboard_store::JobFilter::Any
            )
            .await
            .unwrap(),
        None,
        "{backend}: claimed once"
    );
    store
        .fail_job(job.id, "503 from CRM", Some(now() + Duration::seconds(5)))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_job(
                now() + Duration::seconds(4),
                now() + Duration::seconds(60),
                switchboard_store::JobFilter::Any
            )
            .await
            .unwrap(),
        None
    );
    let retried = store
        .claim_job(
            now() + Duration::seconds(5),
            now() + Duration::seconds(10),
            switchboard_store::JobFilter::Any,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.attempts, retried.last_error.as_deref()),
        (2, Some("503 from CRM"))
    );
    let reclaimed = store
        .claim_job(
            now() + Duration::seconds(11),
            now() + Duration::seconds(70),
            switchboard_store::JobFilter::Any,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reclaimed.attempts, 3,
        "{backend}: an expired lease is claimed again"
    );
    store.complete_job(job.id).await.unwrap();
    assert_eq!(store.list_jobs(10).await.unwrap()[0].state, JobState::Done);
    // Lanes: a worker for one kind, another for all the rest.
    use switchboard_store::JobFilter;
    let slow = Job {
        id: JobId::from_uuid(Uuid::new_v4()),
        kind: "recording_upload".into(),
        ..job.clone()
    };
    let quick = Job {
        id: JobId::from_uuid(Uuid::new_v4()),
        kind: "emergency_mail".into(),
        run_at: now() + Duration::seconds(1),
        ..job.clone()
    };
    store.enqueue_job(&slow).await.unwrap();
    store.enqueue_job(&quick).await.unwrap();
    let later = now() + Duration::seconds(100);
    let lease = later + Duration::seconds(60);
    let claimed = store
        .claim_job(later, lease, JobFilter::Except("recording_upload"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.id, quick.id,
        "{backend}: the older upload is another lane's"
    );
    assert_eq!(
        store
            .claim_job(later, lease, JobFilter::Except("recording_upload"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_job(later, lease, JobFilter::Only("recording_upload"))
            .await
            .unwrap()
            .map(|j| j.id),
        Some(slow.id)
    );
    assert_eq!(
        store.claim_job(later, lease, JobFilter::Any).await.unwrap(),
        None
    );
    store.complete_job(slow.id).await.unwrap();
    store.complete_job(quick.id).await.unwrap();

    // Tones and notification settings.
    let tone = Tone {
        id: "t1".into(),
        name: "chime.mp3".into(),
        size: 10,
        created_at: now(),
    };
    store.create_tone(&tone).await.unwrap();
    assert_eq!(store.list_tones().await.unwrap(), vec![tone]);
    assert_eq!(store.notification_settings(agent).await.unwrap(), None);
    let choice = NotificationSettings {
        user: agent,
        new_chat_tone: "t1".into(),
        new_message_tone: "pop".into(),
        repeat_seconds: Some(5),
        new_call_tone: "ring".into(),
        call_repeat_seconds: None,
    };
    store.put_notification_settings(&choice).await.unwrap();
    assert_eq!(
        store.notification_settings(agent).await.unwrap(),
        Some(choice)
    );
    store.delete_tone("t1").await.unwrap();
}

/// Secrets at rest: sealed under the current key, read back in clear, clear rows from before
/// sealing and rows under an older key sealed again on `reseal_secrets`, and a key that did
/// not seal a value does not open it. `url` is a fresh database.
/// The SMS channel's rows: settings, senders, inbound messages once by sid, outbound messages
/// whose status only moves forward, agents' numbers.
async fn sms_story(store: &dyn Store, agent: UserId) {
    use switchboard_core::sms::{DeliveryStatus, SmsPurpose};
    use switchboard_store::{InboundSms, OutboundSms, SmsSender, SmsSettings};
    let backend = store.backend();
    assert_eq!(store.sms_settings().await.unwrap(), SmsSettings::default());
    let settings = SmsSettings {
        connector: "twilio".into(),
        account_sid: Some("AC123".into()),
        auth_token: Some("token".into()),
        from_number: Some("+15550001111".into()),
        api_base: Some("http://127.0.0.1:9".into()),
        public_url: Some("https://center.example.com".into()),
        notify_agents: true,
    };
    store.put_sms_settings(&settings).await.unwrap();
    assert_eq!(store.sms_settings().await.unwrap(), settings, "{backend}");
    let changed = SmsSettings {
        auth_token: None,
        notify_agents: false,
        ..settings
    };
    store.put_sms_settings(&changed).await.unwrap();
    assert_eq!(store.sms_settings().await.unwrap(), changed, "{backend}");

    assert_eq!(store.sms_sender("+15552223333").await.unwrap(), None);
    let visitor = Visitor {
        id: VisitorId::from_uuid(Uuid::new_v4()),
        token_hash: "sms:+15552223333".into(),
        identity: None,
        created_at: now(),
    };
    store.create_visitor(&visitor).await.unwrap();
    let mut sender = SmsSender {
        phone: "+15552223333".into(),
        visitor: visitor.id,
        menu_sent_at: Some(now()),
    };
    store.put_sms_sender(&sender).await.unwrap();
    assert_eq!(
        store.sms_sender("+15552223333").await.unwrap().as_ref(),
        Some(&sender)
    );
    sender.menu_sent_at = None;
    store.put_sms_sender(&sender).await.unwrap();
    assert_eq!(
        store.sms_sender("+15552223333").await.unwrap().as_ref(),
        Some(&sender),
        "{backend}: the menu answered"
    );

    let inbound = InboundSms {
        message_sid: "SM0001".into(),
        from: "+15552223333".into(),
        to: "+15550001111".into(),
        body: "hello".into(),
        contact: None,
        received_at: now(),
    };
    let before = store.count_inbound_sms().await.unwrap();
    assert!(store.record_inbound_sms(&inbound).await.unwrap());
    assert!(
        !store
            .record_inbound_sms(&InboundSms {
                body: "a retry".into(),
                ..inbound.clone()
            })
            .await
            .unwrap(),
        "{backend}: once by sid"
    );
    assert_eq!(store.count_inbound_sms().await.unwrap(), before + 1);
    // In a batch (group commit): the stored one is left as it is, the new ones added once.
    let batch: Vec<InboundSms> = ["SM0001", "SM0002", "SM0003", "SM0002"]
        .iter()
        .map(|sid| InboundSms {
            message_sid: (*sid).into(),
            body: format!("batch {sid}"),
            ..inbound.clone()
        })
        .collect();
    store.record_inbound_sms_batch(&batch).await.unwrap();
    assert_eq!(
        store.count_inbound_sms().await.unwrap(),
        before + 3,
        "{backend}"
    );
    assert_eq!(
        store.inbound_sms("SM0001").await.unwrap().unwrap().body,
        "hello"
    );
    let chat = ContactId::from_uuid(Uuid::new_v4());
    store.set_inbound_contact("SM0001", chat).await.unwrap();
    assert_eq!(
        store.inbound_sms("SM0001").await.unwrap(),
        Some(InboundSms {
            contact: Some(chat),
            ..inbound
        })
    );
    assert!(matches!(
        store.set_inbound_contact("SM-none", chat).await,
        Err(StoreError::NotFound(_))
    ));

    let id = JobId::from_uuid(Uuid::new_v4());
    let outbound = OutboundSms {
        id,
        contact: Some(chat),
        to: "+15552223333".into(),
        body: "hi there".into(),
        purpose: SmsPurpose::Reply,
        status: DeliveryStatus::Queued,
        provider_sid: None,
        error: None,
        created_at: now(),
        updated_at: now(),
    };
    assert!(store.add_outbound_sms(&outbound).await.unwrap());
    assert!(
        !store.add_outbound_sms(&outbound).await.unwrap(),
        "{backend}: once by id"
    );
    store
        .set_outbound_sms_state(
            id,
            None,
            DeliveryStatus::Queued,
            Some("Twilio answered 503"),
            now(),
        )
        .await
        .unwrap();
    store
        .set_outbound_sms_state(id, Some("SM9999"), DeliveryStatus::Sent, None, now())
        .await
        .unwrap();
    assert!(store
        .advance_sms_status("SM9999", DeliveryStatus::Delivered, None, now())
        .await
        .unwrap());
    assert!(store
        .advance_sms_status("SM9999", DeliveryStatus::Sent, None, now())
        .await
        .unwrap());
    assert!(!store
        .advance_sms_status("SM-unknown", DeliveryStatus::Sent, None, now())
        .await
        .unwrap());
    let stored = store.outbound_sms(id).await.unwrap();
    assert_eq!(
        (
            stored.status,
            stored.provider_sid.as_deref(),
            stored.error.as_deref()
        ),
        (DeliveryStatus::Delivered, Some("SM9999"), None),
        "{backend}: a late `sent` does not undo `delivered`"
    );
    assert_eq!(store.list_outbound_sms(10).await.unwrap(), vec![stored]);

    assert_eq!(store.agent_sms_number(agent).await.unwrap(), None);
    store
        .set_agent_sms_number(agent, Some("+15554445555"))
        .await
        .unwrap();
    store
        .set_agent_sms_number(agent, Some("+15554446666"))
        .await
        .unwrap();
    assert_eq!(
        store.agent_sms_number(agent).await.unwrap().as_deref(),
        Some("+15554446666")
    );
    store.set_agent_sms_number(agent, None).await.unwrap();
    assert_eq!(store.agent_sms_number(agent).await.unwrap(), None);
}

async fn sealing_story(url: &str) {
    let old_key = [7u8; 32];
    let new_key = [9u8; 32];
    let clear_store = switchboard_store::open(url).await.unwrap();
    let alice = user("alice", BuiltinRole::Agent);
    clear_store.create_user(&alice, Some("hash")).await.unwrap();
    // An older version wrote the identity secret in clear.
    let settings = clear_store
        .integration_settings("identity-secret-in-clear-0123456789")
        .await
        .unwrap();
    assert_eq!(
        settings.identity_secret,
        "identity-secret-in-clear-0123456789"
    );
    drop(clear_store);

    let sealed_old = switchboard_store::open_sealed(url, SecretKeys::new(&old_key, &[]))
        .await
        .unwrap();
    assert_eq!(
        sealed_old.reseal_secrets().await.unwrap(),
        1,
        "the clear identity secret"
    );
    sealed_old
        .set_totp(alice.id, Some("JBSWY3DPEHPK3PXP"), true)
        .await
        .unwrap();
    let credentials = sealed_old.credentials(alice.id).await.unwrap();
    assert_eq!(credentials.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    let mut settings = sealed_old.integration_settings("unused").await.unwrap();
    assert_eq!(
        settings.identity_secret,
        "identity-secret-in-clear-0123456789"
    );
    settings.crm_webhook_secret = Some("webhook-secret-0123".into());
    settings.zendesk_token = Some("zendesk-token-0123".into());
    sealed_old
        .update_integration_settings(&settings)
        .await
        .unwrap();
    sealed_old
        .put_sms_settings(&switchboard_store::SmsSettings {
            connector: "twilio".into(),
            auth_token: Some("twilio-token-0123".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    drop(sealed_old);

    // What the database holds is sealed; without the key it does not open.
    let clear_store = switchboard_store::open(url).await.unwrap();
    assert!(matches!(
        clear_store.credentials(alice.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        clear_store.sms_settings().await,
        Err(StoreError::Corrupt(_))
    ));
    drop(clear_store);

    // Rotation: the new key seals, the old one still opens until everything is sealed again.
    let rotating = switchboard_store::open_sealed(url, SecretKeys::new(&new_key, &[old_key]))
        .await
        .unwrap();
    assert_eq!(
        rotating
            .credentials(alice.id)
            .await
            .unwrap()
            .totp_secret
            .as_deref(),
        Some("JBSWY3DPEHPK3PXP")
    );
    assert_eq!(
        rotating.reseal_secrets().await.unwrap(),
        5,
        "TOTP, identity, webhook, Zendesk and Twilio secrets"
    );
    assert_eq!(
        rotating.reseal_secrets().await.unwrap(),
        0,
        "nothing left under the old key"
    );
    drop(rotating);
    let new_only = switchboard_store::open_sealed(url, SecretKeys::new(&new_key, &[]))
        .await
        .unwrap();
    let settings = new_only.integration_settings("unused").await.unwrap();
    assert_eq!(
        settings.crm_webhook_secret.as_deref(),
        Some("webhook-secret-0123")
    );
    assert_eq!(
        settings.zendesk_token.as_deref(),
        Some("zendesk-token-0123")
    );
    assert_eq!(
        new_only.sms_settings().await.unwrap().auth_token.as_deref(),
        Some("twilio-token-0123")
    );
    assert_eq!(
        new_only
            .credentials(alice.id)
            .await
            .unwrap()
            .totp_secret
            .as_deref(),
        Some("JBSWY3DPEHPK3PXP")
    );
    drop(new_only);
    let old_only = switchboard_store::open_sealed(url, SecretKeys::new(&old_key, &[]))
        .await
        .unwrap();
    assert!(matches!(
        old_only.credentials(alice.id).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn sqlite_seals_secrets() {
    let dir = std::env::temp_dir().join(format!("switchboard-sealing-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    sealing_story(&format!("sqlite://{}", dir.join("sealed.db").display())).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_seals_secrets() {
    if std::env::var("SWITCHBOARD_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("PostgreSQL left out: SWITCHBOARD_TEST_SKIP_POSTGRES=1");
        return;
    }
    let admin_url = std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let database = TestDatabase {
        admin_url: admin_url.clone(),
        name: format!("switchboard_sealing_{}", Uuid::new_v4().simple()),
    };
    sqlx::raw_sql(&format!("CREATE DATABASE {}", database.name))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    sealing_story(&format!("{base}/{}", database.name)).await;
}

#[tokio::test]
async fn sqlite_tells_the_story() {
    let dir = std::env::temp_dir().join(format!("switchboard-conformance-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("story.db").display());
    story(switchboard_store::open(&url).await.unwrap()).await;
    // Reopening runs no migration twice and keeps the data.
    let reopened = switchboard_store::open(&url).await.unwrap();
    assert_eq!(reopened.center_settings().await.unwrap().name, "Acme");
    // Callback leases survive a restart.
    assert_eq!(reopened.callback_leases().await.unwrap().len(), 2);
    drop(reopened);
    std::fs::remove_dir_all(&dir).ok();
}

/// A throwaway PostgreSQL database, dropped when the guard goes, even if the story panicked.
struct TestDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join()
        .ok();
    }
}

#[tokio::test]
async fn postgres_tells_the_story() {
    if std::env::var("SWITCHBOARD_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("PostgreSQL left out: SWITCHBOARD_TEST_SKIP_POSTGRES=1");
        return;
    }
    let admin_url = std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for this test (or set SWITCHBOARD_TEST_SKIP_POSTGRES=1): {e}"));
    let database = TestDatabase {
        admin_url: admin_url.clone(),
        name: format!("switchboard_test_{}", Uuid::new_v4().simple()),
    };
    sqlx::raw_sql(&format!("CREATE DATABASE {}", database.name))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{}", database.name);
    let store = switchboard_store::open(&url).await.unwrap();
    story(store.clone()).await;
    drop(store);
    let reopened = switchboard_store::open(&url).await.unwrap();
    assert_eq!(reopened.center_settings().await.unwrap().name, "Acme");
    // Callback leases survive a restart.
    assert_eq!(reopened.callback_leases().await.unwrap().len(), 2);
}
