//! Attendance in virtual time: an agent or a chat away for the grace is due, one that comes
//! back within it is not; the rules that decide what being due means; the wait estimate.

use crate::{at, uuid};
use chrono::Duration;
use switchboard_core::attendance::{agent_goes_offline, chat_is_abandoned, Attendance};
use switchboard_core::wait::QueuePace;
use switchboard_core::{ContactStatus, Name, Presence, QueueId, UserId};

fn agent(n: u64) -> UserId {
    UserId::from_uuid(uuid(n))
}

#[test]
fn a_cut_connection_makes_its_party_due_after_the_grace_and_not_before() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(60));
    watch.connected(agent(1), 10);
    assert_eq!(
        watch.next_deadline(),
        None,
        "present parties are not watched"
    );
    watch.disconnected(10, t0);
    assert_eq!(watch.next_deadline(), Some(t0 + Duration::seconds(60)));
    assert_eq!(watch.poll_due(t0 + Duration::seconds(59)), None);
    assert_eq!(watch.poll_due(t0 + Duration::seconds(60)), Some(agent(1)));
    assert_eq!(
        watch.poll_due(t0 + Duration::seconds(61)),
        None,
        "handed out once"
    );
    assert_eq!(watch.next_deadline(), None);
}

#[test]
fn reconnecting_within_the_grace_keeps_the_party_present() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(60));
    watch.connected(agent(1), 1);
    watch.disconnected(1, t0);
    watch.connected(agent(1), 2);
    assert!(watch.is_present(agent(1)));
    assert_eq!(watch.next_deadline(), None);
    assert_eq!(watch.poll_due(t0 + Duration::hours(1)), None);
    // Leaving again starts a new grace from then, not from the first cut.
    watch.disconnected(2, t0 + Duration::seconds(50));
    assert_eq!(watch.poll_due(t0 + Duration::seconds(100)), None);
    assert_eq!(watch.poll_due(t0 + Duration::seconds(110)), Some(agent(1)));
}

#[test]
fn a_party_with_another_connection_open_is_not_away() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(60));
    watch.connected(agent(1), 1);
    watch.connected(agent(1), 2);
    watch.disconnected(1, t0);
    assert!(watch.is_present(agent(1)));
    assert_eq!(watch.poll_due(t0 + Duration::hours(1)), None);
    watch.disconnected(2, t0 + Duration::seconds(5));
    assert_eq!(watch.away_since(agent(1)), Some(t0 + Duration::seconds(5)));
    // An unknown connection and a second close change nothing.
    watch.disconnected(99, t0);
    watch.disconnected(2, t0 + Duration::seconds(30));
    assert_eq!(watch.away_since(agent(1)), Some(t0 + Duration::seconds(5)));
}

#[test]
fn one_connection_may_belong_to_several_parties_and_leaves_them_all() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(120));
    watch.connected(agent(1), 7);
    watch.connected(agent(2), 7);
    watch.connected(agent(2), 8);
    watch.disconnected(7, t0);
    assert_eq!(watch.away_since(agent(1)), Some(t0));
    assert!(watch.is_present(agent(2)), "still on connection 8");
}

#[test]
fn due_parties_come_out_in_the_order_they_left_and_kept_ones_come_back_later() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(60));
    for (n, connection) in [(1, 1), (2, 2), (3, 3)] {
        watch.connected(agent(n), connection);
    }
    watch.disconnected(2, t0);
    watch.disconnected(1, t0 + Duration::seconds(1));
    watch.disconnected(3, t0 + Duration::seconds(2));
    watch.forget(agent(3));
    let later = t0 + Duration::seconds(90);
    assert_eq!(watch.poll_due(later), Some(agent(2)));
    watch.keep(agent(2), later);
    assert_eq!(watch.poll_due(later), Some(agent(1)));
    assert_eq!(
        watch.poll_due(later),
        None,
        "forgotten and kept ones are not due"
    );
    assert_eq!(watch.next_deadline(), Some(later + Duration::seconds(60)));
    assert_eq!(
        watch.poll_due(later + Duration::seconds(60)),
        Some(agent(2))
    );
}

#[test]
fn an_expected_party_is_away_from_then_unless_it_connected() {
    let t0 = at(2026, 3, 2, 9, 0);
    let mut watch = Attendance::new(Duration::seconds(120));
    watch.expect(agent(1), t0);
    watch.connected(agent(2), 1);
    watch.expect(agent(2), t0);
    watch.expect(agent(1), t0 + Duration::seconds(100));
    assert_eq!(
        watch.away_since(agent(1)),
        Some(t0),
        "an earlier absence stands"
    );
    assert_eq!(watch.away_since(agent(2)), None);
    assert_eq!(watch.poll_due(t0 + Duration::seconds(120)), Some(agent(1)));
}

#[test]
fn only_a_reachable_status_is_taken_away_and_a_phone_keeps_it() {
    let missed = Presence::Custom(Name::parse("x", "Missed call").unwrap());
    for presence in [Presence::Available, Presence::Busy, Presence::Break, missed] {
        assert!(agent_goes_offline(&presence, false), "{presence}");
        assert!(
            !agent_goes_offline(&presence, true),
            "{presence} with a phone"
        );
    }
    assert!(!agent_goes_offline(&Presence::Offline, false));
}

#[test]
fn only_a_waiting_chat_is_abandoned() {
    assert!(chat_is_abandoned(ContactStatus::Queued));
    for status in [
        ContactStatus::Assigned,
        ContactStatus::Ended,
        ContactStatus::Abandoned,
    ] {
        assert!(!chat_is_abandoned(status));
    }
}

#[test]
fn the_wait_estimate_is_the_recent_pace_times_the_position() {
    let queue = QueueId::from_uuid(uuid(50));
    let t0 = at(2026, 3, 2, 9, 0);
    let mut pace = QueuePace::default();
    assert_eq!(pace.estimate(queue, 1, t0), None, "no history, no estimate");
    pace.record(queue, t0);
    assert_eq!(pace.estimate(queue, 1, t0), None, "one hand-off is no pace");
    pace.record(queue, t0 + Duration::seconds(30));
    pace.record(queue, t0 + Duration::seconds(90));
    let now = t0 + Duration::seconds(100);
    // 45 s between hand-offs on average.
    assert_eq!(pace.estimate(queue, 1, now), Some(Duration::seconds(45)));
    assert_eq!(pace.estimate(queue, 3, now), Some(Duration::seconds(135)));
    // A stalled queue is not promised its old pace.
    let stalled = t0 + Duration::seconds(90 + 300);
    assert_eq!(
        pace.estimate(queue, 2, stalled),
        Some(Duration::seconds(600))
    );
    // Hand-offs older than an hour are forgotten.
    assert_eq!(pace.estimate(queue, 1, t0 + Duration::hours(2)), None);
    // Other queues have their own pace.
    assert_eq!(pace.estimate(QueueId::from_uuid(uuid(51)), 1, now), None);
}

#[test]
fn the_pace_keeps_the_last_twenty_hand_offs() {
    let queue = QueueId::from_uuid(uuid(50));
    let t0 = at(2026, 3, 2, 9, 0);
    let mut pace = QueuePace::default();
    // Twenty slow hand-offs, then twenty fast ones: only the fast ones count.
    for i in 0..20 {
        pace.record(queue, t0 + Duration::seconds(i * 100));
    }
    let fast = t0 + Duration::seconds(2000);
    for i in 0..20 {
        pace.record(queue, fast + Duration::seconds(i * 10));
    }
    let now = fast + Duration::seconds(190);
    assert_eq!(pace.estimate(queue, 1, now), Some(Duration::seconds(10)));
}
