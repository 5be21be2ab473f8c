//! The Zendesk connector against a local server that speaks Zendesk's Support API
//! (`support::zendesk`): a web chat becomes a Zendesk ticket with its requester, transcript
//! and file; rate limits, server errors and lost answers are retried without sending anything
//! twice; a refused token gives up and shows as failed; the settings are checked, and the
//! token is never shown. The job tests start the server without launching it, so no
//! background worker runs: they drive the worker with `run_due(now)`, time as input.

use crate::chat::{queue_path, Consumer};
use crate::support::zendesk::{self as fake, FakeZendesk, Trouble};
use crate::{Backend, Server, PASSWORD};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchboard::crm::{self, Event};
use switchboard::zendesk::{Requester, Zendesk, ZendeskAccount, ZendeskError};
use switchboard::{App, AppState, Config};
use switchboard_core::chat::{AttachmentKind, ReservedProperties, Sender};
use switchboard_core::{
    AttachmentId, Channel, Contact, ContactId, ContactStatus, IdentityId, MessageId, TicketId,
    VisitorId,
};
use switchboard_store::{Attachment, ChatSession, Identity, JobState, NewMessage, Ticket, Visitor};
use uuid::Uuid;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The integration settings with the Zendesk connector on the fake (and `token`).
fn zendesk_settings(mut settings: Value, fake: &FakeZendesk, token: &str) -> Value {
    settings["crm_connector"] = json!("zendesk");
    settings["zendesk_url"] = json!(fake.url());
    settings["zendesk_email"] = json!(fake::EMAIL);
    settings["zendesk_token"] = json!(token);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_lands_in_zendesk_as_a_solved_ticket_with_its_requester_transcript_and_file() {
    // On PostgreSQL when it is there (SQLite otherwise).
    let server = Server::start(*crate::backends().last().unwrap()).await;
    let admin = server.login("admin").await;
    let fake = fake::start().await;
    let settings = admin.get("/api/v1/integrations").await;
    let secret = settings["identity_secret"].as_str().unwrap().to_owned();
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/integrations",
            zendesk_settings(settings, &fake, fake::TOKEN),
        )
        .await;

    // An anonymous consumer chats, sends a file, signs in on the site, and leaves.
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
        .await;
    let started = consumer.expect("chat_started").await;
    let chat = started["chat"]["chat_id"].as_str().unwrap().to_owned();
    consumer.socket.send(json!({"type": "message", "chat_id": chat, "client_id": "m1", "text": "My refund is late"})).await;
    consumer.expect("ack").await;
    let (status, file) = crate::read(
        reqwest::Client::new()
            .post(server.url(&format!(
                "/chat/v1/attachments?chat_id={chat}&name=receipt.png"
            )))
            .header("content-type", "image/png")
            .header("x-visitor-id", &consumer.visitor_id)
            .header("x-visitor-token", &consumer.visitor_token)
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    consumer.socket.send(json!({"type": "message", "chat_id": chat, "client_id": "m2", "text": "", "attachment_id": file["id"]})).await;
    consumer.expect("ack").await;
    // The ticket is in Zendesk as soon as the chat starts, from the anonymous visitor.
    let tickets = admin.get("/api/v1/tickets").await;
    let ours = crate::find(&tickets, "chat_id", &chat)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recorded = fake
        .until("the new ticket", |r| {
            r.ticket_with_external_id(&ours).is_some()
        })
        .await;
    let requester = recorded
        .user(
            recorded
                .ticket_with_external_id(&ours)
                .unwrap()
                .requester_id,
        )
        .unwrap();
    assert_eq!(
        requester.external_id.as_deref(),
        Some(consumer.visitor_id.as_str())
    );
    assert!(requester.name.starts_with("Web User - "), "{requester:?}");
    let token = switchboard::identity::sign(
        &json!({"sub": "ann-42", "email": "ann@example.org", "name": "Ann Example", "exp": Utc::now().timestamp() + 300}),
        &secret,
    );
    consumer
        .socket
        .send(json!({"type": "identify", "identity_token": token}))
        .await;
    consumer.expect("identified").await;
    consumer
        .socket
        .send(json!({"type": "end", "chat_id": chat}))
        .await;
    consumer.expect("chat_ended").await;

    let heading = format!("Chat transcript (Switchboard ticket {ours})");
    let recorded = fake
        .until("the solved ticket with the transcript", |r| {
            r.ticket_with_external_id(&ours).is_some_and(|t| {
                t.status == "solved"
                    && r.user(t.requester_id)
                        .is_some_and(|u| u.email.as_deref() == Some("ann@example.org"))
            })
        })
        .await;
    let ticket = recorded.ticket_with_external_id(&ours).unwrap();
    assert_eq!(ticket.subject, "Billing > Refunds");
    assert_eq!(ticket.tags, ["switchboard", "chat"]);
    // The requester is the consumer the site vouched for, under the site's id for them.
    let requester = recorded.user(ticket.requester_id).unwrap();
    assert_eq!(
        (requester.name.as_str(), requester.external_id.as_deref()),
        ("Ann Example", Some("ann-42"))
    );
    // The description, then the transcript as an internal note carrying the file.
    assert_eq!(ticket.comments.len(), 2, "{:#?}", ticket.comments);
    assert!(
        ticket.comments.iter().all(|c| !c.public),
        "internal notes only"
    );
    let transcript = &ticket.comments[1];
    assert!(transcript.body.starts_with(&heading), "{}", transcript.body);
    assert!(
        transcript.body.contains("My refund is late")
            && transcript.body.contains("[file: receipt.png"),
        "{}",
        transcript.body
    );
    assert_eq!(transcript.attachments.len(), 1);
    let attached = &transcript.attachments[0];
    assert_eq!(
        (
            attached.file_name.as_str(),
            attached.content_type.as_str(),
            attached.size,
            attached.sha256.clone()
        ),
        ("receipt.png", "image/png", PNG.len() as u64, sha256(PNG))
    );
    // The upload said its type and length, and every request was authenticated.
    let upload = recorded
        .requests
        .iter()
        .find(|r| r.target.starts_with("/api/v2/uploads"))
        .unwrap();
    assert_eq!(
        (
            upload.target.as_str(),
            upload.content_type.as_deref(),
            upload.content_length
        ),
        (
            "/api/v2/uploads?filename=receipt.png",
            Some("image/png"),
            Some(PNG.len() as u64)
        )
    );
    assert!(recorded.requests.iter().all(|r| r.status != 401));
    // Our ticket knows its Zendesk id, so supervisors' record links point at it.
    let ticket_view = admin.get(&format!("/api/v1/tickets/{ours}")).await;
    assert_eq!(ticket_view["external_id"], ticket.id.to_string());
    assert_eq!(ticket_view["status"], "solved");
}

/// A chat stored as the chat service stores one: an anonymous visitor, its ticket, a message
/// and files (their bytes in the attachment store).
struct StoredChat {
    ticket: TicketId,
    visitor: VisitorId,
}

async fn store_chat(app: &AppState, files: &[(&str, AttachmentKind, Vec<u8>)]) -> StoredChat {
    let store = &app.services.store;
    let now = Utc::now();
    let visitor = Visitor {
        id: VisitorId::from_uuid(Uuid::now_v7()),
        token_hash: "token-hash".into(),
        identity: None,
        created_at: now,
    };
    store.create_visitor(&visitor).await.unwrap();
    let name = "Web User - 05/04 09:05".to_owned();
    let contact = Contact {
        id: ContactId::from_uuid(Uuid::now_v7()),
        channel: Channel::Web,
        queue: None,
        issue: "Technical support".into(),
        priority: 0,
        language: None,
        status: ContactStatus::Queued,
        agent: None,
        customer: Some(name.clone()),
        created_at: now,
        assigned_at: None,
        ended_at: None,
        end_reason: None,
        transfers: 0,
        ended_by: None,
    };
    let ticket = Ticket {
        id: TicketId::from_uuid(Uuid::now_v7()),
        contact: Some(contact.id),
        visitor: Some(visitor.id),
        identity: None,
        name,
        status: "open".into(),
        transcript: None,
        external_id: None,
        created_at: now,
        updated_at: now,
        call: None,
        phone: None,
    };
    let chat = ChatSession {
        contact: contact.id,
        visitor: visitor.id,
        identity: None,
        ticket: ticket.id,
        source: "web".into(),
        properties: ReservedProperties::default(),
        accepted_at: None,
    };
    store.insert_chat(&contact, &chat, &ticket).await.unwrap();
    let message = |text: &str, attachment: Option<AttachmentId>| NewMessage {
        id: MessageId::from_uuid(Uuid::now_v7()),
        contact: contact.id,
        sender: Sender::Consumer,
        client_id: None,
        text: text.into(),
        attachment,
        sent_at: now,
    };
    store
        .append_message(&message("Printer on fire", None))
        .await
        .unwrap();
    for (name, kind, bytes) in files {
        let file = Attachment {
            id: AttachmentId::from_uuid(Uuid::now_v7()),
            contact: contact.id,
            kind: *kind,
            size: bytes.len() as i64,
            name: (*name).into(),
            uploaded_by: Sender::Consumer,
            created_at: now,
        };
        store.insert_attachment(&file).await.unwrap();
        app.blobs.put(&file.id.to_string(), bytes).await.unwrap();
        store
            .append_message(&message("", Some(file.id)))
            .await
            .unwrap();
    }
    StoredChat {
        ticket: ticket.id,
        visitor: visitor.id,
    }
}

/// A server started without launching it (so the test drives the job worker), seeded with
/// the demo center, its CRM connector Zendesk on the fake with `token`.
pub(crate) async fn unlaunched(fake: &FakeZendesk, token: &str) -> (AppState, std::path::PathBuf) {
    let data_dir = std::env::temp_dir().join(format!("switchboard-zendesk-{}", Uuid::new_v4()));
    let app = App::start(Config::for_data_dir(&data_dir))
        .await
        .expect("server starts");
    switchboard::demo::seed(&app, PASSWORD.to_owned())
        .await
        .map_err(|e| e.message)
        .expect("demo seeds");
    use_zendesk(&app.services.store, fake, token).await;
    (app, data_dir)
}

/// Makes the fake Zendesk the center's CRM connector, with `token` as the API token.
pub(crate) async fn use_zendesk(
    store: &std::sync::Arc<dyn switchboard_store::Store>,
    fake: &FakeZendesk,
    token: &str,
) {
    let mut settings = store.integration_settings("unused").await.unwrap();
    settings.crm_connector = "zendesk".into();
    settings.zendesk_url = Some(fake.url().to_owned());
    settings.zendesk_email = Some(fake::EMAIL.into());
    settings.zendesk_token = Some(token.into());
    store.update_integration_settings(&settings).await.unwrap();
}

/// The state, attempts and last error of the one CRM job for `event` (`ticket_created`…).
async fn crm_job(app: &AppState, event: &str) -> (JobState, u32, String) {
    let jobs = app.services.store.list_jobs(20).await.unwrap();
    let tag = format!("\"event\":\"{event}\"");
    let crm: Vec<_> = jobs
        .iter()
        .filter(|j| j.kind == "crm" && j.payload.contains(&tag))
        .collect();
    assert_eq!(crm.len(), 1, "{jobs:?}");
    let job = crm[0];
    (
        job.state,
        job.attempts,
        job.last_error.clone().unwrap_or_default(),
    )
}

/// Enqueues the event as the chat service does, and gives the time the worker counts from.
async fn enqueue(app: &AppState, event: Event) -> DateTime<Utc> {
    crm::enqueue(&app.services.jobs, event).await;
    Utc::now()
}

#[tokio::test]
async fn rate_limits_server_errors_and_lost_answers_are_retried_without_sending_twice() {
    let fake = fake::start().await;
    let (app, data_dir) = unlaunched(&fake, fake::TOKEN).await;
    let store = app.services.store.clone();
    // Zendesk takes files up to 2 KiB here: the PNG goes, the video does not.
    fake.set_upload_limit(2048);
    let video = [b"\0\0\0\x18ftypmp42".as_slice(), &[7u8; 4000]].concat();
    let chat = store_chat(
        &app,
        &[
            ("receipt.png", AttachmentKind::Png, PNG.to_vec()),
            ("unboxing.mp4", AttachmentKind::Mp4, video),
        ],
    )
    .await;
    let ours = chat.ticket.to_string();

    // The ticket: the first try meets the rate limit (Retry-After: 3 s).
    fake.fail_next(1, Trouble::RateLimited { retry_after: 3 });
    let start = enqueue(
        &app,
        Event::TicketCreated {
            ticket: chat.ticket,
        },
    )
    .await;
    assert_eq!(app.jobs.run_due(start).await, 1);
    let (state, attempts, error) = crm_job(&app, "ticket_created").await;
    assert_eq!((state, attempts), (JobState::Pending, 1), "{error}");
    assert!(
        error.contains("rate limit") && error.contains("3 s"),
        "{error}"
    );
    let asked = fake.recorded().requests.len();
    assert_eq!(
        app.jobs.run_due(start + Duration::seconds(2)).await,
        0,
        "nothing is sent before the wait Zendesk asked for"
    );
    // Retried when the retry policy's first wait (5 s, longer than Zendesk's 3 s) is over.
    assert_eq!(app.jobs.run_due(start + Duration::seconds(4)).await, 0);
    assert_eq!(fake.recorded().requests.len(), asked);
    assert_eq!(app.jobs.run_due(start + Duration::seconds(5)).await, 1);
    assert_eq!(crm_job(&app, "ticket_created").await.0, JobState::Done);
    let recorded = fake.recorded();
    let ticket = recorded.ticket_with_external_id(&ours).expect("created");
    assert_eq!(ticket.subject, "Technical support");
    assert_eq!(
        store.get_ticket(chat.ticket).await.unwrap().external_id,
        Some(ticket.id.to_string())
    );
    let requester = recorded.user(ticket.requester_id).unwrap();
    assert_eq!(
        (requester.name.as_str(), requester.external_id.clone()),
        ("Web User - 05/04 09:05", Some(chat.visitor.to_string()))
    );

    // The transcript: a 503 first, then the update goes through but its answer is lost; the
    // retries find the note on the ticket's second page of comments and add nothing.
    fake.set_page_cap(1);
    fake.fail_next(1, Trouble::ServerError(503));
    fake.fail_next_on(Method::PUT, "/api/v2/tickets/", 1, Trouble::LostAnswer);
    let start = enqueue(
        &app,
        Event::TicketClosed {
            ticket: chat.ticket,
        },
    )
    .await;
    assert_eq!(app.jobs.run_due(start).await, 1);
    let (state, attempts, error) = crm_job(&app, "ticket_closed").await;
    assert_eq!((state, attempts), (JobState::Pending, 1));
    assert!(error.contains("503"), "{error}");
    assert_eq!(app.jobs.run_due(start + Duration::seconds(5)).await, 1);
    let (state, attempts, error) = crm_job(&app, "ticket_closed").await;
    assert_eq!((state, attempts), (JobState::Pending, 2));
    assert!(error.contains("502"), "a lost answer: {error}");
    assert_eq!(
        app.jobs.run_due(start + Duration::seconds(14)).await,
        0,
        "the second wait is twice the first"
    );
    assert_eq!(app.jobs.run_due(start + Duration::seconds(15)).await, 1);
    assert_eq!(crm_job(&app, "ticket_closed").await.0, JobState::Done);

    let recorded = fake.recorded();
    let ticket = recorded.ticket_with_external_id(&ours).unwrap();
    assert_eq!(recorded.tickets.len(), 1);
    assert_eq!(ticket.status, "solved");
    assert_eq!(
        ticket.comments.len(),
        2,
        "one transcript: {:#?}",
        ticket.comments
    );
    let note = &ticket.comments[1];
    assert!(note.body.contains("Printer on fire"), "{}", note.body);
    assert!(
        note.body
            .contains("Not attached: unboxing.mp4 (4012 bytes) is larger than Zendesk takes"),
        "{}",
        note.body
    );
    let files: Vec<_> = note
        .attachments
        .iter()
        .map(|a| a.file_name.as_str())
        .collect();
    assert_eq!(files, ["receipt.png"]);
    assert_eq!(note.attachments[0].bytes.as_deref(), Some(PNG));
    // The lost answer's retry found the note by paging (one comment a page here).
    assert!(
        recorded.requests.iter().any(|r| r
            .target
            .contains("/comments?page%5Bsize%5D=100&page%5Bafter%5D=after-1")),
        "{:#?}",
        recorded.requests
    );
    assert_eq!(
        store.get_ticket(chat.ticket).await.unwrap().status,
        "solved"
    );
    std::fs::remove_dir_all(data_dir).ok();
}

#[tokio::test]
async fn a_lost_answer_to_a_new_ticket_does_not_make_a_second_one_and_identities_become_requesters()
{
    let fake = fake::start().await;
    let (app, data_dir) = unlaunched(&fake, fake::TOKEN).await;
    let store = app.services.store.clone();
    let chat = store_chat(&app, &[]).await;
    let ours = chat.ticket.to_string();
    fake.fail_next_on(Method::POST, "/api/v2/tickets", 1, Trouble::LostAnswer);
    let start = enqueue(
        &app,
        Event::TicketCreated {
            ticket: chat.ticket,
        },
    )
    .await;
    assert_eq!(app.jobs.run_due(start).await, 1);
    assert_eq!(crm_job(&app, "ticket_created").await.0, JobState::Pending);
    assert_eq!(
        fake.recorded().tickets.len(),
        1,
        "created, but unacknowledged"
    );
    assert_eq!(app.jobs.run_due(start + Duration::seconds(5)).await, 1);
    assert_eq!(crm_job(&app, "ticket_created").await.0, JobState::Done);
    let recorded = fake.recorded();
    assert_eq!(recorded.tickets.len(), 1, "found again, not made twice");
    let zendesk_id = recorded.tickets[0].id;
    assert_eq!(
        store.get_ticket(chat.ticket).await.unwrap().external_id,
        Some(zendesk_id.to_string())
    );

    // The visitor signs in: the identity becomes the ticket's requester.
    let outcome = store
        .identify_visitor(
            chat.visitor,
            &Identity {
                id: IdentityId::from_uuid(Uuid::now_v7()),
                external_id: "crm-77".into(),
                email: Some("bo@example.org".into()),
                name: None,
                phone: None,
                created_at: Utc::now(),
            },
        )
        .await
        .unwrap();
    let start = enqueue(
        &app,
        Event::IdentityMerged {
            visitor: chat.visitor,
            identity: outcome.identity.id,
        },
    )
    .await;
    assert_eq!(app.jobs.run_due(start).await, 1);
    assert_eq!(crm_job(&app, "identity_merged").await.0, JobState::Done);
    let recorded = fake.recorded();
    let requester = recorded.user(recorded.tickets[0].requester_id).unwrap();
    assert_eq!(
        (
            requester.name.as_str(),
            requester.email.as_deref(),
            requester.external_id.as_deref()
        ),
        ("bo@example.org", Some("bo@example.org"), Some("crm-77"))
    );
    assert_eq!(
        recorded.tickets[0].external_id.as_deref(),
        Some(ours.as_str())
    );
    std::fs::remove_dir_all(data_dir).ok();
}

#[tokio::test]
async fn a_refused_token_gives_up_and_shows_as_failed() {
    let fake = fake::start().await;
    let (app, data_dir) = unlaunched(&fake, "not-the-token").await;
    let chat = store_chat(&app, &[]).await;
    let start = enqueue(
        &app,
        Event::TicketCreated {
            ticket: chat.ticket,
        },
    )
    .await;
    assert_eq!(app.jobs.run_due(start).await, 1);
    let (state, attempts, error) = crm_job(&app, "ticket_created").await;
    assert_eq!((state, attempts), (JobState::Failed, 1), "{error}");
    assert!(
        error.contains("401") && error.contains("Couldn't authenticate you"),
        "{error}"
    );
    assert_eq!(
        app.jobs.run_due(start + Duration::days(2)).await,
        0,
        "never tried again"
    );
    let recorded = fake.recorded();
    assert!(recorded.tickets.is_empty() && recorded.users.is_empty());
    assert_eq!(recorded.requests.len(), 1);
    std::fs::remove_dir_all(data_dir).ok();
}

/// The client alone: each kind of answer is the error it stands for, uploads stream with
/// their length, and `attach` sends a file once however often it is asked.
#[tokio::test]
async fn the_client_says_what_each_answer_means_and_attaches_once() {
    let fake = fake::start().await;
    let client = |token: &str| {
        Zendesk::new(
            reqwest::Client::new(),
            ZendeskAccount::parse(fake.url(), fake::EMAIL, token).unwrap(),
        )
    };
    let zendesk = client(fake::TOKEN);
    let ann = Requester {
        name: "Ann".into(),
        email: Some("ann@example.org".into()),
        phone: Some("+15550100".into()),
        external_id: "ann-1".into(),
    };
    fake.fail_next(1, Trouble::RateLimited { retry_after: 7 });
    assert_eq!(
        zendesk.create_or_update_user(&ann).await,
        Err(ZendeskError::RateLimited {
            retry_after: std::time::Duration::from_secs(7)
        })
    );
    fake.fail_next(1, Trouble::ServerError(500));
    assert!(matches!(
        zendesk.create_or_update_user(&ann).await,
        Err(ZendeskError::Transient(message)) if message.contains("500")
    ));
    assert!(matches!(
        client("wrong-token").create_or_update_user(&ann).await,
        Err(ZendeskError::Refused { status: 401, .. })
    ));
    let user = zendesk.create_or_update_user(&ann).await.unwrap();
    assert_eq!(
        zendesk.create_or_update_user(&ann).await.unwrap(),
        user,
        "found again by external id"
    );
    let ticket = zendesk
        .create_ticket(&switchboard::zendesk::NewTicket {
            subject: "Sales".into(),
            description: "A call".into(),
            requester_id: user,
            tags: vec!["switchboard".into()],
            external_id: Some("ours-1".into()),
            custom_fields: vec![(360001, "gold".into())],
        })
        .await
        .unwrap();
    assert_eq!(
        fake.recorded().tickets[0].custom_fields,
        [(360001, json!("gold"))]
    );
    assert!(matches!(
        zendesk.update_ticket("999999", &Default::default()).await,
        Err(ZendeskError::Refused { status: 404, .. })
    ));

    // Uploads: over the limit is TooLarge; a second file may join an upload by its token.
    fake.set_upload_limit(1000);
    let reader = |bytes: Vec<u8>| -> switchboard::blobs::BlobReader {
        Box::pin(std::io::Cursor::new(bytes))
    };
    assert_eq!(
        zendesk
            .upload("big.wav", "audio/wav", 1001, reader(vec![1; 1001]), None)
            .await,
        Err(ZendeskError::TooLarge)
    );
    let token = zendesk
        .upload("a.wav", "audio/wav", 10, reader(vec![2; 10]), None)
        .await
        .unwrap();
    let same = zendesk
        .upload("b.wav", "audio/wav", 20, reader(vec![3; 20]), Some(&token))
        .await
        .unwrap();
    assert_eq!(same, token);
    assert_eq!(fake.recorded().uploads[0].attachments.len(), 2);
    // A reader shorter than its length fails the upload rather than sending a short file.
    assert!(matches!(
        zendesk
            .upload("short.wav", "audio/wav", 50, reader(vec![4; 10]), None)
            .await,
        Err(ZendeskError::Transient(_))
    ));

    // attach: every file uploaded, then one note with all their tokens; asked again (an
    // answer lost), it sends nothing more.
    let files = || {
        vec![
            (
                "part-1.wav".to_owned(),
                "audio/wav".to_owned(),
                5,
                reader(vec![5; 5]),
            ),
            (
                "part-2.wav".to_owned(),
                "audio/wav".to_owned(),
                6,
                reader(vec![6; 6]),
            ),
        ]
    };
    let text = "Recording of the call, parts 1 and 2";
    let id = ticket.to_string();
    zendesk.attach(&id, text, files()).await.unwrap();
    let uploads = fake.recorded().uploads.len();
    zendesk.attach(&id, text, files()).await.unwrap();
    let recorded = fake.recorded();
    assert_eq!(recorded.uploads.len(), uploads, "nothing uploaded again");
    let comments = &recorded.tickets[0].comments;
    assert_eq!(comments.len(), 2, "{comments:#?}");
    let names: Vec<_> = comments[1]
        .attachments
        .iter()
        .map(|a| (a.file_name.as_str(), a.size))
        .collect();
    assert_eq!(names, [("part-1.wav", 5), ("part-2.wav", 6)]);
    assert!(!comments[1].public);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_settings_are_checked_and_the_token_is_never_shown() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let fake = fake::start().await;
    let before = admin.get("/api/v1/integrations").await;
    assert_eq!(before["zendesk_token_set"], false);
    let good = zendesk_settings(before.clone(), &fake, fake::TOKEN);
    let refused = |change: &dyn Fn(&mut Value), message: &'static str| {
        let mut body = good.clone();
        change(&mut body);
        (body, message)
    };
    for (body, message) in [
        refused(&|b| b["zendesk_url"] = json!(null), "zendesk_url"),
        refused(
            &|b| b["zendesk_url"] = json!("http://acme.zendesk.com"),
            "https",
        ),
        refused(
            &|b| b["zendesk_url"] = json!("ftp://127.0.0.1"),
            "zendesk_url",
        ),
        refused(
            &|b| b["zendesk_url"] = json!("https://acme.zendesk.com/api/v2"),
            "zendesk_url",
        ),
        refused(
            &|b| b["zendesk_url"] = json!("https://me:pw@acme.zendesk.com"),
            "zendesk_url",
        ),
        refused(&|b| b["zendesk_url"] = json!("not a url"), "zendesk_url"),
        refused(&|b| b["zendesk_email"] = json!("nobody"), "zendesk_email"),
        refused(&|b| b["zendesk_email"] = json!(""), "zendesk_email"),
        refused(
            &|b| b["zendesk_token"] = json!("has spaces in it"),
            "zendesk_token",
        ),
        refused(&|b| b["zendesk_token"] = json!(null), "zendesk_token"),
        refused(
            &|b| b["zendesk_token"] = json!("x".repeat(201)),
            "zendesk_token",
        ),
        refused(&|b| b["crm_connector"] = json!("freshdesk"), "zendesk"),
    ] {
        let answer = admin
            .expect(
                StatusCode::BAD_REQUEST,
                Method::PUT,
                "/api/v1/integrations",
                body.clone(),
            )
            .await;
        assert_eq!(answer["code"], "invalid_field", "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        admin.get("/api/v1/integrations").await,
        before,
        "a refused change changes nothing"
    );

    // Accepted: the address as stored (no trailing slash), the token never shown.
    let mut body = good.clone();
    body["zendesk_url"] = json!(format!("{}/", fake.url()));
    let saved = admin
        .expect(StatusCode::OK, Method::PUT, "/api/v1/integrations", body)
        .await;
    let shown = admin.get("/api/v1/integrations").await;
    for view in [&saved, &shown] {
        assert_eq!(view["zendesk_url"], fake.url());
        assert_eq!(view["zendesk_email"], fake::EMAIL);
        assert_eq!(view["zendesk_token_set"], true);
        assert!(view.get("zendesk_token").is_none(), "{view}");
        assert!(!view.to_string().contains(fake::TOKEN), "{view}");
    }
    let https = {
        let mut body = shown.clone();
        body["zendesk_url"] = json!("https://acme.zendesk.com");
        body
    };
    // Saved again without a token (as the portal's form does), the stored one is kept.
    let kept = admin
        .expect(StatusCode::OK, Method::PUT, "/api/v1/integrations", https)
        .await;
    assert_eq!(
        (
            kept["zendesk_url"].clone(),
            kept["zendesk_token_set"].clone()
        ),
        (json!("https://acme.zendesk.com"), json!(true))
    );
    let stored = server
        .app
        .services
        .store
        .integration_settings("unused")
        .await
        .unwrap();
    assert_eq!(stored.zendesk_token.as_deref(), Some(fake::TOKEN));
    // An empty token removes it: refused while the connector is Zendesk, fine otherwise.
    let mut remove = kept.clone();
    remove["zendesk_token"] = json!("");
    admin
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/integrations",
            remove.clone(),
        )
        .await;
    remove["crm_connector"] = json!("builtin");
    let builtin = admin
        .expect(StatusCode::OK, Method::PUT, "/api/v1/integrations", remove)
        .await;
    assert_eq!(builtin["zendesk_token_set"], false);
}
