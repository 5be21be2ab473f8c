//! What the CRM receives of calls: the upload retry policy, recordings cut into parts, and a
//! call ticket's text.

use chrono::{Duration, TimeZone, Utc};
use switchboard_core::chat::ReservedProperties;
use switchboard_core::crm::{
    call_ticket_subject, call_ticket_text, next_part, parts_total, smaller_part, CallTicketFacts,
    Part, PART_MAX_BYTES, PART_MIN_BYTES,
};
use switchboard_core::jobs::RetryPolicy;
use switchboard_core::voice::CallRecord;
use switchboard_core::CallId;

fn upload_policy() -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::seconds(10),
        max_delay: Duration::seconds(1800),
        max_attempts: u32::MAX,
        max_age: Some(Duration::days(6)),
        jitter: true,
    }
}

#[test]
fn retries_are_jittered_between_half_and_all_of_the_backoff() {
    let policy = upload_policy();
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    assert_eq!(policy.backoff(1), Duration::seconds(10));
    assert_eq!(policy.backoff(4), Duration::seconds(80));
    assert_eq!(policy.backoff(40), Duration::seconds(1800), "capped");
    assert_eq!(
        policy.next_attempt(1, t, t, None, 0.0),
        Some(t + Duration::seconds(5))
    );
    assert_eq!(
        policy.next_attempt(1, t, t, None, 0.5),
        Some(t + Duration::milliseconds(7500))
    );
    assert_eq!(
        policy.next_attempt(3, t, t, None, 1.0),
        Some(t + Duration::seconds(40))
    );
    // Any draw stays in range, even one out of it.
    for jitter in [-3.0, f64::NAN, 7.0] {
        let at = policy.next_attempt(2, t, t, None, jitter).unwrap();
        assert!(
            at >= t + Duration::seconds(10) && at <= t + Duration::seconds(20),
            "{jitter}"
        );
    }
}

#[test]
fn a_servers_retry_after_is_never_shortened() {
    let policy = upload_policy();
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let asked = Some(Duration::seconds(120));
    assert_eq!(
        policy.next_attempt(1, t, t, asked, 0.3),
        Some(t + Duration::seconds(120))
    );
    // A shorter wait than the backoff leaves the backoff.
    let short = Some(Duration::seconds(1));
    assert_eq!(
        policy.next_attempt(3, t, t, short, 1.0),
        Some(t + Duration::seconds(40))
    );
    // The standard policy honours it too, without jitter.
    let standard = RetryPolicy::STANDARD;
    assert_eq!(
        standard.next_attempt(1, t, t, asked, 0.9),
        Some(t + Duration::seconds(120))
    );
    assert_eq!(
        standard.next_attempt(2, t, t, None, 0.9),
        Some(t + Duration::seconds(10))
    );
}

#[test]
fn an_upload_gives_up_when_it_grows_too_old_not_by_attempts() {
    let policy = upload_policy();
    let created = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let late = created + Duration::days(6) - Duration::minutes(20);
    assert!(
        policy
            .next_attempt(1000, created, late, None, 0.0)
            .is_some(),
        "attempts do not count"
    );
    assert_eq!(
        policy.next_attempt(1000, created, late, None, 1.0),
        None,
        "30 min would be too late"
    );
    assert_eq!(
        policy.next_attempt(1, created, created + Duration::days(7), None, 0.0),
        None
    );
    // A Retry-After past the age gives up too.
    assert_eq!(
        policy.next_attempt(1, created, late, Some(Duration::hours(1)), 0.0),
        None
    );
    let standard = RetryPolicy::STANDARD;
    assert_eq!(
        standard.next_attempt(30, created, created, None, 0.0),
        None,
        "by attempts"
    );
}

#[test]
fn a_recording_goes_in_parts_of_at_most_50_mb_in_order() {
    assert_eq!(PART_MAX_BYTES, 50_000_000);
    let size = 120_000_044;
    assert_eq!(parts_total(size, 0, 0, PART_MAX_BYTES), 3);
    let mut parts = Vec::new();
    let (mut done, mut bytes) = (0, 0);
    while let Some(part) = next_part(size, done, bytes, PART_MAX_BYTES) {
        parts.push(part);
        done += 1;
        bytes += part.len;
    }
    assert_eq!(
        parts,
        vec![
            Part {
                number: 1,
                of: 3,
                offset: 0,
                len: 50_000_000
            },
            Part {
                number: 2,
                of: 3,
                offset: 50_000_000,
                len: 50_000_000
            },
            Part {
                number: 3,
                of: 3,
                offset: 100_000_000,
                len: 20_000_044
            },
        ]
    );
    // Exactly 50 MB is one part; an empty file is one empty part, so the CRM hears of it.
    assert_eq!(parts_total(PART_MAX_BYTES, 0, 0, PART_MAX_BYTES), 1);
    assert_eq!(
        next_part(0, 0, 0, PART_MAX_BYTES),
        Some(Part {
            number: 1,
            of: 1,
            offset: 0,
            len: 0
        })
    );
    assert_eq!(next_part(0, 1, 0, PART_MAX_BYTES), None);
}

#[test]
fn a_part_refused_as_too_large_makes_the_rest_smaller() {
    assert_eq!(smaller_part(PART_MAX_BYTES), Some(25_000_000));
    assert_eq!(smaller_part(2 * PART_MIN_BYTES), Some(PART_MIN_BYTES));
    assert_eq!(smaller_part(2 * PART_MIN_BYTES - 2), None);
    // One part of 50 MB went; the remaining 70 MB goes in parts of 25 MB: 1 + 3 parts.
    let size = 120_000_000;
    assert_eq!(parts_total(size, 1, 50_000_000, 25_000_000), 4);
    assert_eq!(
        next_part(size, 1, 50_000_000, 25_000_000),
        Some(Part {
            number: 2,
            of: 4,
            offset: 50_000_000,
            len: 25_000_000
        })
    );
}

#[test]
fn a_call_ticket_says_who_called_where_it_went_and_how_it_ended() {
    let zone: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
    let mut call = CallRecord::new(
        CallId::from_uuid(uuid::Uuid::nil()),
        "+33612345678".into(),
        "15550100".into(),
        start,
    );
    call.answered_at = Some(start + Duration::seconds(42));
    call.ended_at = Some(start + Duration::seconds(42 + 125));
    call.transfers = vec!["queue:billing".into()];
    call.properties = ReservedProperties {
        verified_customer: Some(true),
        bad_actor: Some(false),
        repeat_customer: None,
    };
    let facts = CallTicketFacts {
        call: &call,
        queue_path: Some("Sales > Renewals"),
        agent_name: Some("Ada Agent"),
        disposition: Some("Resolved"),
        note: Some("Renewed for a year"),
        recordings: 1,
    };
    assert_eq!(call_ticket_subject(&facts), "Sales > Renewals");
    assert_eq!(
        call_ticket_text(&facts, zone),
        "Phone call from +33612345678 to 15550100\n\
         Queue: Sales > Renewals\n\
         Agent: Ada Agent\n\
         Started: 2026-12-01 10:00:00\n\
         Answered: 2026-12-01 10:00:42\n\
         Ended: 2026-12-01 10:02:47\n\
         Talk time: 2:05\n\
         Transfers: queue:billing\n\
         Profile: verified customer\n\
         Disposition: Resolved\n\
         Note: Renewed for a year\n\
         Recordings: 1"
    );
    let bare = CallTicketFacts {
        call: &call,
        queue_path: None,
        agent_name: None,
        disposition: None,
        note: None,
        recordings: 0,
    };
    assert_eq!(call_ticket_subject(&bare), "Phone call to 15550100");
    assert!(!call_ticket_text(&bare, zone).contains("Disposition"));
}
