//! Emergency calls beside the dialling path (EMG-6, EMG-7): the notification mail over a real
//! SMTP conversation with a listener on loopback (refused while it is down, delivered by the
//! retry once it is up), the outbox when no SMTP server is configured, the template's bad
//! input, the restricted log's permission, and the supervisors' live alert.
//!
//! The mail tests start the server without launching it, so no background worker runs: the
//! test drives the job worker itself with `run_due(now)`, time as input.

use crate::smtp::smtp_listener;
use crate::{backends, find, Server, PASSWORD};
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::{App, AppState, Config};
use switchboard_core::emergency::notice::{MailStatus, Template};
use switchboard_core::{CallId, EmailList, UserId, Username};
use switchboard_services::emergency::EmergencyPlaced;
use tokio::net::TcpListener;

/// A server started without launching it (so the test drives the job worker), seeded with the
/// demo center, whose agent1 has two emergency contacts.
async fn unlaunched(adjust: impl FnOnce(&mut Config)) -> (AppState, std::path::PathBuf, UserId) {
    let data_dir =
        std::env::temp_dir().join(format!("switchboard-emergency-{}", uuid::Uuid::new_v4()));
    let mut config = Config::for_data_dir(&data_dir);
    adjust(&mut config);
    let app = App::start(config).await.expect("server starts");
    switchboard::demo::seed(&app, PASSWORD.to_owned())
        .await
        .map_err(|e| e.message)
        .expect("demo seeds");
    let store = &app.services.store;
    let mut agent = store
        .find_user(&Username::parse("agent1").unwrap())
        .await
        .unwrap()
        .unwrap();
    agent.emergency_contacts = EmailList::parse("kin@example.org; friend@example.net").unwrap();
    store.update_user(&agent).await.unwrap();
    let mut settings = store.center_settings().await.unwrap();
    settings.time_zone = "America/Chicago".into();
    store.update_center_settings(&settings).await.unwrap();
    (app, data_dir, agent.id)
}

fn placed(agent: UserId, at: DateTime<Utc>) -> EmergencyPlaced {
    EmergencyPlaced {
        call: CallId::from_uuid(uuid::Uuid::now_v7()),
        agent,
        at,
        dialled: "9-911".into(),
        number: "911".into(),
        test: false,
        callback: Some("15550190".into()),
        location: Some("12 Main St, Floor 3, Springfield IL 62701, US".into()),
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 14, 5, 0).unwrap()
}

#[tokio::test]
async fn the_mail_waits_for_a_mail_server_that_is_down_and_reaches_every_contact() {
    // A port nobody listens on yet: the first attempt is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (app, data_dir, agent) = unlaunched(|config| {
        config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        config.mail.from = "Switchboard <alerts@center.example>".into();
    })
    .await;
    let store = app.services.store.clone();
    store
        .put_emergency_template(
            &Template::parse(
                "EMERGENCY {agent_name} {number}",
                "{agent_name} dialled {number} at {time}.\r\nCall back: {callback_number}\r\nWhere: {location}\r\n.hidden dot\r\n",
            )
            .unwrap(),
            at(),
        )
        .await
        .unwrap();
    let call = placed(agent, at());
    app.services.emergency.placed(call.clone()).await;
    assert_eq!(
        store
            .get_emergency_call(call.call)
            .await
            .unwrap()
            .mail_status,
        MailStatus::Queued
    );

    assert_eq!(app.jobs.run_due(at()).await, 1, "the first attempt runs");
    let failed = store.get_emergency_call(call.call).await.unwrap();
    assert_eq!(failed.mail_status, MailStatus::Failed);
    assert!(
        failed
            .mail_error
            .as_deref()
            .is_some_and(|e| e.contains("mail server")),
        "{failed:?}"
    );
    let job = &store.list_jobs(10).await.unwrap()[0];
    assert_eq!(
        (job.kind.as_str(), job.state, job.attempts),
        ("emergency_mail", switchboard_store::JobState::Pending, 1),
        "kept for a retry, never lost"
    );
    assert_eq!(
        app.jobs.run_due(at() + Duration::seconds(1)).await,
        0,
        "not before the retry policy's wait"
    );

    // The mail server comes up; the next attempt delivers.
    let mut received = smtp_listener(
        TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the port is still free"),
    )
    .await;
    assert_eq!(app.jobs.run_due(at() + Duration::seconds(10)).await, 1);
    let message = received.recv().await.expect("a message arrives");
    assert_eq!(message.from, "<alerts@center.example>");
    let mut to = message.to.clone();
    to.sort();
    assert_eq!(to, ["<friend@example.net>", "<kin@example.org>"]);
    let data = message.data.replace("\r\n", "\n");
    assert!(data.contains("Subject: EMERGENCY Alex Agent 911"), "{data}");
    assert!(
        data.contains("To: kin@example.org, friend@example.net"),
        "{data}"
    );
    assert!(
        data.contains(&format!(
            "Message-ID: <emergency-{}@center.example>",
            call.call
        )),
        "{data}"
    );
    assert!(
        data.contains("Alex Agent dialled 911 at 2026-05-04 09:05 CDT.\nCall back: 15550190\nWhere: 12 Main St, Floor 3, Springfield IL 62701, US\n.hidden dot"),
        "the rendered template, in the center's time zone: {data}"
    );
    let sent = store.get_emergency_call(call.call).await.unwrap();
    assert_eq!(
        (sent.mail_status, sent.mail_error, sent.mail_sent_at),
        (MailStatus::Sent, None, Some(at() + Duration::seconds(10)))
    );
    assert_eq!(
        store.list_jobs(10).await.unwrap()[0].state,
        switchboard_store::JobState::Done
    );
    assert_eq!(app.jobs.run_due(at() + Duration::hours(2)).await, 0);
    drop(app);
    std::fs::remove_dir_all(&data_dir).ok();
}

#[tokio::test]
async fn without_smtp_the_mail_lands_in_the_outbox_and_without_contacts_nothing_is_queued() {
    let (app, data_dir, agent) = unlaunched(|_| {}).await;
    let store = app.services.store.clone();
    let call = placed(agent, at());
    app.services.emergency.placed(call.clone()).await;
    assert_eq!(app.jobs.run_due(at()).await, 1);
    let eml = std::fs::read_to_string(data_dir.join("outbox").join(format!("{}.eml", call.call)))
        .expect("the message is in the outbox");
    assert!(eml.contains("From: switchboard@localhost"), "{eml}");
    assert!(
        eml.contains("To: kin@example.org, friend@example.net"),
        "{eml}"
    );
    assert!(
        eml.contains("Subject: Emergency call: Alex Agent dialled 911"),
        "the default template: {eml}"
    );
    assert!(eml.contains("at 2026-05-04 09:05 CDT"), "{eml}");
    assert_eq!(
        store
            .get_emergency_call(call.call)
            .await
            .unwrap()
            .mail_status,
        MailStatus::Sent
    );
    let leftovers: Vec<_> = std::fs::read_dir(data_dir.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, [format!("{}.eml", call.call)]);

    // An agent with no emergency contacts: logged as such, nothing to send.
    let lone = store
        .find_user(&Username::parse("agent2").unwrap())
        .await
        .unwrap()
        .unwrap();
    let quiet = placed(lone.id, at());
    app.services.emergency.placed(quiet.clone()).await;
    assert_eq!(
        store
            .get_emergency_call(quiet.call)
            .await
            .unwrap()
            .mail_status,
        MailStatus::NoContacts
    );
    assert_eq!(app.jobs.run_due(at() + Duration::hours(1)).await, 0);
    drop(app);
    std::fs::remove_dir_all(&data_dir).ok();
}

#[tokio::test]
async fn the_template_refuses_bad_input_and_the_log_is_restricted() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.login("admin").await;
        let supervisor = server.login("supervisor").await;
        let agent = server.login("agent1").await;

        let before = admin.get("/api/v1/emergency/template").await;
        assert_eq!(
            before["subject"],
            Template::default().subject(),
            "{backend:?}"
        );
        assert_eq!(before["variables"].as_array().unwrap().len(), 5);
        assert!(before["preview"]["subject"]
            .as_str()
            .unwrap()
            .contains("Alex Agent"));
        for (subject, body, reason) in [
            ("Call from {agent}", "b", "`{agent}` is not a variable"),
            ("s", "Dialled {number", "is not closed"),
            ("s}", "b", "no `{` before it"),
            ("", "b", "subject must not be empty"),
            ("two\nlines", "b", "one line"),
        ] {
            for (method, path) in [
                (Method::PUT, "/api/v1/emergency/template"),
                (Method::POST, "/api/v1/emergency/template/preview"),
            ] {
                let answer = admin
                    .expect(
                        StatusCode::BAD_REQUEST,
                        method,
                        path,
                        json!({"subject": subject, "body": body}),
                    )
                    .await;
                assert_eq!(answer["code"], "invalid_field", "{answer}");
                assert!(
                    answer["message"].as_str().unwrap().contains(reason),
                    "{reason}: {answer}"
                );
            }
        }
        let long = "b".repeat(10_001);
        admin
            .expect(
                StatusCode::BAD_REQUEST,
                Method::PUT,
                "/api/v1/emergency/template",
                json!({"subject": "s", "body": long}),
            )
            .await;
        assert_eq!(
            admin.get("/api/v1/emergency/template").await,
            before,
            "{backend:?}: a refused template changes nothing"
        );
        let preview = admin
            .expect(
                StatusCode::OK,
                Method::POST,
                "/api/v1/emergency/template/preview",
                json!({"subject": "{agent_name}!", "body": "at {location}"}),
            )
            .await;
        assert_eq!(preview["subject"], "Alex Agent!");
        let saved = admin
            .expect(
                StatusCode::OK,
                Method::PUT,
                "/api/v1/emergency/template",
                json!({"subject": "SOS {agent_name}", "body": "{number} at {time}"}),
            )
            .await;
        assert_eq!(saved["subject"], "SOS {agent_name}");
        assert_eq!(
            admin.get("/api/v1/emergency/template").await["body"],
            "{number} at {time}"
        );
        for who in [&supervisor, &agent] {
            let (status, answer) = who
                .call(
                    Method::PUT,
                    "/api/v1/emergency/template",
                    Some(json!({"subject": "s", "body": "b"})),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        }

        // The log: admins only (or a role given emergency_log_view).
        let agent_id = UserId::parse(&agent.user_id).unwrap();
        let call = placed(agent_id, Utc::now());
        let (mut stream, _) = crate::support::events::EventStream::open(&server, &supervisor).await;
        server.app.services.emergency.placed(call.clone()).await;
        let (alert, _) = stream.until(|e| e["type"] == "emergency_started").await;
        assert_eq!(alert["emergency"]["agent_name"], "Alex Agent");
        assert_eq!(alert["emergency"]["number"], "911");
        assert_eq!(alert["emergency"]["call_id"], call.call.to_string());
        let active = supervisor.get("/api/v1/emergency/in-progress").await;
        assert_eq!(active.as_array().unwrap().len(), 1, "{active}");
        assert!(
            agent.get("/api/v1/emergency/in-progress").await[0]["call_id"] == call.call.to_string(),
            "the agent sees their own"
        );
        assert!(
            server
                .login("agent2")
                .await
                .get("/api/v1/emergency/in-progress")
                .await
                == json!([]),
            "another agent is not alerted"
        );
        for who in [&supervisor, &agent] {
            let (status, answer) = who.call(Method::GET, "/api/v1/emergency/log", None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{backend:?}: {answer}");
            assert_eq!(answer["code"], "forbidden");
        }
        let log = admin
            .get(&format!(
                "/api/v1/emergency/log?agent={}&limit=10",
                agent.user_id
            ))
            .await;
        let entry = find(&log, "call_id", &call.call.to_string());
        assert_eq!(entry["dialled"], "9-911");
        assert_eq!(entry["callback_number"], "15550190");
        assert_eq!(entry["agent_name"], "Alex Agent");
        assert!(entry["ended_at"].is_null());
        let (status, _) = admin
            .call(Method::GET, "/api/v1/emergency/log?limit=0", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = admin
            .call(Method::GET, "/api/v1/emergency/log?agent=nobody", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        server
            .app
            .services
            .emergency
            .ended(call.call, Utc::now())
            .await;
        let (ended, _) = stream.until(|e| e["type"] == "emergency_ended").await;
        assert_eq!(ended["call_id"], call.call.to_string());
        assert_eq!(
            supervisor.get("/api/v1/emergency/in-progress").await,
            json!([])
        );
        let log = admin.get("/api/v1/emergency/log").await;
        assert!(!find(&log, "call_id", &call.call.to_string())["ended_at"].is_null());

        // A custom role given the permission reads the log.
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/roles",
                json!({"key": "compliance", "name": "Compliance", "permissions": ["emergency_log_view"], "scope": "center"}),
            )
            .await;
        let users = admin.get("/api/v1/users").await;
        let sam = find(&users, "username", "supervisor")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        admin
            .expect(
                StatusCode::OK,
                Method::PATCH,
                &format!("/api/v1/users/{sam}"),
                json!({"role": "compliance"}),
            )
            .await;
        let compliance = server.login("supervisor").await;
        assert_eq!(
            compliance
                .get("/api/v1/emergency/log")
                .await
                .as_array()
                .unwrap()
                .len(),
            1,
            "{backend:?}"
        );
    }
}
