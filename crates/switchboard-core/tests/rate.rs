//! Rate limits by key, in virtual time.

use chrono::{Duration, TimeZone, Utc};
use switchboard_core::rate::RateLimit;

#[test]
fn a_key_gets_its_limit_per_window_and_others_are_not_affected() {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut limit = RateLimit::new(3, Duration::minutes(1), 100);
    for n in 0..3 {
        assert_eq!(limit.allow("a", now + Duration::seconds(n)), Ok(()));
    }
    assert_eq!(
        limit.allow("a", now + Duration::seconds(20)),
        Err(Duration::seconds(40)),
        "the fourth in the window waits for the window's end"
    );
    assert_eq!(limit.allow("b", now + Duration::seconds(20)), Ok(()));
    assert_eq!(limit.allow("a", now + Duration::minutes(1)), Ok(()));
}

#[test]
fn memory_stays_bounded_and_a_full_table_forgets_the_oldest() {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut limit = RateLimit::new(1, Duration::minutes(1), 10);
    for n in 0..10 {
        assert_eq!(limit.allow(n, now + Duration::seconds(n)), Ok(()));
    }
    assert!(limit.allow(0, now + Duration::seconds(11)).is_err());
    // An eleventh key pushes out the oldest (key 0), which may then go again.
    assert_eq!(limit.allow(10, now + Duration::seconds(12)), Ok(()));
    assert_eq!(limit.allow(0, now + Duration::seconds(13)), Ok(()));
}
