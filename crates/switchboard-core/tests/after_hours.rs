//! After hours: the decision (open, closed and routed, deflected) with the most specific
//! schedule and rule, the rules' checks, and which queues an agent may transfer to (AHD-6).

use crate::{at, uuid};
use proptest::prelude::*;
use std::collections::HashSet;
use switchboard_core::after_hours::{
    transfer_targets, AfterHours, AfterHoursAction, AfterHoursError, AfterHoursMessage, Decision,
    DeflectionRule, DEFAULT_GREETING, DEFAULT_MESSAGE, DEFAULT_VOICEMAIL_SECONDS,
    MAX_VOICEMAIL_SECONDS, MIN_VOICEMAIL_SECONDS,
};
use switchboard_core::hours::{
    parse_time_zone, Closure, HoursScope, HoursSet, Schedule, WeeklyPeriod,
};
use switchboard_core::voice::PhoneNumber;
use switchboard_core::{Channel, Language, Name, QueueId, QueueKind, QueueNode};

fn q(n: u64) -> QueueId {
    QueueId::from_uuid(uuid(n))
}

fn leaf(n: u64, channel: Channel) -> QueueNode {
    QueueNode {
        id: q(n),
        channel,
        parent: None,
        name: Name::parse("name", &format!("Queue {n}")).unwrap(),
        kind: QueueKind::Leaf,
        position: n as i32,
        priority: 0,
        languages: vec![],
    }
}

fn weekdays(from: &str, until: &str, closures: &[&str]) -> Schedule {
    Schedule::new(
        parse_time_zone("Europe/Paris").unwrap(),
        ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| WeeklyPeriod::parse(&format!("{d} {from}-{until}")).unwrap())
            .collect(),
        vec![],
        closures
            .iter()
            .map(|c| Closure::parse(c).unwrap())
            .collect(),
    )
    .unwrap()
}

fn always() -> Schedule {
    Schedule::new(
        parse_time_zone("UTC").unwrap(),
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| WeeklyPeriod::parse(&format!("{d} 00:00-00:00")).unwrap())
            .collect(),
        vec![],
        vec![],
    )
    .unwrap()
}

fn scope(queue: Option<u64>, channel: Option<Channel>, language: Option<&str>) -> HoursScope {
    HoursScope {
        queue: queue.map(q),
        channel,
        language: language.map(|l| Language::parse(l).unwrap()),
    }
}

fn message(language: Option<&str>, text: &str) -> AfterHoursMessage {
    AfterHoursMessage::new(language.map(|l| Language::parse(l).unwrap()), text).unwrap()
}

fn nodes() -> Vec<QueueNode> {
    vec![
        leaf(1, Channel::Voice),
        leaf(2, Channel::Voice),
        leaf(3, Channel::Voice),
        leaf(10, Channel::Web),
    ]
}

fn rule(
    queue: Option<u64>,
    channel: Channel,
    enabled: bool,
    action: AfterHoursAction,
) -> DeflectionRule {
    DeflectionRule::new(
        queue.map(q),
        channel,
        enabled,
        action,
        vec![message(None, "Closed."), message(Some("fr"), "Fermé.")],
        &nodes(),
    )
    .unwrap()
}

// Tuesday 2026-01-06: 10:00 Paris is 09:00 UTC; 20:00 Paris is 19:00 UTC.
fn tuesday_morning() -> chrono::DateTime<chrono::Utc> {
    at(2026, 1, 6, 9, 0)
}
fn tuesday_night() -> chrono::DateTime<chrono::Utc> {
    at(2026, 1, 6, 19, 0)
}

#[test]
fn a_closed_queue_is_deflected_only_when_deflection_is_enabled() {
    let schedules = vec![(scope(None, None, None), weekdays("09:00", "18:00", &[]))];
    let center = AfterHours::new(
        schedules.clone(),
        vec![rule(None, Channel::Voice, true, AfterHoursAction::Message)],
    );
    assert_eq!(
        center.decide(q(1), Channel::Voice, None, tuesday_morning()),
        Decision::Open
    );
    match center.decide(q(1), Channel::Voice, None, tuesday_night()) {
        Decision::Deflect(found) => assert_eq!(found.action, AfterHoursAction::Message),
        other => panic!("expected a deflection, got {other:?}"),
    }
    // The web channel has no rule: closed, but routed (the chat waits).
    assert_eq!(
        center.decide(q(10), Channel::Web, None, tuesday_night()),
        Decision::ClosedRouted
    );
    // Without any rule, nothing is deflected.
    let none = AfterHours::new(schedules, vec![]);
    assert_eq!(
        none.decide(q(1), Channel::Voice, None, tuesday_night()),
        Decision::ClosedRouted
    );
    // Without any schedule, everything is open.
    let open = AfterHours::new(
        vec![],
        vec![rule(None, Channel::Voice, true, AfterHoursAction::Message)],
    );
    assert_eq!(
        open.decide(q(1), Channel::Voice, None, tuesday_night()),
        Decision::Open
    );
}

#[test]
fn a_queue_rule_overrides_the_channel_rule_and_may_opt_out() {
    let schedules = vec![(scope(None, None, None), weekdays("09:00", "18:00", &[]))];
    let rules = vec![
        rule(None, Channel::Voice, true, AfterHoursAction::Message),
        rule(Some(1), Channel::Voice, true, AfterHoursAction::Queue(q(3))),
        rule(
            Some(2),
            Channel::Voice,
            false,
            AfterHoursAction::Forward(PhoneNumber::parse("number", "+15550100").unwrap()),
        ),
    ];
    let hours = AfterHours::new(schedules, rules);
    let night = tuesday_night();
    assert!(matches!(
        hours.decide(q(1), Channel::Voice, None, night),
        Decision::Deflect(DeflectionRule { action: AfterHoursAction::Queue(target), .. }) if *target == q(3)
    ));
    assert_eq!(
        hours.decide(q(2), Channel::Voice, None, night),
        Decision::ClosedRouted
    );
    assert!(matches!(
        hours.decide(q(3), Channel::Voice, None, night),
        Decision::Deflect(DeflectionRule {
            action: AfterHoursAction::Message,
            queue: None,
            ..
        })
    ));
}

#[test]
fn the_most_specific_schedule_decides() {
    let schedules = vec![
        (scope(None, None, None), weekdays("09:00", "18:00", &[])),
        // Voice is open until 21:00; French callers until 22:00; queue 2 always.
        (
            scope(None, Some(Channel::Voice), None),
            weekdays("09:00", "21:00", &[]),
        ),
        (
            scope(None, None, Some("fr")),
            weekdays("09:00", "22:00", &[]),
        ),
        (scope(Some(2), None, None), always()),
        // A closure of queue 3 for the whole Tuesday.
        (
            scope(Some(3), Some(Channel::Voice), None),
            weekdays(
                "09:00",
                "18:00",
                &["2026-01-06T00:00:00Z/2026-01-07T00:00:00Z"],
            ),
        ),
    ];
    let hours = AfterHours::new(schedules.clone(), vec![]);
    let fr = Language::parse("fr").unwrap();
    let en = Language::parse("en").unwrap();
    // 19:30 Paris: voice open, web closed.
    let t = at(2026, 1, 6, 18, 30);
    assert!(hours.is_open(q(1), Channel::Voice, None, t));
    assert!(!hours.is_open(q(10), Channel::Web, None, t));
    // 21:30 Paris: French open on both channels, English voice closed.
    let t = at(2026, 1, 6, 20, 30);
    assert!(hours.is_open(q(1), Channel::Voice, Some(&fr), t));
    assert!(!hours.is_open(q(1), Channel::Voice, Some(&en), t));
    assert!(hours.is_open(q(2), Channel::Voice, Some(&en), t));
    // The closure closes queue 3 in the morning.
    assert!(!hours.is_open(q(3), Channel::Voice, None, tuesday_morning()));
    assert!(hours.is_open(q(1), Channel::Voice, None, tuesday_morning()));
}

#[test]
fn messages_follow_the_language() {
    let found = rule(None, Channel::Voice, true, AfterHoursAction::Message);
    let fr = Language::parse("fr").unwrap();
    let de = Language::parse("de").unwrap();
    assert_eq!(found.message_for(Some(&fr)), "Fermé.");
    assert_eq!(found.message_for(Some(&de)), "Closed.");
    assert_eq!(found.message_for(None), "Closed.");
    let bare = DeflectionRule::new(
        None,
        Channel::Voice,
        true,
        AfterHoursAction::Message,
        vec![],
        &nodes(),
    )
    .unwrap();
    assert_eq!(bare.message_for(Some(&fr)), DEFAULT_MESSAGE);
}

#[test]
fn rules_are_checked() {
    let n = nodes();
    let check = |queue: Option<u64>, channel, action, messages| {
        DeflectionRule::new(queue.map(q), channel, true, action, messages, &n).unwrap_err()
    };
    assert_eq!(
        check(None, Channel::Web, AfterHoursAction::Queue(q(10)), vec![]),
        AfterHoursError::ActionNotForChannel { channel: "web" }
    );
    assert_eq!(
        check(
            Some(1),
            Channel::Voice,
            AfterHoursAction::Queue(q(1)),
            vec![]
        ),
        AfterHoursError::TargetIsSelf
    );
    assert_eq!(
        check(
            Some(1),
            Channel::Voice,
            AfterHoursAction::Queue(q(10)),
            vec![]
        ),
        AfterHoursError::BadTarget
    );
    assert_eq!(
        check(Some(10), Channel::Voice, AfterHoursAction::Message, vec![]),
        AfterHoursError::QueueNotInChannel
    );
    assert_eq!(
        check(
            None,
            Channel::Voice,
            AfterHoursAction::Message,
            vec![message(None, "a"), message(None, "b")]
        ),
        AfterHoursError::DuplicateLanguage
    );
    // Voicemail: calls only, its length within bounds.
    let voicemail = |max_seconds| AfterHoursAction::Voicemail { max_seconds };
    assert_eq!(
        check(None, Channel::Mobile, voicemail(120), vec![]),
        AfterHoursError::ActionNotForChannel { channel: "mobile" }
    );
    for bad in [0, MIN_VOICEMAIL_SECONDS - 1, MAX_VOICEMAIL_SECONDS + 1] {
        assert_eq!(
            check(Some(1), Channel::Voice, voicemail(bad), vec![]),
            AfterHoursError::VoicemailLength
        );
    }
    for good in [
        MIN_VOICEMAIL_SECONDS,
        DEFAULT_VOICEMAIL_SECONDS,
        MAX_VOICEMAIL_SECONDS,
    ] {
        let rule = DeflectionRule::new(
            Some(q(1)),
            Channel::Voice,
            true,
            voicemail(good),
            vec![],
            &n,
        )
        .unwrap();
        assert!(rule.takes_voicemail());
        // Without a message of its own, a voicemail rule greets with the built-in greeting.
        assert_eq!(rule.message_for(None), DEFAULT_GREETING);
    }
    let off = DeflectionRule::new(None, Channel::Voice, false, voicemail(60), vec![], &n).unwrap();
    assert!(!off.takes_voicemail(), "a disabled rule takes no voicemail");
    assert!(AfterHoursMessage::new(None, "  ").is_err());
    assert!(AfterHoursMessage::new(None, &"x".repeat(1001)).is_err());
    assert!(AfterHoursMessage::new(None, "bell\u{7}").is_err());
}

#[test]
fn transfer_targets_follow_the_rules() {
    let n = nodes();
    let schedules = vec![
        (scope(None, None, None), weekdays("09:00", "18:00", &[])),
        (scope(Some(3), None, None), always()),
    ];
    // Queue 1 deflects after hours; queue 2 does not; queue 3 is always open.
    let hours = AfterHours::new(
        schedules,
        vec![rule(
            Some(1),
            Channel::Voice,
            true,
            AfterHoursAction::Message,
        )],
    );
    let ids = |targets: Vec<&QueueNode>| targets.iter().map(|n| n.id).collect::<Vec<_>>();
    let nobody = HashSet::new();
    // In hours: every voice queue, whatever the setting.
    for allow in [false, true] {
        assert_eq!(
            ids(transfer_targets(
                &hours,
                &n,
                Channel::Voice,
                &nobody,
                allow,
                tuesday_morning()
            )),
            vec![q(1), q(2), q(3)]
        );
    }
    // After hours, not allowed: only the open queue.
    assert_eq!(
        ids(transfer_targets(
            &hours,
            &n,
            Channel::Voice,
            &nobody,
            false,
            tuesday_night()
        )),
        vec![q(3)]
    );
    // Allowed: the deflecting queue too; queue 2 once it has an agent online.
    assert_eq!(
        ids(transfer_targets(
            &hours,
            &n,
            Channel::Voice,
            &nobody,
            true,
            tuesday_night()
        )),
        vec![q(1), q(3)]
    );
    let staffed: HashSet<QueueId> = [q(2)].into();
    assert_eq!(
        ids(transfer_targets(
            &hours,
            &n,
            Channel::Voice,
            &staffed,
            true,
            tuesday_night()
        )),
        vec![q(1), q(2), q(3)]
    );
    // Another channel's queues are never listed.
    assert_eq!(
        ids(transfer_targets(
            &hours,
            &n,
            Channel::Web,
            &nobody,
            true,
            tuesday_morning()
        )),
        vec![q(10)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]
    /// The index picks what a plain scan of every entry picks (the most specific match, on a
    /// tie the last given), for any mix of scopes.
    #[test]
    fn the_index_picks_the_most_specific_entry(
        scopes in proptest::collection::vec((proptest::option::of(0u64..4), proptest::option::of(0usize..2), proptest::option::of(0usize..2), 0u16..24), 0..12),
    ) {
        let channels = [Channel::Voice, Channel::Web];
        let languages = ["en", "fr"];
        let entries: Vec<(HoursScope, Schedule)> = scopes
            .iter()
            .map(|(queue, channel, language, hour)| {
                let until = format!("{:02}:00", (hour + 3) % 24);
                (
                    scope(*queue, channel.map(|c| channels[c]), language.map(|l| languages[l])),
                    weekdays(&format!("{hour:02}:00"), &until, &[]),
                )
            })
            .collect();
        let set = HoursSet::new(entries.clone());
        for queue in 0..4 {
            for channel in channels {
                for language in [None, Some("en"), Some("fr")] {
                    let language = language.map(|l| Language::parse(l).unwrap());
                    let scanned = entries
                        .iter()
                        .enumerate()
                        .filter(|(_, (s, _))| {
                            s.queue.is_none_or(|x| x == q(queue))
                                && s.channel.is_none_or(|c| c == channel)
                                && s.language.as_ref().is_none_or(|l| Some(l) == language.as_ref())
                        })
                        .max_by_key(|(_, (s, _))| s.specificity())
                        .map(|(index, _)| index);
                    prop_assert_eq!(set.entry_for(q(queue), channel, language.as_ref()), scanned);
                }
            }
        }
    }
}

/// The mobile SDK's phone options (AHD-3): a chat queue is reached by phone through the voice
/// queue of its path, on the number nearest it (else the IVR's); voicemail is offered only
/// while that voice queue is closed and its rule takes voicemail.
#[test]
fn phone_options_follow_the_voice_queue_of_the_same_path() {
    use switchboard_core::queue::QueueTree;
    use switchboard_core::voice::Did;
    use switchboard_core::voicemail::phone_option;
    let named = |n: u64, channel, name: &str, parent: Option<u64>, kind| QueueNode {
        name: Name::parse("name", name).unwrap(),
        parent: parent.map(q),
        kind,
        ..leaf(n, channel)
    };
    let tree = QueueTree::new(vec![
        named(1, Channel::Voice, "Billing", None, QueueKind::Menu),
        named(2, Channel::Voice, "Refunds", Some(1), QueueKind::Leaf),
        named(3, Channel::Voice, "Sales", None, QueueKind::Leaf),
        named(11, Channel::Mobile, "Billing", None, QueueKind::Menu),
        named(12, Channel::Mobile, "Refunds", Some(11), QueueKind::Leaf),
        named(13, Channel::Mobile, "Sales", None, QueueKind::Leaf),
        named(14, Channel::Mobile, "Shipping", None, QueueKind::Leaf),
    ])
    .unwrap();
    let did = |number: &str, entry: Option<u64>| Did {
        number: PhoneNumber::parse("number", number).unwrap(),
        entry: entry.map(q),
        language: None,
    };
    // The IVR's number, and one straight into the Billing menu.
    let dids = vec![did("+15550100", None), did("+15550111", Some(1))];
    let nodes: Vec<QueueNode> = tree.nodes().cloned().collect();
    let voicemail = DeflectionRule::new(
        None,
        Channel::Voice,
        true,
        AfterHoursAction::Voicemail { max_seconds: 60 },
        vec![],
        &nodes,
    )
    .unwrap();
    // Weekdays 09:00-18:00 in Paris: open on a Monday at 10:00, closed on a Sunday.
    let hours = AfterHours::new(
        vec![(scope(None, None, None), weekdays("09:00", "18:00", &[]))],
        vec![voicemail],
    );
    let (monday, sunday) = (at(2026, 3, 2, 9, 0), at(2026, 3, 1, 9, 0));
    let option = |queue, now| {
        phone_option(&hours, &tree, &dids, q(queue), now)
            .map(|o| (o.number.as_str().to_owned(), o.voicemail))
    };
    // Refunds is reached through the Billing menu's own number.
    assert_eq!(option(12, sunday), Some(("+15550111".into(), true)));
    assert_eq!(option(12, monday), Some(("+15550111".into(), false)));
    // Sales has no number of its own: the IVR's.
    assert_eq!(option(13, sunday), Some(("+15550100".into(), true)));
    // Shipping has no voice queue: the IVR's number, never voicemail.
    assert_eq!(option(14, sunday), Some(("+15550100".into(), false)));
    // Without numbers, nothing.
    assert_eq!(phone_option(&hours, &tree, &[], q(13), sunday), None);
    // A rule that does not take voicemail offers none.
    let message_only = AfterHours::new(
        vec![(scope(None, None, None), weekdays("09:00", "18:00", &[]))],
        vec![DeflectionRule::new(
            None,
            Channel::Voice,
            true,
            AfterHoursAction::Message,
            vec![],
            &nodes,
        )
        .unwrap()],
    );
    let found = phone_option(&message_only, &tree, &dids, q(13), sunday).unwrap();
    assert!(!found.voicemail);
}
