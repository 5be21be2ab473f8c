//! Class of service: number kinds against the home plan, and policies by kind and pattern.

use switchboard_core::dialing::{DialPolicy, DialRefusal, HomePlan, NumberKind};

fn us() -> HomePlan {
    HomePlan::of_country("US").unwrap()
}

#[test]
fn numbers_are_classified_against_the_home_plan() {
    let (us, uk, dk) = (
        us(),
        HomePlan::of_country("GB").unwrap(),
        HomePlan::of_country("DK").unwrap(),
    );
    let cases = [
        (&us, "911", NumberKind::Emergency),
        (&us, "933", NumberKind::Emergency),
        (&us, "+1 555 123 4567", NumberKind::National),
        (&us, "5551234567", NumberKind::National),
        (&us, "15551234567", NumberKind::National),
        (&us, "1-900-555-0100", NumberKind::PremiumRate),
        (&us, "+19765550100", NumberKind::PremiumRate),
        (&us, "+442079460000", NumberKind::International),
        (&us, "01144207946000", NumberKind::International),
        (&us, "+88213000123", NumberKind::Satellite),
        // A local seven-digit number; anything else unreadable counts as international.
        (&us, "5551234", NumberKind::National),
        (&us, "9011442079460000", NumberKind::International),
        (&us, "919005550100", NumberKind::International),
        (&uk, "999", NumberKind::Emergency),
        (&uk, "112", NumberKind::Emergency),
        (&uk, "02079460000", NumberKind::National),
        (&uk, "09098790000", NumberKind::PremiumRate),
        (&uk, "0015551234567", NumberKind::International),
        (&dk, "112", NumberKind::Emergency),
        (&dk, "33123456", NumberKind::National),
        (&dk, "90123456", NumberKind::PremiumRate),
        (&dk, "+4633123456", NumberKind::International),
    ];
    for (plan, number, kind) in cases {
        assert_eq!(
            plan.classify(number),
            kind,
            "{number} in +{}",
            plan.country_code
        );
    }
    assert!(HomePlan::of_country("ZZ").is_none());
}

#[test]
fn the_default_policy_refuses_fraud_destinations_and_allows_emergencies() {
    let policy = DialPolicy::default();
    let plan = us();
    assert_eq!(
        policy.permits(&plan, "+15551234567"),
        Ok(NumberKind::National)
    );
    assert_eq!(policy.permits(&plan, "911"), Ok(NumberKind::Emergency));
    assert_eq!(
        policy.permits(&plan, "+88213000123"),
        Err(DialRefusal::Kind(NumberKind::Satellite))
    );
    assert_eq!(
        policy.permits(&plan, "+442079460000"),
        Err(DialRefusal::Kind(NumberKind::International))
    );
    assert_eq!(
        policy.permits(&plan, "19005550100"),
        Err(DialRefusal::Kind(NumberKind::PremiumRate))
    );
    // A deny pattern never blocks an emergency call.
    let deny_all = DialPolicy {
        deny: vec!["*".into()],
        ..DialPolicy::default()
    };
    assert_eq!(deny_all.permits(&plan, "911"), Ok(NumberKind::Emergency));
    assert_eq!(
        deny_all.permits(&plan, "5551234567"),
        Err(DialRefusal::Denied)
    );
}

#[test]
fn patterns_allow_countries_and_deny_numbers_in_either_form() {
    let plan = us();
    let policy = DialPolicy {
        allowed: vec![NumberKind::National],
        allow: vec!["+44".into()],
        deny: vec!["+1555999".into()],
    };
    policy.check().unwrap();
    for number in ["+442079460000", "011442079460000", "00442079460000"] {
        assert_eq!(
            policy.permits(&plan, number),
            Ok(NumberKind::International),
            "{number}"
        );
    }
    assert_eq!(
        policy.permits(&plan, "+33123456789"),
        Err(DialRefusal::Kind(NumberKind::International))
    );
    assert_eq!(
        policy.permits(&plan, "5559990000"),
        Err(DialRefusal::Denied)
    );
    // A team that may call abroad and a role that denies one number: the union.
    let abroad = DialPolicy {
        allowed: vec![NumberKind::National, NumberKind::International],
        ..DialPolicy::default()
    };
    let union = DialPolicy::union([&policy, &abroad]);
    assert_eq!(
        union.permits(&plan, "+33123456789"),
        Ok(NumberKind::International)
    );
    assert_eq!(union.permits(&plan, "5559990000"), Err(DialRefusal::Denied));
    let bad = DialPolicy {
        allow: vec!["+44x".into()],
        ..DialPolicy::default()
    };
    assert!(bad.check().is_err());
    assert_eq!(
        NumberKind::parse("premium_rate"),
        Ok(NumberKind::PremiumRate)
    );
    assert!(NumberKind::parse("cheap").is_err());
}

#[test]
fn dial_rules_never_rewrite_short_codes() {
    use switchboard_core::voice::{apply_dial_rules, DialRule};
    let outside_line = [DialRule::new("9", 1, "").unwrap()];
    assert_eq!(apply_dial_rules(&outside_line, "911"), "911");
    assert_eq!(apply_dial_rules(&outside_line, "95551234"), "5551234");
    assert_eq!(
        apply_dial_rules(&outside_line, "9011442079460000"),
        "011442079460000"
    );
}

#[test]
fn separators_people_type_are_taken_out() {
    use switchboard_core::dialing::strip_separators;
    assert_eq!(strip_separators(" +1 (555) 010-0199 "), "+15550100199");
    assert_eq!(strip_separators("555.0100"), "5550100");
    assert_eq!(strip_separators("9-911"), "9911");
    assert_eq!(strip_separators("12a"), "12a");
}
