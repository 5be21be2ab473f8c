//! Business hours: periods, midnight crossing, DST, holidays, closures, overrides, slots.

use crate::{at, uuid};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_core::hours::{
    parse_time_zone, Closure, Holiday, HoursScope, HoursSet, Schedule, WeeklyPeriod,
};
use switchboard_core::{Channel, Language, QueueId};

fn schedule(tz: &str, periods: &[&str], holidays: &[&str], closures: &[&str]) -> Schedule {
    Schedule::new(
        parse_time_zone(tz).unwrap(),
        periods
            .iter()
            .map(|p| WeeklyPeriod::parse(p).unwrap())
            .collect(),
        holidays
            .iter()
            .map(|h| Holiday::parse(h).unwrap())
            .collect(),
        closures
            .iter()
            .map(|c| Closure::parse(c).unwrap())
            .collect(),
    )
    .unwrap()
}

fn weekdays_9_to_5(tz: &str) -> Schedule {
    let days = ["mon", "tue", "wed", "thu", "fri"];
    let periods: Vec<String> = days.iter().map(|d| format!("{d} 09:00-17:00")).collect();
    schedule(
        tz,
        &periods.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
        &[],
    )
}

#[test]
fn periods_follow_the_local_clock_across_dst() {
    let s = weekdays_9_to_5("America/New_York");
    // Winter (UTC-5): 09:00 local is 14:00 UTC.
    assert!(!s.is_open(at(2026, 1, 6, 13, 59)));
    assert!(s.is_open(at(2026, 1, 6, 14, 0)));
    assert!(!s.is_open(at(2026, 1, 6, 22, 0)));
    // Summer (UTC-4): 09:00 local is 13:00 UTC.
    assert!(s.is_open(at(2026, 7, 7, 13, 0)));
    assert!(!s.is_open(at(2026, 7, 7, 21, 0)));
    // Weekend closed.
    assert!(!s.is_open(at(2026, 7, 11, 15, 0)));
}

#[test]
fn periods_cross_midnight() {
    let s = schedule("Europe/Paris", &["fri 22:00-02:00"], &[], &[]);
    // Friday 2026-01-09 23:30 Paris = 22:30 UTC; Saturday 01:30 Paris = 00:30 UTC.
    assert!(s.is_open(at(2026, 1, 9, 22, 30)));
    assert!(s.is_open(at(2026, 1, 10, 0, 30)));
    assert!(!s.is_open(at(2026, 1, 10, 1, 0)), "02:00 Paris is closed");
    assert!(!s.is_open(at(2026, 1, 9, 20, 59)), "21:59 Paris is closed");
    assert_eq!(
        WeeklyPeriod::parse("fri 22:00-02:00").unwrap().to_string(),
        "fri 22:00-02:00"
    );
    assert_eq!(
        WeeklyPeriod::parse("mon 18:00-00:00").unwrap().to_string(),
        "mon 18:00-24:00"
    );
}

#[test]
fn holidays_and_closures_close() {
    let s = schedule(
        "Europe/London",
        &["thu 09:00-17:00", "fri 09:00-17:00"],
        &["12-25", "2026-12-24"],
        &["2026-12-31T12:00:00Z/2026-12-31T15:00:00Z"],
    );
    assert!(!s.is_open(at(2026, 12, 24, 10, 0)));
    assert!(!s.is_open(at(2026, 12, 25, 10, 0)));
    assert!(s.is_open(at(2026, 12, 31, 11, 59)));
    assert!(!s.is_open(at(2026, 12, 31, 12, 0)));
    assert!(s.is_open(at(2026, 12, 31, 15, 0)));
    // The yearly holiday applies in later years too (2027-12-25 is a Saturday; 2031 a Thursday).
    assert!(!s.is_open(at(2031, 12, 25, 10, 0)));
    assert!(s.is_open(at(2031, 12, 26, 10, 0)));
}

#[test]
fn bad_schedule_text_is_refused() {
    for bad in [
        "mon 9:00-17:00",
        "mon 09:00",
        "funday 09:00-17:00",
        "mon 09:00-09:00",
        "mon 25:00-26:00",
        "mon 09:60-10:00",
        "",
    ] {
        assert!(WeeklyPeriod::parse(bad).is_err(), "{bad:?}");
    }
    for bad in ["13-01", "2026-02-30", "xmas", "02-30"] {
        assert!(Holiday::parse(bad).is_err(), "{bad:?}");
    }
    assert!(Holiday::parse("02-29").is_ok());
    for bad in [
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z/2026-01-01T00:00:00Z",
        "a/b",
    ] {
        assert!(Closure::parse(bad).is_err(), "{bad:?}");
    }
    assert!(parse_time_zone("Mars/Olympus").is_err());
}

#[test]
fn slots_fall_in_open_hours_and_skip_the_dst_gap() {
    // 2026-03-08 is the US spring-forward Sunday: 02:00 to 03:00 does not exist.
    let s = schedule("America/New_York", &["sun 01:00-04:00"], &[], &[]);
    let slots = s
        .next_open_slots(at(2026, 3, 8, 0, 0), 10, Duration::minutes(30))
        .unwrap();
    let tz = parse_time_zone("America/New_York").unwrap();
    let local: Vec<String> = slots
        .iter()
        .map(|t| t.with_timezone(&tz).format("%m-%d %H:%M").to_string())
        .collect();
    // 01:00 EST = 06:00 UTC; after the gap 03:00 EDT = 07:00 UTC; the period ends 04:00 EDT.
    assert_eq!(
        &local[..4],
        ["03-08 01:00", "03-08 01:30", "03-08 03:00", "03-08 03:30"]
    );
    assert_eq!(local[4], "03-15 01:00", "next Sunday");
    for slot in &slots {
        assert!(s.is_open(*slot) && s.is_open(*slot + Duration::minutes(29)));
    }
}

#[test]
fn slots_start_no_earlier_than_asked_and_align_to_opening() {
    let s = weekdays_9_to_5("Europe/Paris");
    // Tuesday 2026-01-06 10:10 Paris = 09:10 UTC.
    let slots = s
        .next_open_slots(at(2026, 1, 6, 9, 10), 3, Duration::minutes(30))
        .unwrap();
    assert_eq!(
        slots,
        vec![
            at(2026, 1, 6, 9, 30),
            at(2026, 1, 6, 10, 0),
            at(2026, 1, 6, 10, 30)
        ]
    );
    let last_of_day = s
        .next_open_slots(at(2026, 1, 6, 15, 40), 2, Duration::hours(1))
        .unwrap();
    assert_eq!(
        last_of_day,
        vec![at(2026, 1, 7, 8, 0), at(2026, 1, 7, 9, 0)],
        "15:00 UTC + 1h would close at 16:00 UTC = 17:00 Paris: 16:40 start does not fit"
    );
    assert!(s
        .next_open_slots(at(2026, 1, 6, 9, 0), 3, Duration::minutes(1))
        .is_err());
    let never = schedule("UTC", &[], &[], &[]);
    assert!(never
        .next_open_slots(at(2026, 1, 6, 9, 0), 3, Duration::minutes(30))
        .unwrap()
        .is_empty());
}

#[test]
fn the_most_specific_schedule_applies() {
    let q = QueueId::from_uuid(uuid(5));
    let other = QueueId::from_uuid(uuid(6));
    let fr = Language::parse("fr").unwrap();
    let set = HoursSet::new(vec![
        (HoursScope::default(), weekdays_9_to_5("UTC")),
        (
            HoursScope {
                channel: Some(Channel::Web),
                ..Default::default()
            },
            schedule("UTC", &["sat 10:00-12:00"], &[], &[]),
        ),
        (
            HoursScope {
                language: Some(fr.clone()),
                ..Default::default()
            },
            schedule("UTC", &["sun 10:00-12:00"], &[], &[]),
        ),
        (
            HoursScope {
                queue: Some(q),
                ..Default::default()
            },
            schedule("UTC", &["mon 00:00-24:00"], &[], &[]),
        ),
    ]);
    let monday_night = at(2026, 1, 5, 23, 0);
    let saturday = at(2026, 1, 10, 11, 0);
    let sunday = at(2026, 1, 11, 11, 0);
    assert!(
        set.is_open(q, Channel::Web, Some(&fr), monday_night),
        "queue beats language and channel"
    );
    assert!(
        !set.is_open(other, Channel::Voice, None, monday_night),
        "global"
    );
    assert!(set.is_open(other, Channel::Web, None, saturday), "channel");
    assert!(
        set.is_open(other, Channel::Web, Some(&fr), sunday),
        "language beats channel"
    );
    assert!(!set.is_open(other, Channel::Web, Some(&fr), saturday));
    assert!(
        HoursSet::default().is_open(q, Channel::Voice, None, saturday),
        "no schedule: always open"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// The open intervals agree with is_open everywhere, including around DST changes.
    #[test]
    fn intervals_agree_with_is_open(
        start_day in 0i64..365,
        periods in proptest::collection::vec((0usize..7, 0u16..96, 1u16..96), 1..5),
        tz_pick in 0usize..4,
    ) {
        let tz = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"][tz_pick];
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let texts: Vec<String> = periods.iter().filter(|(_, s, e)| s != e).map(|(d, s, e)| {
            format!("{} {:02}:{:02}-{:02}:{:02}", days[*d], s / 4, (s % 4) * 15, e / 4, (e % 4) * 15)
        }).collect();
        let s = schedule(tz, &texts.iter().map(String::as_str).collect::<Vec<_>>(), &["03-29"], &[]);
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(start_day);
        let until = from + Duration::days(3);
        let spans = s.open_intervals(from, until);
        let mut t = from;
        while t < until {
            let inside = spans.iter().any(|(a, b)| *a <= t && t < *b);
            prop_assert_eq!(inside, s.is_open(t), "at {}", t);
            t += Duration::minutes(15);
        }
    }
}
