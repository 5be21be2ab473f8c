//! The hours decision benchmark (issue: at least 1,000,000 decisions a second on one core
//! with 500 schedules and overrides).
//!
//! The world: 400 voice and web leaf queues in five time zones, 400 of them with their own
//! schedule (weekday periods, a few holidays and closures), and 100 overrides by channel,
//! language, and queue with channel or language; deflection rules for the channels and
//! for every fourth queue. A decision is `AfterHours::decide` for a random queue, channel,
//! language and instant over a year, so the closures, holidays, periods and time zones are
//! all exercised. Run: `cargo bench -p switchboard-core --bench after_hours` (pin with
//! `taskset -c 1` for one core; add `-- --quick` for a short run).

use chrono::{Duration, TimeZone, Utc};
use std::hint::black_box;
use std::time::Instant;
use switchboard_core::after_hours::{AfterHours, AfterHoursAction, Decision, DeflectionRule};
use switchboard_core::hours::{
    parse_time_zone, Closure, Holiday, HoursScope, Schedule, WeeklyPeriod,
};
use switchboard_core::{Channel, Language, Name, QueueId, QueueKind, QueueNode};
use uuid::Uuid;

/// xorshift64*: deterministic, so every run decides the same world.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const QUEUES: usize = 400;
const ZONES: [&str; 5] = [
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Los_Angeles",
];
const LANGUAGES: [&str; 5] = ["en", "fr", "de", "es", "it"];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn schedule(rng: &mut Rng) -> Schedule {
    let zone = parse_time_zone(ZONES[rng.below(ZONES.len())]).expect("listed zones exist");
    let open = 6 + rng.below(5);
    let close = 16 + rng.below(6);
    let mut periods: Vec<WeeklyPeriod> = DAYS[..5 + rng.below(3)]
        .iter()
        .map(|d| {
            WeeklyPeriod::parse(&format!("{d} {open:02}:00-{close:02}:30"))
                .expect("periods are well formed")
        })
        .collect();
    if rng.below(4) == 0 {
        periods.push(WeeklyPeriod::parse("fri 22:00-02:00").expect("a night period"));
    }
    let holidays = (0..1 + rng.below(8))
        .map(|_| {
            Holiday::parse(&format!(
                "{:02}-{:02}",
                1 + rng.below(12),
                1 + rng.below(28)
            ))
            .expect("holidays are well formed")
        })
        .collect();
    let closures = (0..rng.below(6))
        .map(|_| {
            let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + Duration::hours(rng.below(365 * 24) as i64);
            let until = from + Duration::hours(1 + rng.below(48) as i64);
            Closure::parse(&format!("{}/{}", from.to_rfc3339(), until.to_rfc3339()))
                .expect("closures are well formed")
        })
        .collect();
    Schedule::new(zone, periods, holidays, closures).expect("within the limits")
}

fn world() -> (AfterHours, Vec<(QueueId, Channel)>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let queues: Vec<(QueueId, Channel)> = (0..QUEUES)
        .map(|i| {
            let channel = if i % 2 == 0 {
                Channel::Voice
            } else {
                Channel::Web
            };
            (
                QueueId::from_uuid(Uuid::from_u64_pair(1, i as u64)),
                channel,
            )
        })
        .collect();
    let mut entries = vec![(HoursScope::default(), schedule(&mut rng))];
    for (queue, _) in &queues {
        let scope = HoursScope {
            queue: Some(*queue),
            ..HoursScope::default()
        };
        entries.push((scope, schedule(&mut rng)));
    }
    for (channel, language) in Channel::ALL.iter().flat_map(|c| LANGUAGES.map(|l| (*c, l))) {
        entries.push((
            HoursScope {
                queue: None,
                channel: Some(channel),
                language: Some(Language::parse(language).expect("listed languages")),
            },
            schedule(&mut rng),
        ));
    }
    while entries.len() < 500 {
        let (queue, channel) = queues[rng.below(QUEUES)];
        let scope = HoursScope {
            queue: Some(queue),
            channel: Some(channel),
            language: Some(Language::parse(LANGUAGES[rng.below(5)]).expect("listed languages")),
        };
        if entries.iter().all(|(s, _)| s.key() != scope.key()) {
            entries.push((scope, schedule(&mut rng)));
        }
    }
    let nodes: Vec<QueueNode> = queues
        .iter()
        .map(|(id, channel)| QueueNode {
            id: *id,
            channel: *channel,
            parent: None,
            name: Name::parse("name", "Queue").expect("a plain name"),
            kind: QueueKind::Leaf,
            position: 0,
            priority: 0,
            languages: vec![],
        })
        .collect();
    let mut rules = vec![
        DeflectionRule::new(
            None,
            Channel::Voice,
            true,
            AfterHoursAction::Message,
            vec![],
            &nodes,
        )
        .expect("a valid rule"),
        DeflectionRule::new(
            None,
            Channel::Web,
            true,
            AfterHoursAction::Message,
            vec![],
            &nodes,
        )
        .expect("a valid rule"),
    ];
    for (queue, channel) in queues.iter().step_by(4) {
        rules.push(
            DeflectionRule::new(
                Some(*queue),
                *channel,
                false,
                AfterHoursAction::Message,
                vec![],
                &nodes,
            )
            .expect("a valid rule"),
        );
    }
    assert_eq!(entries.len(), 500);
    (AfterHours::new(entries, rules), queues)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (hours, queues) = world();
    let languages: Vec<Option<Language>> = std::iter::once(None)
        .chain(LANGUAGES.iter().map(|l| Language::parse(l).ok()))
        .collect();
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    // The inputs are made before timing, so the loop measures the decision alone.
    let mut rng = Rng(42);
    let inputs: Vec<(QueueId, Channel, usize, chrono::DateTime<Utc>)> = (0..100_000)
        .map(|_| {
            let (queue, channel) = queues[rng.below(QUEUES)];
            let at = start + Duration::minutes(rng.below(365 * 24 * 60) as i64);
            (queue, channel, rng.below(languages.len()), at)
        })
        .collect();
    let rounds = if quick { 10 } else { 50 };
    let mut rates = Vec::new();
    let mut counts = [0usize; 3];
    for _ in 0..rounds {
        let began = Instant::now();
        for (queue, channel, language, at) in &inputs {
            let decision = hours.decide(*queue, *channel, languages[*language].as_ref(), *at);
            counts[match black_box(decision) {
                Decision::Open => 0,
                Decision::ClosedRouted => 1,
                Decision::Deflect(_) => 2,
            }] += 1;
        }
        rates.push(inputs.len() as f64 / began.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "500 schedules and overrides, {QUEUES} queues, {} rounds of {} decisions",
        rounds,
        inputs.len()
    );
    println!(
        "decisions per second: median {:.0}, slowest round {:.0}, fastest {:.0}",
        median,
        rates[0],
        rates[rates.len() - 1]
    );
    println!(
        "decided: {} open, {} closed and routed, {} deflected",
        counts[0], counts[1], counts[2]
    );
    println!(
        "target >= 1,000,000 decisions/s on one core: {}",
        if median >= 1_000_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
