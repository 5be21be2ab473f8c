//! Emergency calls: the registry and recognising a dial string, callback pools and leases,
//! civic addresses and the PIDF-LO that carries them.

use crate::{at, uuid};
use chrono::Duration;
use switchboard_core::emergency::location::{AddressInput, CivicAddress, Method, SetBy};
use switchboard_core::emergency::{
    holder, lease, lease_length, outside_prefixes, parse_pool, Country, EmergencyNumber, Lease,
    LeaseChoice, Registry,
};
use switchboard_core::voice::DialRule;
use switchboard_core::{TextError, TrunkId, UserId};

fn prefixes(list: &[&str]) -> Vec<String> {
    list.iter().map(|p| (*p).to_owned()).collect()
}

/// What `recognise` makes of a dial string: the emergency number, or `None`.
fn recognised(typed: &str, outside: &[&str]) -> Option<String> {
    Registry::default()
        .recognise(typed, &prefixes(outside))
        .map(|r| r.number)
}

#[test]
fn dial_strings_are_recognised_before_any_dial_rule() {
    let cases: [(&str, &[&str], Option<&str>); 14] = [
        ("911", &[], Some("911")),
        ("911", &["9"], Some("911")),
        ("9911", &["9"], Some("911")),
        ("9-911", &["9"], Some("911")),
        ("9 911", &["9"], Some("911")),
        ("933", &["9"], Some("933")),
        ("999", &["9"], Some("999")),
        ("112", &[], Some("112")),
        ("9112", &["9"], Some("112")),
        // Without 9 as an outside line, 9911 is no emergency number.
        ("9911", &[], None),
        ("9911", &["0"], None),
        // A plus sign is a full international number, never an emergency number.
        ("+911", &["9"], None),
        ("11", &["9"], None),
        ("", &["9"], None),
    ];
    for (typed, outside, expected) in cases {
        assert_eq!(
            recognised(typed, outside).as_deref(),
            expected,
            "{typed:?} with outside-line prefixes {outside:?}"
        );
    }
}

#[test]
fn an_outside_line_prefix_never_turns_911_into_11() {
    // Even a registry that knew 11 would see 911 as typed first.
    let mut registry = Registry::default();
    registry
        .numbers
        .push(EmergencyNumber::new("DK", "11", false, None).unwrap());
    let hit = registry.recognise("911", &prefixes(&["9"])).unwrap();
    assert_eq!(hit.number, "911");
    assert_eq!(hit.dialled, "911");
    let hit = registry.recognise("9-911", &prefixes(&["9"])).unwrap();
    assert_eq!((hit.number.as_str(), hit.dialled.as_str()), ("911", "9911"));
}

#[test]
fn outside_line_prefixes_come_from_rules_that_only_strip_themselves() {
    let rules = [
        DialRule::new("9", 1, "").unwrap(),
        DialRule::new("0", 1, "+44").unwrap(),
        DialRule::new("00", 1, "").unwrap(),
        DialRule::new("+1", 2, "").unwrap(),
    ];
    assert_eq!(outside_prefixes(&rules), prefixes(&["9"]));
}

#[test]
fn registry_rows_are_checked() {
    let registry = Registry::default();
    registry.check().unwrap();
    assert!(registry
        .numbers
        .iter()
        .any(|n| n.country.as_str() == "US" && n.number == "933" && n.test));
    assert_eq!(Country::parse("uk").unwrap().as_str(), "GB");
    assert!(Country::parse("FR").is_err());
    for bad in ["9", "1234567", "91a", "+911", ""] {
        assert!(
            EmergencyNumber::new("US", bad, false, None).is_err(),
            "{bad:?} is no emergency number"
        );
    }
    let trunk = TrunkId::from_uuid(uuid(7));
    let direct = EmergencyNumber::new(" us ", " 911 ", false, Some(trunk)).unwrap();
    assert_eq!(
        (
            direct.country.as_str(),
            direct.number.as_str(),
            direct.trunk
        ),
        ("US", "911", Some(trunk))
    );
    let twice = Registry {
        numbers: vec![
            EmergencyNumber::new("US", "911", false, None).unwrap(),
            EmergencyNumber::new("CA", "911", false, None).unwrap(),
            EmergencyNumber::new("US", "911", true, None).unwrap(),
        ],
    };
    let error = twice.check().unwrap_err();
    assert!(
        error.to_string().contains("911 is listed twice for US"),
        "{error}"
    );
}

#[test]
fn a_number_is_called_as_the_agents_country_knows_it() {
    let registry = Registry::default();
    let gb = Country::parse("GB").unwrap();
    let dialled = registry.recognise("911", &[]).unwrap();
    assert_eq!(registry.for_country(&dialled, &gb).unwrap().number, "999");
    let dialled = registry.recognise("112", &[]).unwrap();
    assert_eq!(registry.for_country(&dialled, &gb).unwrap().number, "112");
    let us = Country::parse("US").unwrap();
    let test = registry.recognise("933", &[]).unwrap();
    assert!(registry.for_country(&test, &us).unwrap().test);
    let empty = Registry { numbers: vec![] };
    assert!(empty.for_country(&dialled, &us).is_none());
}

#[test]
fn pools_are_lists_and_ranges() {
    assert_eq!(parse_pool("").unwrap(), Vec::<String>::new());
    let pool = parse_pool("15550190-15550193").unwrap();
    assert_eq!(pool, ["15550190", "15550191", "15550192", "15550193"]);
    let pool = parse_pool("+15550100; 15550190 - 15550191,\n15550190\n+15550100").unwrap();
    assert_eq!(pool, ["+15550100", "15550190", "15550191"]);
    // Leading zeros stay.
    assert_eq!(parse_pool("0098-0100").unwrap(), ["0098", "0099", "0100"]);
    assert_eq!(parse_pool("+4512-+4513").unwrap(), ["+4512", "+4513"]);
    assert_eq!(parse_pool("15550190-15550199").unwrap().len(), 10);
    assert_eq!(parse_pool("1000-1999").unwrap().len(), 1000);
}

#[test]
fn bad_pools_are_refused_with_the_item_named() {
    for bad in [
        "abc",
        "1555-",
        "-1555",
        "15550199-15550190",
        "1000-2000",
        "100-1000",
        "+100-200",
        "1-2-3",
        "1234567890123456",
        "12 34",
        "15550190, 15550x",
    ] {
        match parse_pool(bad) {
            Err(TextError::Invalid { field, .. }) => assert_eq!(field, "callback_pool", "{bad:?}"),
            other => panic!("{bad:?} should be refused, got {other:?}"),
        }
    }
    let error = parse_pool("15550190, nope").unwrap_err().to_string();
    assert!(error.contains("`nope`"), "{error}");
    // Many small items add up to more than a pool holds.
    let items: Vec<String> = (0..11)
        .map(|i| format!("{}-{}", 1000 + i * 100, 1099 + i * 100))
        .collect();
    assert!(parse_pool(&items.join(",")).is_err());
}

fn agent(n: u64) -> UserId {
    UserId::from_uuid(uuid(n))
}

fn held(number: &str, who: UserId, leased_at: chrono::DateTime<chrono::Utc>) -> Lease {
    Lease {
        number: number.to_owned(),
        agent: who,
        leased_at,
        expires_at: leased_at + lease_length(),
    }
}

#[test]
fn a_callback_number_is_new_kept_or_exhausted() {
    let pool = parse_pool("15550190-15550192").unwrap();
    let t0 = at(2026, 5, 4, 9, 0);
    // Nothing leased yet: the first number.
    let first = lease(&pool, &[], agent(1), t0);
    assert_eq!(
        first,
        LeaseChoice::New(Lease {
            number: "15550190".into(),
            agent: agent(1),
            leased_at: t0,
            expires_at: t0 + Duration::minutes(60),
        })
    );
    let mut leases = vec![first.lease().unwrap().clone()];
    // A second emergency call in the window keeps the number, for 60 minutes from then.
    let later = t0 + Duration::minutes(45);
    match lease(&pool, &leases, agent(1), later) {
        LeaseChoice::Kept(kept) => {
            assert_eq!(kept.number, "15550190");
            assert_eq!(kept.leased_at, t0);
            assert_eq!(kept.expires_at, later + Duration::minutes(60));
        }
        other => panic!("expected the same number kept, got {other:?}"),
    }
    // Others get the free numbers; then the pool is exhausted.
    for (n, number) in [(2, "15550191"), (3, "15550192")] {
        let choice = lease(&pool, &leases, agent(n), t0);
        assert_eq!(choice.lease().unwrap().number, number);
        leases.push(choice.lease().unwrap().clone());
    }
    assert_eq!(lease(&pool, &leases, agent(4), t0), LeaseChoice::Exhausted);
    assert_eq!(lease(&[], &[], agent(4), t0), LeaseChoice::Exhausted);
    assert_eq!(LeaseChoice::Exhausted.lease(), None);
}

#[test]
fn the_least_recently_used_free_number_is_taken() {
    let pool = parse_pool("15550190-15550193").unwrap();
    let t0 = at(2026, 5, 4, 9, 0);
    let leases = vec![
        held("15550190", agent(1), t0),
        held("15550191", agent(2), t0 - Duration::hours(3)),
        held("15550192", agent(3), t0 - Duration::hours(5)),
    ];
    let now = t0 + Duration::minutes(10);
    // 15550193 was never leased: first.
    assert_eq!(
        lease(&pool, &leases, agent(9), now).lease().unwrap().number,
        "15550193"
    );
    // With every number leased once, the one whose lease ended longest ago.
    let mut all = leases.clone();
    all.push(held("15550193", agent(4), t0 - Duration::hours(2)));
    assert_eq!(
        lease(&pool, &all, agent(9), now).lease().unwrap().number,
        "15550192"
    );
}

#[test]
fn leases_expire_after_sixty_minutes() {
    let pool = parse_pool("15550190").unwrap();
    let t0 = at(2026, 5, 4, 9, 0);
    let leases = vec![held("15550190", agent(1), t0)];
    let just_before = t0 + Duration::minutes(59);
    let expiry = t0 + Duration::minutes(60);
    assert!(leases[0].active(just_before));
    assert!(!leases[0].active(expiry));
    assert_eq!(
        lease(&pool, &leases, agent(2), just_before),
        LeaseChoice::Exhausted
    );
    // At expiry the number is free again, for anyone; the old holder gets a new lease.
    assert_eq!(
        lease(&pool, &leases, agent(2), expiry)
            .lease()
            .unwrap()
            .agent,
        agent(2)
    );
    assert!(matches!(
        lease(&pool, &leases, agent(1), expiry),
        LeaseChoice::New(_)
    ));
    // A number that left the pool is not kept.
    let other_pool = parse_pool("15550199").unwrap();
    assert_eq!(
        lease(&other_pool, &leases, agent(1), just_before)
            .lease()
            .unwrap()
            .number,
        "15550199"
    );
    // Who holds a number, with or without its plus sign.
    assert_eq!(holder(&leases, "15550190", just_before), Some(agent(1)));
    assert_eq!(holder(&leases, "+15550190", just_before), Some(agent(1)));
    assert_eq!(holder(&leases, "15550190", expiry), None);
    assert_eq!(holder(&leases, "15550191", just_before), None);
}

fn springfield() -> AddressInput {
    AddressInput {
        country: "us".into(),
        state: "il".into(),
        city: "Springfield".into(),
        street: "Main Street".into(),
        number: "100".into(),
        postcode: "62701".into(),
        ..AddressInput::default()
    }
}

#[test]
fn civic_addresses_are_validated() {
    let address = CivicAddress::parse(&springfield()).unwrap();
    assert_eq!(address.country.as_str(), "US");
    assert_eq!(address.state, "IL");
    assert_eq!(address.method, Method::Manual);
    assert_eq!(
        address.one_line(),
        "100 Main Street, Springfield IL 62701, US"
    );
    // The plain fields go back as they were stored.
    assert_eq!(CivicAddress::parse(&address.input()).unwrap(), address);

    let with = |change: fn(&mut AddressInput)| {
        let mut input = springfield();
        change(&mut input);
        CivicAddress::parse(&input)
    };
    let field_of = |result: Result<CivicAddress, TextError>| match result {
        Err(TextError::Empty { field })
        | Err(TextError::TooLong { field, .. })
        | Err(TextError::Invalid { field, .. }) => field,
        Ok(address) => panic!("accepted {address:?}"),
    };
    assert_eq!(field_of(with(|a| a.country = "FR".into())), "country");
    assert_eq!(field_of(with(|a| a.state = String::new())), "state");
    assert_eq!(field_of(with(|a| a.state = "Illinois".into())), "state");
    assert_eq!(field_of(with(|a| a.city = " ".into())), "city");
    assert_eq!(field_of(with(|a| a.street = String::new())), "street");
    assert_eq!(field_of(with(|a| a.number = String::new())), "number");
    assert_eq!(field_of(with(|a| a.postcode = "6270".into())), "postcode");
    assert_eq!(
        field_of(with(|a| a.street = "Main\nStreet".into())),
        "street"
    );
    assert_eq!(field_of(with(|a| a.room = "x".repeat(33))), "room");
    assert_eq!(field_of(with(|a| a.method = "GPS".into())), "method");
    assert!(with(|a| a.postcode = "62701-1234".into()).is_ok());
    assert_eq!(
        with(|a| a.method = "dhcp".into()).unwrap().method,
        Method::Dhcp
    );

    let abroad = |country: &str, state: &str, postcode: &str| {
        CivicAddress::parse(&AddressInput {
            country: country.into(),
            state: state.into(),
            city: "Town".into(),
            street: "High Street".into(),
            number: "1".into(),
            postcode: postcode.into(),
            ..AddressInput::default()
        })
    };
    assert!(abroad("GB", "", "SW1A 1AA").is_ok());
    assert!(abroad("UK", "", "sw1a 1aa").is_ok());
    assert!(abroad("GB", "", "SW1A1AA").is_err());
    assert!(abroad("DK", "", "2100").is_ok());
    assert!(abroad("DK", "", "21000").is_err());
    assert!(abroad("CA", "on", "K1A 0B1").is_ok());
    assert!(abroad("CA", "", "K1A 0B1").is_err());
    assert!(abroad("CA", "ON", "123 456").is_err());
    assert!(abroad("PR", "", "00901").is_ok());
}

#[test]
fn pidf_lo_carries_the_escaped_civic_fields() {
    let mut input = springfield();
    input.building = "Smith & Sons <HQ>".into();
    input.floor = "3".into();
    input.room = "O'Neil \"A\"".into();
    let address = CivicAddress::parse(&input).unwrap();
    assert_eq!(
        address.one_line(),
        "100 Main Street, Smith & Sons <HQ>, Floor 3, Room O'Neil \"A\", Springfield IL 62701, US"
    );
    let body = address.pidf_lo(
        "sip:alice@center.example",
        "device-1",
        at(2026, 5, 4, 9, 30),
    );
    for expected in [
        "<ca:country>US</ca:country>",
        "<ca:A1>IL</ca:A1>",
        "<ca:A3>Springfield</ca:A3>",
        "<ca:RD>Main Street</ca:RD>",
        "<ca:HNO>100</ca:HNO>",
        "<ca:PC>62701</ca:PC>",
        "<ca:BLD>Smith &amp; Sons &lt;HQ&gt;</ca:BLD>",
        "<ca:FLR>3</ca:FLR>",
        "<ca:ROOM>O&apos;Neil &quot;A&quot;</ca:ROOM>",
        "<gp:method>Manual</gp:method>",
        "entity=\"sip:alice@center.example\"",
        "<dm:device id=\"device-1\">",
        "<dm:timestamp>2026-05-04T09:30:00Z</dm:timestamp>",
    ] {
        assert!(body.contains(expected), "{expected} missing from\n{body}");
    }
    assert!(!body.contains("Smith & Sons"), "unescaped text in\n{body}");
}

#[test]
fn who_set_an_address_reads_back() {
    for set_by in [SetBy::Admin, SetBy::Agent] {
        assert_eq!(SetBy::parse(set_by.as_str()).unwrap(), set_by);
    }
    assert!(SetBy::parse("someone").is_err());
}
