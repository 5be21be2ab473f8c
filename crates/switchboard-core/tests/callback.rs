//! Callbacks: the request's checks, the life from slot to connected or failed, retries by the
//! policy, the place an in-queue request keeps, and offers on chat rules.

use crate::{at, uuid};
use chrono::Duration;
use proptest::prelude::*;
use switchboard_core::after_hours::{AfterHoursAction, AfterHoursError, ChatOffer, DeflectionRule};
use switchboard_core::callback::{
    offered_slots, AfterAttempt, AttemptOutcome, Callback, CallbackError, CallbackRequest,
    CallbackStatus, RetryPolicy, E164,
};
use switchboard_core::hours::{parse_time_zone, Schedule, WeeklyPeriod};
use switchboard_core::{
    CallbackId, Channel, ContactId, Name, QueueId, QueueKind, QueueNode, UserId,
};

fn weekdays(tz: &str) -> Schedule {
    let periods = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| WeeklyPeriod::parse(&format!("{d} 09:00-17:00")).unwrap())
        .collect();
    Schedule::new(parse_time_zone(tz).unwrap(), periods, vec![], vec![]).unwrap()
}

fn request(slot: chrono::DateTime<chrono::Utc>, number: &str) -> CallbackRequest {
    CallbackRequest {
        queue: QueueId::from_uuid(uuid(1)),
        number: number.into(),
        priority: 5,
        slot,
        policy: RetryPolicy::new(2, Duration::minutes(15)).unwrap(),
    }
}

#[test]
fn numbers_must_be_e164() {
    assert!(E164::parse("+33612345678").is_ok());
    assert!(E164::parse(" +15551234567 ").is_ok());
    for bad in [
        "0612345678",
        "+0612345678",
        "+1234567",
        "+1234567890123456",
        "+33 6 12",
        "",
        "+",
    ] {
        assert!(
            matches!(E164::parse(bad), Err(CallbackError::BadNumber(_))),
            "{bad}"
        );
    }
}

#[test]
fn policies_are_bounded() {
    assert!(RetryPolicy::new(0, Duration::minutes(5)).is_err());
    assert!(RetryPolicy::new(11, Duration::minutes(5)).is_err());
    assert!(RetryPolicy::new(3, Duration::seconds(30)).is_err());
    assert!(RetryPolicy::new(3, Duration::hours(25)).is_err());
    assert!(RetryPolicy::new(10, Duration::hours(24)).is_ok());
}

#[test]
fn only_open_slots_are_bookable() {
    // Friday 2026-03-27 16:00 UTC in Paris (17:00 local, closing): the next slots are Monday's.
    let now = at(2026, 3, 27, 16, 0);
    let schedule = weekdays("Europe/Paris");
    let slots = offered_slots(Some(&schedule), now).unwrap();
    // Paris moved to summer time on Sunday 29 March: Monday opens at 07:00 UTC, not 08:00.
    assert_eq!(slots[0], at(2026, 3, 30, 7, 0));
    assert_eq!(slots[1], at(2026, 3, 30, 7, 30));
    let id = CallbackId::from_uuid(uuid(9));
    let booked = Callback::schedule(id, request(slots[1], "+33612345678"), &slots, now).unwrap();
    assert_eq!(booked.status, CallbackStatus::Scheduled);
    assert_eq!(booked.due_at, slots[1]);
    // An hour before opening (the winter-time opening) is not a slot.
    assert_eq!(
        Callback::schedule(
            id,
            request(at(2026, 3, 30, 8, 15), "+33612345678"),
            &slots,
            now
        ),
        Err(CallbackError::SlotNotOpen)
    );
    assert!(matches!(
        Callback::schedule(id, request(slots[0], "06 12"), &slots, now),
        Err(CallbackError::BadNumber(_))
    ));
    assert_eq!(offered_slots(None, now), Err(CallbackError::NoSchedule));
}

#[test]
fn a_callback_is_retried_then_fails() {
    let now = at(2026, 3, 30, 7, 0);
    let slots = [now];
    let mut callback = Callback::schedule(
        CallbackId::from_uuid(uuid(2)),
        request(now, "+33612345678"),
        &slots,
        now,
    )
    .unwrap();
    assert!(!callback.is_due(now - Duration::seconds(1)));
    assert!(callback.is_due(now));
    let agent = UserId::from_uuid(uuid(3));
    // Not dialled before it is queued.
    assert!(callback.dialing(agent, now).is_err());
    callback.queued(ContactId::from_uuid(uuid(4)), now).unwrap();
    assert_eq!(callback.arrival(), now);
    assert_eq!(callback.dialing(agent, now).unwrap(), 1);
    let retry = callback
        .attempt_ended(AttemptOutcome::NoAnswer, now + Duration::minutes(1))
        .unwrap();
    let again = now + Duration::minutes(16);
    assert_eq!(retry, AfterAttempt::Retry(again));
    assert_eq!(callback.status, CallbackStatus::Scheduled);
    assert!(!callback.is_due(again - Duration::seconds(1)));
    assert_eq!(callback.contact, None);
    callback
        .queued(ContactId::from_uuid(uuid(5)), again)
        .unwrap();
    assert_eq!(callback.arrival(), again);
    assert_eq!(callback.dialing(agent, again).unwrap(), 2);
    assert_eq!(
        callback.attempt_ended(AttemptOutcome::Busy, again).unwrap(),
        AfterAttempt::Failed
    );
    assert_eq!(callback.status, CallbackStatus::Failed);
    let outcomes: Vec<_> = callback.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [Some(AttemptOutcome::NoAnswer), Some(AttemptOutcome::Busy)]
    );
    assert!(callback.cancel(again).is_err());
}

#[test]
fn an_answered_callback_is_connected_and_cannot_be_cancelled() {
    let now = at(2026, 3, 30, 7, 0);
    let mut callback = Callback::schedule(
        CallbackId::from_uuid(uuid(2)),
        request(now, "+33612345678"),
        &[now],
        now,
    )
    .unwrap();
    callback.queued(ContactId::from_uuid(uuid(4)), now).unwrap();
    callback.dialing(UserId::from_uuid(uuid(3)), now).unwrap();
    assert!(callback.cancel(now).is_err());
    assert_eq!(
        callback
            .attempt_ended(AttemptOutcome::Answered, now)
            .unwrap(),
        AfterAttempt::Connected
    );
    assert_eq!(callback.status, CallbackStatus::Connected);
    assert!(callback.status.is_final());
    assert!(callback
        .attempt_ended(AttemptOutcome::Answered, now)
        .is_err());
}

#[test]
fn an_in_queue_request_keeps_its_place_once() {
    let joined = at(2026, 3, 30, 9, 0);
    let asked = joined + Duration::minutes(7);
    let mut callback = Callback::from_queue(
        CallbackId::from_uuid(uuid(6)),
        QueueId::from_uuid(uuid(1)),
        "+4915112345678",
        0,
        joined,
        RetryPolicy::default(),
        asked,
    )
    .unwrap();
    assert!(callback.is_due(asked));
    assert_eq!(callback.arrival(), joined);
    callback
        .queued(ContactId::from_uuid(uuid(7)), asked)
        .unwrap();
    callback.dialing(UserId::from_uuid(uuid(3)), asked).unwrap();
    let Ok(AfterAttempt::Retry(again)) = callback.attempt_ended(AttemptOutcome::NoAnswer, asked)
    else {
        panic!("a first no-answer is retried");
    };
    // A retry waits its turn like anyone arriving then.
    assert_eq!(callback.arrival(), again);
    // A caller without a usable number cannot ask.
    assert!(Callback::from_queue(
        CallbackId::from_uuid(uuid(8)),
        QueueId::from_uuid(uuid(1)),
        "anonymous",
        0,
        joined,
        RetryPolicy::default(),
        asked
    )
    .is_err());
}

#[test]
fn a_cancelled_callback_is_never_due() {
    let now = at(2026, 3, 30, 7, 0);
    let mut callback = Callback::schedule(
        CallbackId::from_uuid(uuid(2)),
        request(now, "+33612345678"),
        &[now],
        now,
    )
    .unwrap();
    callback.cancel(now).unwrap();
    assert!(!callback.is_due(now + Duration::days(1)));
    assert!(callback.queued(ContactId::from_uuid(uuid(4)), now).is_err());
}

fn node(n: u64, channel: Channel, kind: QueueKind) -> QueueNode {
    QueueNode {
        id: QueueId::from_uuid(uuid(n)),
        channel,
        parent: None,
        name: Name::parse("name", "q").unwrap(),
        kind,
        position: 0,
        priority: 0,
        languages: vec![],
    }
}

#[test]
fn chat_rules_offer_a_scheduled_call_into_a_voice_leaf() {
    let nodes = [
        node(1, Channel::Web, QueueKind::Leaf),
        node(2, Channel::Voice, QueueKind::Leaf),
        node(3, Channel::Voice, QueueKind::Menu),
    ];
    let rule = |channel| {
        DeflectionRule::new(
            None,
            channel,
            true,
            AfterHoursAction::Message,
            vec![],
            &nodes,
        )
        .unwrap()
    };
    let call = |n| ChatOffer::ScheduledCall {
        queue: QueueId::from_uuid(uuid(n)),
    };
    let web = rule(Channel::Web)
        .with_offers(vec![call(2), ChatOffer::Email], &nodes)
        .unwrap();
    assert_eq!(web.offers().len(), 2);
    assert_eq!(
        rule(Channel::Web).with_offers(vec![call(3)], &nodes),
        Err(AfterHoursError::BadCallbackQueue)
    );
    assert_eq!(
        rule(Channel::Web).with_offers(vec![call(1)], &nodes),
        Err(AfterHoursError::BadCallbackQueue)
    );
    assert_eq!(
        rule(Channel::Mobile).with_offers(vec![ChatOffer::Email, ChatOffer::Email], &nodes),
        Err(AfterHoursError::DuplicateOffer)
    );
    assert!(matches!(
        rule(Channel::Voice).with_offers(vec![ChatOffer::Email], &nodes),
        Err(AfterHoursError::OffersNotForChannel { .. })
    ));
}

proptest! {
    /// Whatever the outcomes, a callback makes at most `max_attempts` attempts, ends
    /// connected only on an answer, and every attempt is on the record with its outcome.
    #[test]
    fn attempts_never_exceed_the_policy(
        max in 1u32..=10,
        outcomes in proptest::collection::vec(0usize..4, 1..15),
    ) {
        let now = at(2026, 3, 30, 7, 0);
        let mut req = request(now, "+33612345678");
        req.policy = RetryPolicy::new(max, Duration::minutes(5)).unwrap();
        let mut callback =
            Callback::schedule(CallbackId::from_uuid(uuid(2)), req, &[now], now).unwrap();
        let mut clock = now;
        for pick in outcomes {
            if callback.status.is_final() {
                break;
            }
            prop_assert!(callback.is_due(clock) || callback.due_at > clock);
            clock = clock.max(callback.due_at);
            callback.queued(ContactId::from_uuid(uuid(4)), clock).unwrap();
            callback.dialing(UserId::from_uuid(uuid(3)), clock).unwrap();
            let outcome = AttemptOutcome::ALL[pick];
            let next = callback.attempt_ended(outcome, clock).unwrap();
            prop_assert_eq!(next == AfterAttempt::Connected, outcome == AttemptOutcome::Answered);
        }
        prop_assert!(callback.attempts.len() as u32 <= max);
        prop_assert!(callback.attempts.iter().all(|a| a.outcome.is_some()));
        if callback.status == CallbackStatus::Failed {
            prop_assert_eq!(callback.attempts.len() as u32, max);
        }
    }
}
