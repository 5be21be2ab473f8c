//! The whisper and countdown: a queue's changes over the center's, and what the agent hears.

use switchboard_core::whisper::*;

#[test]
fn a_queue_overrides_only_what_it_sets() {
    let center = Whisper {
        message: WhisperMessage::CallType,
        speed: 120,
        countdown: true,
    };
    let queue = WhisperOverride {
        message: Some(WhisperMessage::QueueName),
        ..WhisperOverride::default()
    };
    let resolved = center.for_queue(Some(&queue));
    assert_eq!(resolved.message, WhisperMessage::QueueName);
    assert_eq!((resolved.speed, resolved.countdown), (120, true));
    assert_eq!(center.for_queue(None), center);
}

#[test]
fn the_parts_follow_the_message_and_the_countdown() {
    let mut whisper = Whisper {
        message: WhisperMessage::CallType,
        ..Whisper::default()
    };
    assert_eq!(
        whisper_parts(&whisper, CallType::Transfer, "Sales"),
        vec![WhisperPart::Speak {
            text: "Transferred call from Sales".into(),
            speed: 100
        }]
    );
    whisper.countdown = true;
    whisper.message = WhisperMessage::Off;
    assert_eq!(
        whisper_parts(&whisper, CallType::Inbound, "Sales"),
        vec![WhisperPart::Speak {
            text: COUNTDOWN.into(),
            speed: 100
        }]
    );
    whisper.countdown = false;
    assert!(whisper_parts(&whisper, CallType::Inbound, "Sales").is_empty());
    whisper.message = WhisperMessage::Recording;
    assert_eq!(
        whisper_parts(&whisper, CallType::Inbound, "Sales"),
        vec![WhisperPart::Recording {
            fallback: "Sales".into(),
            speed: 100
        }]
    );
}

#[test]
fn bad_settings_are_refused() {
    assert!(WhisperMessage::parse("text", Some("  ")).is_err());
    assert!(WhisperMessage::parse("shout", None).is_err());
    assert!(WhisperMessage::parse("text", Some(&"a".repeat(MAX_TEXT + 1))).is_err());
    assert_eq!(
        WhisperMessage::parse("text", Some(" Priority customer ")),
        Ok(WhisperMessage::Text("Priority customer".into()))
    );
    assert!(check_speed(49).is_err() && check_speed(201).is_err());
    assert_eq!(check_speed(150), Ok(150));
}
