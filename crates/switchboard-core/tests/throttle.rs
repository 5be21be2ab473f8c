//! Failed authentication throttled by source and by account; the owner's own address stays
//! served.

use chrono::{Duration, TimeZone, Utc};
use std::net::IpAddr;
use switchboard_core::throttle::{Policy, Throttle, Verdict};

#[test]
fn a_guesser_is_slowed_then_refused_and_the_owner_is_not() {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let (owner, guesser): (IpAddr, IpAddr) =
        ("10.0.0.1".parse().unwrap(), "10.6.6.6".parse().unwrap());
    let mut throttle = Throttle::new(Policy::default());
    throttle.success(owner, "agent1", now);
    let mut verdicts = Vec::new();
    for n in 0..25 {
        let at = now + Duration::seconds(n);
        verdicts.push(throttle.check(guesser, "agent1", at));
        throttle.failure(guesser, "agent1", at);
    }
    assert!(
        verdicts[..4].iter().all(|v| *v == Verdict::Go),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[4], Verdict::Delay(Duration::milliseconds(500)));
    assert_eq!(verdicts[5], Verdict::Delay(Duration::seconds(1)));
    assert_eq!(verdicts[10], Verdict::Delay(Duration::seconds(8)), "capped");
    assert!(matches!(verdicts[20], Verdict::Refuse(_)));
    // The owner signs in from their own address at once: not refused, not delayed.
    let later = now + Duration::seconds(30);
    assert_eq!(throttle.check(owner, "agent1", later), Verdict::Go);
    // A stranger's new address is slowed for the attacked account, never refused before 50.
    let stranger: IpAddr = "10.9.9.9".parse().unwrap();
    assert_eq!(
        throttle.check(stranger, "agent1", later),
        Verdict::Delay(Duration::seconds(8))
    );
    // An admin sees both records and can clear them; the window passing forgets them too.
    let keys: Vec<String> = throttle.list(later).into_iter().map(|t| t.key).collect();
    assert_eq!(keys, ["account:agent1", "source:10.6.6.6"]);
    assert!(throttle.clear("source:10.6.6.6"));
    assert_eq!(throttle.check(guesser, "other", later), Verdict::Go);
    assert!(throttle.list(now + Duration::minutes(16)).is_empty());
}

#[test]
fn one_good_sign_in_does_not_wipe_out_a_spray_of_bad_ones() {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let sprayer: IpAddr = "10.6.6.6".parse().unwrap();
    let mut throttle = Throttle::new(Policy::default());
    for n in 0..20 {
        throttle.failure(sprayer, &format!("victim{n}"), now + Duration::seconds(n));
    }
    // The sprayer signs in to an account of its own.
    let later = now + Duration::seconds(30);
    throttle.success(sprayer, "mine", later);
    assert_eq!(throttle.check(sprayer, "mine", later), Verdict::Go);
    assert!(
        matches!(
            throttle.check(sprayer, "victim99", later),
            Verdict::Refuse(_)
        ),
        "still refused for everyone else"
    );
}
