//! The SMS channel's rules: the reply-digit menu, delivery statuses, send verdicts.

use crate::uuid;
use switchboard_core::sms::{agent_notice, check_body, DeliveryStatus, SendVerdict, SmsMenu};
use switchboard_core::{Channel, Name, QueueId, QueueKind, QueueNode, QueueTree};

fn node(n: u64, channel: Channel, parent: Option<u64>, name: &str, kind: QueueKind) -> QueueNode {
    QueueNode {
        id: QueueId::from_uuid(uuid(n)),
        channel,
        parent: parent.map(|p| QueueId::from_uuid(uuid(p))),
        name: Name::parse("name", name).unwrap(),
        kind,
        position: 10 - n as i32,
        priority: 0,
        languages: vec![],
    }
}

fn q(n: u64) -> QueueId {
    QueueId::from_uuid(uuid(n))
}

#[test]
fn the_menu_lists_the_sms_leaves_in_menu_order_and_a_digit_picks_one() {
    // Positions run backwards from the ids, so menu order is not id order.
    let tree = QueueTree::new(vec![
        node(1, Channel::Sms, None, "Billing", QueueKind::Menu),
        node(2, Channel::Sms, Some(1), "Refunds", QueueKind::Leaf),
        node(3, Channel::Sms, Some(1), "Invoices", QueueKind::Leaf),
        node(4, Channel::Sms, None, "Sales", QueueKind::Leaf),
        node(5, Channel::Web, None, "Web", QueueKind::Leaf),
    ])
    .unwrap();
    let menu = SmsMenu::new(&tree);
    assert_eq!(menu.only_leaf(), None);
    assert_eq!(
        menu.text(),
        "Reply with a number: 1 Sales, 2 Billing > Invoices, 3 Billing > Refunds"
    );
    assert_eq!(menu.choose("1"), Some(q(4)));
    assert_eq!(menu.choose(" 3 \n"), Some(q(2)));
    assert_eq!(menu.choose("0"), None);
    assert_eq!(menu.choose("4"), None);
    assert_eq!(menu.choose("sales"), None);
    assert_eq!(menu.choose("-1"), None);
}

#[test]
fn one_leaf_needs_no_menu_and_no_leaf_has_none() {
    let one = QueueTree::new(vec![
        node(1, Channel::Sms, None, "Texts", QueueKind::Menu),
        node(2, Channel::Sms, Some(1), "All", QueueKind::Leaf),
        node(3, Channel::Web, None, "Web", QueueKind::Leaf),
    ])
    .unwrap();
    assert_eq!(SmsMenu::new(&one).only_leaf(), Some(q(2)));
    let none = QueueTree::new(vec![node(3, Channel::Web, None, "Web", QueueKind::Leaf)]).unwrap();
    assert!(SmsMenu::new(&none).is_empty());
    assert_eq!(SmsMenu::new(&none).choose("1"), None);
}

#[test]
fn a_status_moves_forward_only() {
    use DeliveryStatus::*;
    assert!(Queued.advanced_by(Sent));
    assert!(Sent.advanced_by(Delivered));
    assert!(Queued.advanced_by(Failed));
    assert!(!Delivered.advanced_by(Sent));
    assert!(!Delivered.advanced_by(Failed));
    assert!(!Sent.advanced_by(Sent));
    assert_eq!(DeliveryStatus::from_twilio("sending"), Some(Sent));
    assert_eq!(DeliveryStatus::from_twilio("read"), Some(Delivered));
    assert_eq!(DeliveryStatus::from_twilio("canceled"), Some(Failed));
    assert_eq!(DeliveryStatus::from_twilio("bogus"), None);
    for status in [Queued, Sent, Delivered, Undelivered, Failed] {
        assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
    }
}

#[test]
fn answers_to_a_send_are_sorted() {
    let cases = [
        (201, SendVerdict::Accepted),
        (200, SendVerdict::Accepted),
        (429, SendVerdict::RetryLater),
        (408, SendVerdict::RetryLater),
        (500, SendVerdict::RetryLater),
        (503, SendVerdict::RetryLater),
        (400, SendVerdict::GiveUp),
        (401, SendVerdict::GiveUp),
        (404, SendVerdict::GiveUp),
    ];
    for (status, verdict) in cases {
        assert_eq!(SendVerdict::of_status(status), verdict, "{status}");
    }
}

#[test]
fn bodies_and_notices() {
    assert!(check_body("hi").is_ok());
    assert!(check_body("  ").is_err());
    assert!(check_body(&"x".repeat(1600)).is_ok());
    assert!(check_body(&"é".repeat(1601)).is_err());
    assert_eq!(
        agent_notice(Some("+15551234567"), Some("Support")),
        "Incoming call from +15551234567 (Support)"
    );
    assert_eq!(
        agent_notice(None, None),
        "Incoming call from an unknown number"
    );
}
