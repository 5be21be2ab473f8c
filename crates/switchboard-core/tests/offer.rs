//! Messages consumers leave instead of chatting or waiting (AHD-4), and the wait offer.

use crate::at;
use switchboard_core::offer::{Delivery, EmailRequest, OfferError, OfferSettings, Reason};
use switchboard_core::TextError;

#[test]
fn a_request_is_checked_and_trimmed() {
    let request = EmailRequest::new(" ada@example.com ", Some("  Ada  "), "  Hello\r\nthere \n")
        .expect("a good request");
    assert_eq!(request.from.as_str(), "ada@example.com");
    assert_eq!(request.name.as_deref(), Some("Ada"));
    assert_eq!(request.text(), "Hello\nthere");
    assert_eq!(request.sender(), "Ada <ada@example.com>");

    let anonymous = EmailRequest::new("bo@example.com", Some("   "), "Hi").unwrap();
    assert_eq!(anonymous.name, None);
    assert_eq!(anonymous.sender(), "bo@example.com");

    assert!(matches!(
        EmailRequest::new("not an address", None, "Hi"),
        Err(TextError::Invalid { field: "email", .. })
    ));
    assert_eq!(
        EmailRequest::new("ada@example.com", None, " \n "),
        Err(TextError::Empty { field: "text" })
    );
    assert_eq!(
        EmailRequest::new("ada@example.com", None, &"x".repeat(4001)),
        Err(TextError::TooLong {
            field: "text",
            max: 4000
        })
    );
    assert!(EmailRequest::new("ada@example.com", None, &"x".repeat(4000)).is_ok());
    assert!(matches!(
        EmailRequest::new("ada@example.com", None, "bell \u{7}"),
        Err(TextError::Invalid { field: "text", .. })
    ));
    assert!(matches!(
        EmailRequest::new("ada@example.com", Some("Ada\nBcc: x@y.z"), "Hi"),
        Err(TextError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        EmailRequest::new("ada@example.com", Some(&"n".repeat(121)), "Hi"),
        Err(TextError::TooLong { field: "name", .. })
    ));
}

#[test]
fn the_mail_names_the_queue_the_reason_and_the_sender() {
    let request = EmailRequest::new("ada@example.com", Some("Ada"), "My order is late").unwrap();
    let (subject, body) = request.render("Web / Support", Reason::Closed, "Sun 6 Dec 21:00");
    assert_eq!(subject, "Message from Ada (Web / Support)");
    assert!(body.starts_with(
        "Ada <ada@example.com> left this message in Web / Support while the queue was closed, at Sun 6 Dec 21:00."
    ));
    assert!(body.ends_with("\n\nMy order is late\n"));
    let (_, waited) = request.render("Web / Support", Reason::Waited, "now");
    assert!(waited.contains("instead of waiting for an agent"));
    for reason in [Reason::Closed, Reason::Waited] {
        assert_eq!(Reason::parse(reason.as_str()), Some(reason));
    }
    assert_eq!(Reason::parse("bored"), None);
}

#[test]
fn settings_choose_mail_or_a_ticket_and_bound_the_wait() {
    let none = OfferSettings::new(None, None).unwrap();
    assert_eq!(none.delivery(), Delivery::Ticket);
    assert_eq!(OfferSettings::new(Some("  "), None).unwrap(), none);
    let mail = OfferSettings::new(Some("help@example.com"), Some(120)).unwrap();
    assert_eq!(mail.delivery().kind(), "mail");
    assert!(matches!(mail.delivery(), Delivery::Mail(a) if a.as_str() == "help@example.com"));
    assert!(matches!(
        OfferSettings::new(Some("help"), None),
        Err(OfferError::Text(_))
    ));
    assert_eq!(
        OfferSettings::new(None, Some(9)),
        Err(OfferError::WaitOutOfRange)
    );
    assert_eq!(
        OfferSettings::new(None, Some(86_401)),
        Err(OfferError::WaitOutOfRange)
    );
    assert!(OfferSettings::new(None, Some(10)).is_ok());
    assert!(OfferSettings::new(None, Some(86_400)).is_ok());
}

#[test]
fn a_waiting_chat_is_offered_a_way_out_once_it_has_waited_long_enough() {
    let since = at(2026, 12, 6, 10, 0);
    let settings = OfferSettings::new(None, Some(120)).unwrap();
    assert!(!settings.wait_offer_due(since, since));
    assert!(!settings.wait_offer_due(since, since + chrono::Duration::seconds(119)));
    assert!(settings.wait_offer_due(since, since + chrono::Duration::seconds(120)));
    assert!(settings.wait_offer_due(since, at(2026, 12, 6, 11, 0)));
    let never = OfferSettings::default();
    assert!(!never.wait_offer_due(since, at(2026, 12, 7, 10, 0)));
}
