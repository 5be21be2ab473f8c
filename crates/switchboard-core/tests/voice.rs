//! Caller flags from SIP headers (RDP-2).

use switchboard_core::voice::{header_properties, HeaderFlag};

fn flags() -> Vec<HeaderFlag> {
    vec![
        HeaderFlag::new("X-Verified-Customer", "reserved_verified_customer").unwrap(),
        HeaderFlag::new("X-Fraud-Risk", "reserved_bad_actor").unwrap(),
        HeaderFlag::new("X-Returning", "reserved_repeat_customer").unwrap(),
    ]
}

fn read(headers: &[(&str, &str)]) -> Vec<(&'static str, bool)> {
    header_properties(&flags(), |name| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    })
    .pairs()
}

#[test]
fn headers_set_and_clear_their_properties() {
    assert_eq!(
        read(&[("x-verified-customer", "TRUE"), ("X-Fraud-Risk", " no ")]),
        [
            ("reserved_verified_customer", true),
            ("reserved_bad_actor", false)
        ]
    );
    assert_eq!(
        read(&[("X-Returning", "1")]),
        [("reserved_repeat_customer", true)]
    );
}

#[test]
fn missing_or_unclear_headers_leave_properties_unset() {
    assert!(read(&[]).is_empty());
    assert!(read(&[("X-Verified-Customer", "maybe"), ("X-Other", "true")]).is_empty());
}

#[test]
fn header_flags_are_checked() {
    assert!(HeaderFlag::new("X-Verified-Customer", "reserved_vip").is_err());
    assert!(HeaderFlag::new("", "reserved_bad_actor").is_err());
    assert!(HeaderFlag::new("X Bad", "reserved_bad_actor").is_err());
    assert!(HeaderFlag::new(&"X".repeat(65), "reserved_bad_actor").is_err());
    assert_eq!(
        HeaderFlag::new(" X-Ok ", "reserved_bad_actor")
            .unwrap()
            .header,
        "X-Ok"
    );
}
