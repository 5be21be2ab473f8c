//! Chat rules: text, client ids, attachment sniffing, ticket names, reserved properties, retries.

use crate::at;
use chrono::Duration;
use switchboard_core::chat::{
    anonymous_ticket_name, check_text, AttachmentError, AttachmentKind, ClientMessageId,
    PropertyValue, ReservedProperties, Sender,
};
use switchboard_core::jobs::{next_attempt, MAX_ATTEMPTS};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";

#[test]
fn attachments_are_accepted_only_when_content_agrees_with_type() {
    assert_eq!(
        AttachmentKind::check("image/png", PNG, 100),
        Ok(AttachmentKind::Png)
    );
    assert_eq!(
        AttachmentKind::check("image/jpeg", JPEG, 100),
        Ok(AttachmentKind::Jpeg)
    );
    assert_eq!(
        AttachmentKind::check("video/mp4", MP4, 100),
        Ok(AttachmentKind::Mp4)
    );
    assert_eq!(
        AttachmentKind::check("image/png", JPEG, 100),
        Err(AttachmentError::ContentMismatch { declared: "png" })
    );
    assert_eq!(
        AttachmentKind::check("image/jpeg", b"GIF89a......", 100),
        Err(AttachmentError::ContentMismatch { declared: "jpg" })
    );
    assert_eq!(
        AttachmentKind::check("video/mp4", b"\0\0\0\x18ftypqt  \0\0\0\0", 100),
        Err(AttachmentError::ContentMismatch { declared: "mp4" })
    );
    assert!(matches!(
        AttachmentKind::check("image/gif", b"GIF89a", 100),
        Err(AttachmentError::UnsupportedType(_))
    ));
    assert!(matches!(
        AttachmentKind::check("application/x-msdownload", b"MZ\x90\0", 100),
        Err(AttachmentError::UnsupportedType(_))
    ));
    assert_eq!(
        AttachmentKind::check("image/png", b"", 100),
        Err(AttachmentError::Empty)
    );
    assert_eq!(
        AttachmentKind::check("image/png", PNG, 4),
        Err(AttachmentError::TooLarge { max_bytes: 4 })
    );
}

#[test]
fn message_text_and_client_ids_are_checked() {
    assert!(check_text("hello\nthere", false).is_ok());
    assert!(check_text("   ", false).is_err());
    assert!(check_text("", true).is_ok(), "a file alone is a message");
    assert!(check_text(&"x".repeat(4001), false).is_err());
    assert!(check_text("bell\u{7}", false).is_err());
    assert!(ClientMessageId::parse("c-1700000000:42").is_ok());
    for bad in ["", "has space", &"x".repeat(65), "slash/"] {
        assert!(ClientMessageId::parse(bad).is_err(), "{bad:?}");
    }
    let agent = Sender::Agent(switchboard_core::UserId::from_uuid(crate::uuid(4)));
    for sender in [Sender::Consumer, Sender::System, agent] {
        assert_eq!(Sender::parse(&sender.key()).unwrap(), sender);
    }
    assert!(Sender::parse("agent:nope").is_err());
}

#[test]
fn anonymous_tickets_are_named_in_the_center_time_zone() {
    let tz = switchboard_core::hours::parse_time_zone("America/New_York").unwrap();
    assert_eq!(
        anonymous_ticket_name("Web", at(2026, 3, 1, 2, 5), tz),
        "Web User - 02/28 21:05"
    );
    assert_eq!(
        anonymous_ticket_name("Mobile", at(2026, 7, 4, 16, 30), tz),
        "Mobile User - 07/04 12:30"
    );
}

#[test]
fn reserved_properties_take_booleans_and_known_keys_only() {
    let mut props = ReservedProperties::default();
    props
        .apply([
            ("reserved_verified_customer", PropertyValue::Bool(true)),
            ("plan", PropertyValue::NotBool),
        ])
        .unwrap();
    assert_eq!(props.verified_customer, Some(true));
    let before = props;
    assert!(props
        .apply([
            ("reserved_bad_actor", PropertyValue::Bool(true)),
            ("reserved_vip", PropertyValue::Bool(true))
        ])
        .is_err());
    assert!(props
        .apply([("reserved_repeat_customer", PropertyValue::NotBool)])
        .is_err());
    assert_eq!(props, before, "a refused update applies nothing");
    props
        .apply([("reserved_bad_actor", PropertyValue::Bool(false))])
        .unwrap();
    assert_eq!(
        props.pairs(),
        vec![
            ("reserved_verified_customer", true),
            ("reserved_bad_actor", false)
        ]
    );
}

#[test]
fn retries_back_off_exponentially_then_give_up() {
    let t = at(2026, 1, 1, 0, 0);
    assert_eq!(next_attempt(1, t), Some(t + Duration::seconds(5)));
    assert_eq!(next_attempt(2, t), Some(t + Duration::seconds(10)));
    assert_eq!(next_attempt(5, t), Some(t + Duration::seconds(80)));
    assert_eq!(
        next_attempt(20, t),
        Some(t + Duration::seconds(3600)),
        "capped"
    );
    assert_eq!(next_attempt(MAX_ATTEMPTS, t), None);
}

#[test]
fn tones_must_be_real_mp3() {
    use switchboard_core::audio::{check_mp3, sample_mp3, AudioError};
    assert_eq!(check_mp3(&sample_mp3(5), 1 << 20), Ok(()));
    let mut tagged = b"ID3\x04\0\0\0\0\0\x05hello".to_vec();
    tagged.extend(sample_mp3(3));
    assert_eq!(check_mp3(&tagged, 1 << 20), Ok(()));
    assert_eq!(
        check_mp3(b"RIFF....WAVEfmt ", 1 << 20),
        Err(AudioError::NotMp3)
    );
    assert_eq!(
        check_mp3(&sample_mp3(1)[..100], 1 << 20),
        Err(AudioError::NotMp3),
        "one truncated frame is not a file"
    );
    let mut broken = sample_mp3(3);
    broken[417] = 0; // the second frame's sync
    assert_eq!(check_mp3(&broken, 1 << 20), Err(AudioError::NotMp3));
    assert_eq!(
        check_mp3(&sample_mp3(5), 100),
        Err(AudioError::TooLarge { max_bytes: 100 })
    );
}

#[test]
fn wrap_ups_follow_the_centers_dispositions() {
    use switchboard_core::contact::check_dispositions;
    use switchboard_core::{ContactId, UserId, WrapUp};
    let (contact, agent) = (
        ContactId::from_uuid(crate::uuid(1)),
        UserId::from_uuid(crate::uuid(2)),
    );
    let list = check_dispositions(&[" Resolved ".into(), "Call back".into()]).unwrap();
    assert_eq!(list, ["Resolved", "Call back"]);
    for bad in [
        vec!["Resolved".into(), "resolved".into()],
        vec!["".into()],
        vec!["x".repeat(61)],
        vec!["a\u{7}b".into()],
        (0..51).map(|n| format!("d{n}")).collect(),
    ] {
        assert!(check_dispositions(&bad).is_err(), "{bad:?}");
    }
    let now = at(2026, 3, 2, 9, 0);
    let wrap = WrapUp::new(
        contact,
        agent,
        Some("resolved"),
        " refund sent ",
        &list,
        now,
    )
    .unwrap();
    assert_eq!(wrap.disposition.as_deref(), Some("Resolved"));
    assert_eq!(wrap.note, "refund sent");
    assert!(WrapUp::new(contact, agent, Some("Escalated"), "", &list, now).is_err());
    assert!(WrapUp::new(contact, agent, None, "no code", &list, now).is_err());
    assert!(WrapUp::new(contact, agent, None, &"n".repeat(4001), &[], now).is_err());
    let free = WrapUp::new(contact, agent, None, "just a note", &[], now).unwrap();
    assert_eq!(free.disposition, None);
    assert!(WrapUp::new(contact, agent, Some("Resolved"), "", &[], now).is_err());
}
