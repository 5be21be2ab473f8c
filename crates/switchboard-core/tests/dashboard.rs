use crate::{at, uuid};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use switchboard_core::dashboard::{
    compute, may_view, ContactRow, DashboardError, PresenceRow, Range, Scope, Threshold,
};
use switchboard_core::{Actor, BuiltinRole, ContactStatus, QueueId, TeamId, UserId};

fn answered(created: DateTime<Utc>, wait_s: i64, talk_s: i64) -> ContactRow {
    let assigned = created + Duration::seconds(wait_s);
    ContactRow {
        created_at: created,
        assigned_at: Some(assigned),
        ended_at: Some(assigned + Duration::seconds(talk_s)),
        status: ContactStatus::Ended,
    }
}

fn abandoned(created: DateTime<Utc>, after_s: i64) -> ContactRow {
    ContactRow {
        created_at: created,
        assigned_at: None,
        ended_at: Some(created + Duration::seconds(after_s)),
        status: ContactStatus::Abandoned,
    }
}

#[test]
fn a_day_of_known_outcomes_gives_its_figures() {
    let range = Range::new(at(2026, 3, 2, 0, 0), at(2026, 3, 3, 0, 0)).expect("a day");
    let nine = at(2026, 3, 2, 9, 0);
    let contacts = vec![
        answered(nine, 5, 60),
        answered(nine, 20, 120),
        answered(nine + Duration::minutes(30), 30, 180),
        answered(at(2026, 3, 2, 10, 0), 40, 240),
        abandoned(at(2026, 3, 2, 10, 5), 50),
        // Still waiting: offered, neither answered nor abandoned.
        ContactRow {
            created_at: at(2026, 3, 2, 10, 10),
            assigned_at: None,
            ended_at: None,
            status: ContactStatus::Queued,
        },
        // The day before: not counted.
        answered(at(2026, 3, 1, 23, 59), 1, 1),
    ];
    let dashboard = compute(range, Threshold::default(), &contacts, &[]);
    let t = &dashboard.totals;
    assert_eq!((t.offered, t.answered, t.abandoned), (6, 4, 1));
    assert_eq!(t.answered_within_threshold, 2, "5 s and exactly 20 s");
    assert_eq!(t.service_level, Some(2.0 / 5.0));
    assert_eq!(t.abandon_rate, Some(1.0 / 6.0));
    assert_eq!(t.average_wait_ms, Some(23_750));
    assert_eq!(t.p90_wait_ms, Some(40_000));
    assert_eq!(t.average_handle_ms, Some(150_000));
    assert_eq!(dashboard.hours.len(), 24);
    assert_eq!(dashboard.hours[9].figures.offered, 3);
    assert_eq!(dashboard.hours[10].figures.abandoned, 1);
    assert_eq!(dashboard.hours[11].figures.offered, 0);

    let longer = compute(
        range,
        Threshold::seconds(30).expect("valid"),
        &contacts,
        &[],
    );
    assert_eq!(longer.totals.answered_within_threshold, 3);
}

#[test]
fn agents_by_status_follow_presence_changes() {
    let range = Range::new(at(2026, 3, 2, 8, 0), at(2026, 3, 2, 11, 0)).expect("a morning");
    let (ann, bob) = (UserId::from_uuid(uuid(1)), UserId::from_uuid(uuid(2)));
    let change = |agent, presence: &str, at| PresenceRow {
        agent,
        presence: presence.to_owned(),
        at,
    };
    let presence = vec![
        change(ann, "available", at(2026, 3, 1, 17, 0)),
        change(bob, "offline", at(2026, 3, 1, 18, 0)),
        change(bob, "available", at(2026, 3, 2, 8, 30)),
        change(ann, "break", at(2026, 3, 2, 10, 0)),
    ];
    let dashboard = compute(range, Threshold::default(), &[], &presence);
    let counts: Vec<Vec<(String, u32)>> = dashboard
        .hours
        .iter()
        .map(|h| h.agents.clone().into_iter().collect())
        .collect();
    assert_eq!(
        counts,
        vec![
            vec![("available".into(), 1), ("offline".into(), 1)],
            vec![("available".into(), 2)],
            vec![("available".into(), 1), ("break".into(), 1)],
        ]
    );
}

#[test]
fn bad_ranges_and_thresholds_are_refused() {
    let t = at(2026, 3, 2, 0, 0);
    assert_eq!(Range::new(t, t), Err(DashboardError::EmptyRange));
    assert_eq!(
        Range::new(t, t + Duration::days(32)),
        Err(DashboardError::RangeTooLong)
    );
    assert_eq!(Threshold::seconds(0), Err(DashboardError::BadThreshold));
    assert_eq!(Threshold::seconds(3601), Err(DashboardError::BadThreshold));
}

#[test]
fn today_is_the_local_day() {
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().expect("a zone");
    let today = Range::today(at(2026, 3, 28, 23, 30), zone);
    // 29 March 2026 in Berlin, the day clocks go forward: 23 hours.
    assert_eq!(today.from(), at(2026, 3, 28, 23, 0));
    assert_eq!(today.to(), at(2026, 3, 29, 22, 0));
    assert_eq!(today.hours(), 23);
}

#[test]
fn only_watchers_see_dashboards_and_managers_only_their_teams() {
    let (red, blue) = (TeamId::from_uuid(uuid(10)), TeamId::from_uuid(uuid(11)));
    let queue = QueueId::from_uuid(uuid(20));
    let actor = |role: BuiltinRole, managed: &[TeamId]| Actor {
        user_id: UserId::from_uuid(uuid(1)),
        role: role.role(),
        teams: vec![],
        managed_teams: managed.to_vec(),
        queues: vec![queue],
    };
    let manager = actor(BuiltinRole::Manager, &[red]);
    assert!(may_view(&manager, Scope::Team(red)));
    assert!(!may_view(&manager, Scope::Team(blue)));
    assert!(may_view(&manager, Scope::Queue(queue)));
    let supervisor = actor(BuiltinRole::Supervisor, &[]);
    assert!(may_view(&supervisor, Scope::Team(blue)));
    let agent = actor(BuiltinRole::Agent, &[]);
    assert!(!may_view(&agent, Scope::Queue(queue)));
    assert!(!may_view(&agent, Scope::Team(red)));
}

proptest! {
    /// Whatever the contacts, the hours add up to the totals and the rates stay in 0..=1.
    #[test]
    fn hours_add_up_to_the_totals(rows in proptest::collection::vec((0i64..86_400, 0i64..600, 0i64..3_000, 0u8..3), 0..200)) {
        let from = at(2026, 3, 2, 0, 0);
        let range = Range::new(from, from + Duration::days(1)).expect("a day");
        let contacts: Vec<ContactRow> = rows.iter().map(|&(offset, wait, talk, kind)| {
            let created = from + Duration::seconds(offset);
            match kind {
                0 => answered(created, wait, talk),
                1 => abandoned(created, wait),
                _ => ContactRow { created_at: created, assigned_at: None, ended_at: None, status: ContactStatus::Queued },
            }
        }).collect();
        let d = compute(range, Threshold::default(), &contacts, &[]);
        let sum = |f: fn(&switchboard_core::dashboard::Figures) -> u64| d.hours.iter().map(|h| f(&h.figures)).sum::<u64>();
        prop_assert_eq!(sum(|f| f.offered), d.totals.offered);
        prop_assert_eq!(sum(|f| f.answered), d.totals.answered);
        prop_assert_eq!(sum(|f| f.abandoned), d.totals.abandoned);
        prop_assert_eq!(sum(|f| f.answered_within_threshold), d.totals.answered_within_threshold);
        prop_assert_eq!(d.totals.offered, contacts.len() as u64);
        for rate in [d.totals.service_level, d.totals.abandon_rate].into_iter().flatten() {
            prop_assert!((0.0..=1.0).contains(&rate));
        }
        if let (Some(avg), Some(p90)) = (d.totals.average_wait_ms, d.totals.p90_wait_ms) {
            let max = contacts.iter().filter_map(|c| c.assigned_at.map(|a| (a - c.created_at).num_milliseconds() as u64)).max().unwrap_or(0);
            prop_assert!(p90 <= max && avg <= max);
        }
    }
}
