use crate::uuid;
use switchboard_core::{
    Actor, BuiltinRole, Permission, PermissionSet, Role, RoleKey, RoleScope, Target, TeamId, UserId,
};

fn actor(role: BuiltinRole, managed: &[TeamId]) -> Actor {
    Actor {
        user_id: UserId::from_uuid(uuid(1)),
        role: role.role(),
        teams: vec![],
        managed_teams: managed.to_vec(),
        queues: vec![],
    }
}

#[test]
fn managers_act_only_on_their_teams() {
    let (red, blue) = (TeamId::from_uuid(uuid(10)), TeamId::from_uuid(uuid(11)));
    let manager = actor(BuiltinRole::Manager, &[red]);
    let in_red = Target::User {
        id: UserId::from_uuid(uuid(2)),
        teams: &[red, blue],
    };
    let in_blue = Target::User {
        id: UserId::from_uuid(uuid(3)),
        teams: &[blue],
    };
    assert!(manager.can(Permission::MonitorChatsEdit, in_red));
    assert!(manager.can(Permission::MonitorCallsBarge, in_red));
    assert!(!manager.can(Permission::MonitorChatsEdit, in_blue));
    assert!(
        !manager.can(Permission::MonitorChatsEdit, Target::Center),
        "queued contacts are center-wide"
    );
    assert!(!manager.can(Permission::SettingsEdit, Target::Center));
    assert!(manager.may_assign_teams(&[red]));
    assert!(!manager.may_assign_teams(&[red, blue]));
    assert!(!manager.may_assign_teams(&[]));
}

#[test]
fn built_in_roles_hold_what_the_catalogue_says() {
    let everyone = Target::User {
        id: UserId::from_uuid(uuid(9)),
        teams: &[],
    };
    let admin = actor(BuiltinRole::Admin, &[]);
    for p in Permission::ALL {
        assert!(admin.can(p, Target::Center), "admin lacks {p:?}");
    }
    let supervisor = actor(BuiltinRole::Supervisor, &[]);
    assert!(supervisor.can(Permission::MonitorCallsListen, everyone));
    assert!(supervisor.can(Permission::MonitorCallsBarge, everyone));
    assert!(!supervisor.can(Permission::MonitorChatsEdit, everyone));
    assert!(!supervisor.can(Permission::UsersEdit, everyone));
    // The emergency log is restricted (EMG-6): admins, and custom roles given it.
    assert!(!supervisor.holds(Permission::EmergencyLogView));
    assert!(!actor(BuiltinRole::Manager, &[]).holds(Permission::EmergencyLogView));
    assert_eq!(
        Permission::parse("emergency_log_view"),
        Ok(Permission::EmergencyLogView)
    );
    let trainee = actor(BuiltinRole::Trainee, &[]);
    assert!(
        trainee.can(Permission::MonitorCallsListen, everyone),
        "trainees listen (MON-1)"
    );
    assert!(
        !trainee.can(Permission::MonitorCallsBarge, everyone),
        "listen and barge are separate (MON-4)"
    );
    let agent = actor(BuiltinRole::Agent, &[]);
    assert!(agent.can(Permission::HandleContacts, Target::Center));
    assert!(!agent.can(Permission::MonitorChatsView, everyone));
}

#[test]
fn nobody_grants_what_they_do_not_hold() {
    let manager = BuiltinRole::Manager.role();
    assert!(manager.may_grant(&BuiltinRole::Agent.role()));
    assert!(!manager.may_grant(&BuiltinRole::Admin.role()));
    assert!(
        !manager.may_grant(&BuiltinRole::Supervisor.role()),
        "a team-scoped role cannot hand out center-wide monitoring"
    );
    assert!(BuiltinRole::Admin.role().may_grant(&manager));
    let custom = Role {
        key: RoleKey::parse("qa-listener").unwrap(),
        name: "QA listener".into(),
        permissions: PermissionSet::of(&[Permission::MonitorCallsListen]),
        scope: RoleScope::AssignedTeams,
        builtin: false,
    };
    assert!(manager.may_grant(&custom));
    assert!(!BuiltinRole::Agent.role().may_grant(&custom));
}

#[test]
fn permission_and_role_names_parse_strictly() {
    for p in Permission::ALL {
        assert_eq!(Permission::parse(p.as_str()).unwrap(), p);
    }
    assert!(Permission::parse("root").is_err());
    assert!(RoleKey::parse("team-lead").is_ok());
    for bad in ["", "a", "Team", "1abc", "has space", &"x".repeat(41)] {
        assert!(RoleKey::parse(bad).is_err(), "{bad:?}");
    }
    assert!(RoleKey::parse("admin").unwrap().is_builtin());
}

#[test]
fn the_event_stream_shows_what_a_role_reaches() {
    use switchboard_core::{Channel, QueueId, Watched};
    let red = TeamId::from_uuid(uuid(10));
    let queue = QueueId::from_uuid(uuid(20));
    let mut agent = actor(BuiltinRole::Agent, &[]);
    agent.queues = vec![queue];
    let other = Watched::Agent {
        id: UserId::from_uuid(uuid(2)),
        teams: &[red],
    };
    let me = Watched::Agent {
        id: agent.user_id,
        teams: &[],
    };
    assert!(agent.may_watch(me));
    assert!(!agent.may_watch(other), "agents do not watch each other");
    assert!(
        agent.may_watch(Watched::Waiting {
            queue: Some(queue),
            channel: Channel::Web
        }),
        "own queue"
    );
    assert!(!agent.may_watch(Watched::Waiting {
        queue: None,
        channel: Channel::Web
    }));
    let manager = actor(BuiltinRole::Manager, &[red]);
    assert!(manager.may_watch(other));
    assert!(
        !manager.may_watch(Watched::Agent {
            id: UserId::from_uuid(uuid(3)),
            teams: &[]
        }),
        "outside their teams"
    );
    assert!(manager.may_watch(Watched::Waiting {
        queue: None,
        channel: Channel::Voice
    }));
    let trainee = actor(BuiltinRole::Trainee, &[]);
    assert!(trainee.may_watch(Watched::Waiting {
        queue: None,
        channel: Channel::Voice
    }));
}

#[test]
fn who_may_watch_and_end_a_chat() {
    let (red, blue) = (TeamId::from_uuid(uuid(10)), TeamId::from_uuid(uuid(11)));
    let red_agent = (UserId::from_uuid(uuid(2)), &[red][..]);
    let blue_agent = (UserId::from_uuid(uuid(3)), &[blue][..]);
    // (role, watch red, watch blue, watch queued, end red, end blue, end queued)
    let matrix = [
        (BuiltinRole::Admin, [true, true, true, true, true, true]),
        (
            BuiltinRole::Manager,
            [true, false, false, true, false, false],
        ),
        (
            BuiltinRole::Supervisor,
            [true, true, true, false, false, false],
        ),
        (
            BuiltinRole::Trainee,
            [true, true, true, false, false, false],
        ),
        (
            BuiltinRole::Agent,
            [false, false, false, false, false, false],
        ),
    ];
    for (role, expected) in matrix {
        let actor = actor(role, &[red]);
        let got = [
            actor.may_watch_chat(Some(red_agent)),
            actor.may_watch_chat(Some(blue_agent)),
            actor.may_watch_chat(None),
            actor.may_end_contact(Some(red_agent)),
            actor.may_end_contact(Some(blue_agent)),
            actor.may_end_contact(None),
        ];
        assert_eq!(got, expected, "{role:?}");
    }
    let supervisor = actor(BuiltinRole::Supervisor, &[]);
    assert!(
        !supervisor.may_watch_chat(Some((supervisor.user_id, &[]))),
        "one's own chat is on one's desk, not watched"
    );
}
