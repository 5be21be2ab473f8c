//! What consumers are offered instead of waiting or chatting (AHD-4): the center's offer
//! settings over the API; a chat that has waited past the wait offer is offered to leave a
//! message (live, and again on a resume), and the message reaches the help-center address over
//! a real SMTP conversation (once, however often the widget resends it) or, with no address,
//! becomes a CRM ticket; the chat it replaces ends.

use crate::chat::{queue_path, Consumer};
use crate::smtp::smtp_listener;
use crate::{backends, Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;

#[tokio::test]
async fn offer_settings_are_checked_and_kept() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.login("admin").await;
        assert_eq!(
            admin.get("/api/v1/contact-offers").await,
            json!({"help_email": null, "wait_offer_seconds": null, "delivery": "ticket"}),
            "{backend:?}"
        );
        for (body, code) in [
            (
                json!({"help_email": null, "wait_offer_seconds": 9}),
                "invalid_field",
            ),
            (
                json!({"help_email": null, "wait_offer_seconds": 86_401}),
                "invalid_field",
            ),
            (
                json!({"help_email": "help", "wait_offer_seconds": null}),
                "invalid_field",
            ),
            (
                json!({"help_email": null, "wait_offer_seconds": -1}),
                "invalid_body",
            ),
            (json!({"help_email": null, "extra": 1}), "invalid_body"),
        ] {
            let (status, answer) = admin
                .call(Method::PUT, "/api/v1/contact-offers", Some(body.clone()))
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {body}: {answer}"
            );
            assert_eq!(answer["code"], code, "{backend:?} {body}: {answer}");
        }
        let set = json!({"help_email": "help@example.com", "wait_offer_seconds": 90});
        assert_eq!(
            admin
                .expect(StatusCode::OK, Method::PUT, "/api/v1/contact-offers", set)
                .await,
            json!({"help_email": "help@example.com", "wait_offer_seconds": 90, "delivery": "mail"})
        );
        let agent = server.login("agent1").await;
        assert_eq!(
            agent.get("/api/v1/contact-offers").await["delivery"],
            "mail"
        );
        let (status, answer) = agent
            .call(
                Method::PUT,
                "/api/v1/contact-offers",
                Some(json!({"help_email": null, "wait_offer_seconds": null})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    }
}

/// Two chats wait in an open queue with nobody to take them; past the wait offer each is
/// offered to leave a message instead. The first is mailed to the help center, the second (the
/// address removed meanwhile) becomes a ticket.
async fn waiting_chats_leave_messages(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut mails = smtp_listener(listener).await;
    let server = Server::start_configured(backend, |config| {
        config.wall_clock = crate::in_hours();
        config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        config.mail.from = "Switchboard <switchboard@center.example>".into();
    })
    .await;
    let admin = server.login("admin").await;
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/contact-offers",
            json!({"help_email": "help@example.com", "wait_offer_seconds": 10}),
        )
        .await;
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let (mut first, _) = Consumer::new(&server, None).await;
    let (mut second, _) = Consumer::new(&server, None).await;
    let mut chats = Vec::new();
    for (consumer, id) in [(&mut first, "c1"), (&mut second, "c2")] {
        consumer
            .socket
            .send(json!({"type": "start", "client_id": id, "queue_id": refunds}))
            .await;
        let started = consumer.expect("chat_started").await;
        chats.push(started["chat"]["chat_id"].as_str().unwrap().to_owned());
    }
    let leave = |client_id: &str, chat: &str, name: Option<&str>| {
        json!({"type": "leave_message", "client_id": client_id, "queue_id": refunds,
               "chat_id": chat, "email": "ada@example.com", "name": name,
               "text": "My refund has not arrived.\nOrder 1234."})
    };
    // Too early: the chat has not waited long enough.
    first.socket.send(leave("m0", &chats[0], Some("Ada"))).await;
    let refused = first.expect("error").await;
    assert_eq!(refused["code"], "invalid_field", "{backend:?} {refused}");
    assert_eq!(refused["ref"], "m0");
    // Bad input is refused with its field named, and the chat still waits.
    let mut bad = leave("m1", &chats[0], None);
    bad["email"] = json!("not-an-address");
    first.socket.send(bad).await;
    assert_eq!(first.expect("error").await["code"], "invalid_field");

    let offer = first.expect("wait_offers").await;
    assert_eq!(
        offer,
        json!({"type": "wait_offers", "chat_id": chats[0], "queue_id": refunds,
               "offers": [{"kind": "email"}]}),
        "{backend:?}"
    );
    first.socket.send(leave("m2", &chats[0], Some("Ada"))).await;
    assert_eq!(
        first.expect("message_left").await,
        json!({"type": "message_left", "client_id": "m2", "delivery": "mail"})
    );
    let ended = first.expect("chat_ended").await;
    assert_eq!(ended["reason"], "left_message", "{ended}");
    // A resend (the widget lost the answer) is the same message.
    let (mut again, _) =
        Consumer::reconnect(&server, &first.visitor_id, &first.visitor_token).await;
    again.socket.send(leave("m2", &chats[0], Some("Ada"))).await;
    assert_eq!(
        again.expect("message_left").await["client_id"],
        "m2",
        "{backend:?}"
    );
    let mail = tokio::time::timeout(std::time::Duration::from_secs(20), mails.recv())
        .await
        .expect("the mail arrives")
        .unwrap();
    assert_eq!(mail.to, vec!["<help@example.com>"], "{backend:?}");
    // The body is quoted-printable: its soft line breaks are undone.
    let data = mail.data.replace("\r\n", "\n").replace("=\n", "");
    for expected in [
        "Subject: Message from Ada (Billing > Refunds)",
        "Reply-To: Ada <ada@example.com>",
        "To: help@example.com",
        "My refund has not arrived.\nOrder 1234.",
        "instead of waiting for an agent",
    ] {
        assert!(
            data.contains(expected),
            "{backend:?}: no `{expected}` in\n{data}"
        );
    }

    // Without an address the next message becomes a CRM ticket.
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/contact-offers",
            json!({"help_email": null, "wait_offer_seconds": 10}),
        )
        .await;
    // The second consumer comes back after a reload: the offer is shown again on resume.
    let (mut back, _) =
        Consumer::reconnect(&server, &second.visitor_id, &second.visitor_token).await;
    back.socket
        .send(json!({"type": "resume", "chat_id": chats[1], "after_seq": 0}))
        .await;
    back.expect("wait_offers").await;
    back.socket.send(leave("n1", &chats[1], None)).await;
    assert_eq!(back.expect("message_left").await["delivery"], "ticket");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let ticket = loop {
        let tickets = admin.get("/api/v1/tickets").await;
        if let Some(ticket) = tickets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["contact_id"].is_null() && t["call_id"].is_null())
        {
            break ticket.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ticket: {tickets}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        ticket["name"],
        "Message from ada@example.com (Billing > Refunds)"
    );
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["visitor_id"], second.visitor_id.as_str());
    let text = ticket["transcript"].as_str().unwrap();
    assert!(
        text.starts_with("ada@example.com left this message in Billing > Refunds"),
        "{text}"
    );
    assert!(text.contains("My refund has not arrived."), "{text}");
    // Both chats ended for their messages; only one mail was sent.
    for chat in &chats {
        let contact = server
            .app
            .services
            .store
            .get_contact(switchboard_core::ContactId::parse(chat).unwrap())
            .await
            .unwrap();
        assert_eq!(
            contact.end_reason.as_deref(),
            Some("left_message"),
            "{backend:?}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(mails.try_recv().is_err(), "{backend:?}: a second mail");
}

#[tokio::test]
async fn waiting_chats_are_offered_to_leave_a_message() {
    // The wait offer takes ten seconds at least: the backends wait side by side.
    match backends().as_slice() {
        [only] => waiting_chats_leave_messages(*only).await,
        [first, second] => {
            tokio::join!(
                waiting_chats_leave_messages(*first),
                waiting_chats_leave_messages(*second)
            );
        }
        other => panic!("unexpected backends {other:?}"),
    }
}
