//! A local Zendesk Support API for tests, speaking what Zendesk documents for the endpoints
//! the connector uses: `POST /api/v2/users/create_or_update`, `POST /api/v2/tickets`,
//! `GET /api/v2/tickets?external_id=…`, `PUT /api/v2/tickets/{id}`,
//! `GET /api/v2/tickets/{id}/comments` (both lists with cursor pagination) and
//! `POST /api/v2/uploads?filename=…[&token=…]`.
//!
//! It checks requests as Zendesk would, and a little more strictly where a mistake of ours
//! would go unnoticed: basic auth `{email}/token:{token}` on every request (401 otherwise),
//! JSON bodies of the documented shapes (422 `RecordInvalid` otherwise), uploads with a
//! content type and a `Content-Length` the body matches (413 over the size limit), comments
//! that reference only upload tokens it issued and that were not used before, and cursor
//! pagination only. It keeps users, tickets, comments and uploads in memory for assertions,
//! and can be told to answer the next requests with a 429 and `Retry-After`, a 5xx, or a lost
//! answer (the change made, then a gateway's 502). `start()` gives a `FakeZendesk` at its URL.

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The agent whose API token the fake accepts.
pub const EMAIL: &str = "integration@center.example";
pub const TOKEN: &str = "zendesk-api-token-0123456789";
/// The largest upload by default: Zendesk's 50 MB.
pub const UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: u64,
    pub subject: String,
    pub requester_id: u64,
    pub status: String,
    pub tags: Vec<String>,
    pub external_id: Option<String>,
    pub custom_fields: Vec<(u64, Value)>,
    /// Oldest first; the first is the description.
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub public: bool,
    pub attachments: Vec<Attachment>,
}

/// A file as uploaded: its bytes are kept only when small, their digest always.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: u64,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes received.
    pub sha256: String,
    /// The bytes, for files up to 1 MiB.
    pub bytes: Option<Vec<u8>>,
}

/// An upload token's files, and whether a comment has taken them.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    pub token: String,
    pub attachments: Vec<Attachment>,
    pub used: bool,
}

/// A request as the fake saw it, with its answer's status.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub status: u16,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
}

/// How to answer instead of (or after) doing what was asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trouble {
    /// 429 with `Retry-After: {retry_after}`, as Zendesk's rate limit does.
    RateLimited { retry_after: u64 },
    /// That status (a 5xx), with an HTML page.
    ServerError(u16),
    /// Does what was asked, then answers 502 with an HTML page: the acknowledgement is lost.
    LostAnswer,
}

/// Everything the fake holds, for assertions.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub users: Vec<User>,
    pub tickets: Vec<Ticket>,
    pub uploads: Vec<Upload>,
    pub requests: Vec<Seen>,
}

impl Recorded {
    pub fn ticket_with_external_id(&self, external_id: &str) -> Option<&Ticket> {
        self.tickets
            .iter()
            .find(|t| t.external_id.as_deref() == Some(external_id))
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

/// A trouble waiting for the requests it applies to.
struct Planned {
    /// Only requests with this method and a path starting so; all when `None`.
    only: Option<(Method, String)>,
    remaining: usize,
    trouble: Trouble,
}

struct State {
    next_id: u64,
    recorded: Recorded,
    uploads: HashMap<String, usize>,
    planned: VecDeque<Planned>,
    upload_limit: u64,
    /// The most items a page holds, whatever `page[size]` asks (Zendesk's is 100).
    page_cap: usize,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn trouble_for(&mut self, method: &Method, path: &str) -> Option<Trouble> {
        let index = self.planned.iter().position(|p| match &p.only {
            None => true,
            Some((m, start)) => m == method && path.starts_with(start.as_str()),
        })?;
        let planned = &mut self.planned[index];
        planned.remaining -= 1;
        let trouble = planned.trouble;
        if planned.remaining == 0 {
            self.planned.remove(index);
        }
        Some(trouble)
    }
}

/// The running fake; the server stops with the test's runtime.
#[derive(Clone)]
pub struct FakeZendesk {
    url: String,
    state: Arc<Mutex<State>>,
    changes: Arc<watch::Sender<u64>>,
}

/// Starts the fake on a free port of 127.0.0.1.
pub async fn start() -> FakeZendesk {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = FakeZendesk {
        url: format!("http://{}", listener.local_addr().unwrap()),
        state: Arc::new(Mutex::new(State {
            next_id: 1000,
            recorded: Recorded::default(),
            uploads: HashMap::new(),
            planned: VecDeque::new(),
            upload_limit: UPLOAD_LIMIT,
            page_cap: 100,
        })),
        changes: Arc::new(watch::channel(0).0),
    };
    let served = fake.clone();
    let router = axum::Router::new().fallback(move |method, uri, headers, body| {
        let fake = served.clone();
        async move { fake.handle(method, uri, headers, body).await }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    fake
}

impl FakeZendesk {
    /// The account's address, as `zendesk_url` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next `count` requests with `trouble`.
    pub fn fail_next(&self, count: usize, trouble: Trouble) {
        self.plan(None, count, trouble);
    }

    /// Answers the next `count` requests of `method` to a path starting with `path` with
    /// `trouble`; others are answered as usual.
    pub fn fail_next_on(&self, method: Method, path: &str, count: usize, trouble: Trouble) {
        self.plan(Some((method, path.to_owned())), count, trouble);
    }

    fn plan(&self, only: Option<(Method, String)>, count: usize, trouble: Trouble) {
        if count > 0 {
            self.state.lock().unwrap().planned.push_back(Planned {
                only,
                remaining: count,
                trouble,
            });
        }
    }

    /// Uploads larger than this are refused with 413.
    pub fn set_upload_limit(&self, bytes: u64) {
        self.state.lock().unwrap().upload_limit = bytes;
    }

    /// Pages hold at most this many items, so that short lists take several pages.
    pub fn set_page_cap(&self, items: usize) {
        self.state.lock().unwrap().page_cap = items.max(1);
    }

    pub fn recorded(&self) -> Recorded {
        self.state.lock().unwrap().recorded.clone()
    }

    /// Waits (at most 30 s) until what the fake holds satisfies `done`, woken by each
    /// request it answers; panics with `what` and the state otherwise.
    pub async fn until(&self, what: &str, done: impl Fn(&Recorded) -> bool) -> Recorded {
        let mut changes = self.changes.subscribe();
        let wait = async {
            loop {
                let recorded = self.recorded();
                if done(&recorded) {
                    return recorded;
                }
                if changes.changed().await.is_err() {
                    return recorded;
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(recorded) if done(&recorded) => recorded,
            _ => panic!("the fake Zendesk never had {what}: {:#?}", self.recorded()),
        }
    }

    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
        let (status, response) = self.answer(&method, &uri, &headers, body).await;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            method: method.to_string(),
            target: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            status: status.as_u16(),
            content_type: header("content-type"),
            content_length: header("content-length").and_then(|v| v.parse().ok()),
        };
        self.state.lock().unwrap().recorded.requests.push(seen);
        self.changes.send_modify(|n| *n += 1);
        response
    }

    async fn answer(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Body,
    ) -> (StatusCode, Response) {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}/token:{TOKEN}"))
        );
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            drain(body).await;
            return respond(json_answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": "Couldn't authenticate you"}),
            ));
        }
        let path = uri.path().to_owned();
        let trouble = self.state.lock().unwrap().trouble_for(method, &path);
        match trouble {
            Some(Trouble::RateLimited { retry_after }) => {
                drain(body).await;
                let response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("retry-after", retry_after.to_string()),
                        ("content-type", "text/html; charset=utf-8".to_owned()),
                    ],
                    "Rate limit for ticket updates exceeded, please wait before updating this ticket again",
                )
                    .into_response();
                return (StatusCode::TOO_MANY_REQUESTS, response);
            }
            Some(Trouble::ServerError(code)) => {
                drain(body).await;
                let status = StatusCode::from_u16(code).unwrap();
                return (status, html(status));
            }
            Some(Trouble::LostAnswer) | None => {}
        }
        let query = query_of(uri);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let answer = match (method.clone(), segments.as_slice()) {
            (Method::POST, ["api", "v2", "uploads"]) => self.upload(&query, headers, body).await,
            (method, segments) => match read_json(headers, body).await {
                Err(refusal) => refusal,
                Ok(json) => self.json_endpoint(&method, segments, &query, json),
            },
        };
        if trouble == Some(Trouble::LostAnswer) {
            return (StatusCode::BAD_GATEWAY, html(StatusCode::BAD_GATEWAY));
        }
        respond(answer)
    }

    fn json_endpoint(
        &self,
        method: &Method,
        segments: &[&str],
        query: &HashMap<String, String>,
        body: Option<Value>,
    ) -> Answer {
        let mut state = self.state.lock().unwrap();
        match (method.clone(), segments) {
            (Method::POST, ["api", "v2", "users", "create_or_update"]) => {
                create_or_update_user(&mut state, body)
            }
            (Method::POST, ["api", "v2", "tickets"]) => create_ticket(&mut state, body),
            (Method::GET, ["api", "v2", "tickets"]) => {
                let wanted = query.get("external_id").cloned();
                let tickets: Vec<Value> = state
                    .recorded
                    .tickets
                    .iter()
                    .filter(|t| wanted.is_none() || t.external_id == wanted)
                    .map(ticket_json)
                    .collect();
                page(&state, query, "tickets", tickets)
            }
            (Method::PUT, ["api", "v2", "tickets", id]) => update_ticket(&mut state, id, body),
            (Method::GET, ["api", "v2", "tickets", id, "comments"]) => {
                let Some(ticket) = find_ticket(&state, id) else {
                    return not_found();
                };
                let comments: Vec<Value> = ticket.comments.iter().map(comment_json).collect();
                page(&state, query, "comments", comments)
            }
            _ => not_found(),
        }
    }

    async fn upload(
        &self,
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
    ) -> Answer {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let file_name = query.get("filename").cloned().unwrap_or_default();
        let content_type = header("content-type").unwrap_or_default().to_owned();
        let declared = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let limit = self.state.lock().unwrap().upload_limit;
        let problem = if file_name.trim().is_empty() {
            Some("the filename parameter is required")
        } else if !content_type.contains('/') || content_type.starts_with("application/json") {
            Some("Content-Type must be the file's MIME type")
        } else if declared.is_none() || header("transfer-encoding").is_some() {
            Some("the upload must say its Content-Length")
        } else {
            None
        };
        if let Some(problem) = problem {
            drain(body).await;
            return json_answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "InvalidUpload", "description": problem}),
            );
        }
        // The body is read to its end even when too large, so the client reads the answer
        // rather than a reset connection.
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut kept = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "InvalidUpload", "description": "the body was cut short"}),
                );
            };
            size += chunk.len() as u64;
            if size <= limit {
                hasher.update(&chunk);
                if size <= 1024 * 1024 {
                    kept.extend_from_slice(&chunk);
                }
            }
        }
        if size > limit {
            return json_answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "RequestEntityTooLarge", "description": format!("files over {limit} bytes are not accepted")}),
            );
        }
        if Some(size) != declared {
            return json_answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "InvalidUpload", "description": "the body does not match its Content-Length"}),
            );
        }
        let mut state = self.state.lock().unwrap();
        let attachment = Attachment {
            id: state.id(),
            file_name,
            content_type,
            size,
            sha256: hex(&hasher.finalize()),
            bytes: (size <= 1024 * 1024).then_some(kept),
        };
        let index = match query.get("token") {
            Some(token) => match state.uploads.get(token) {
                Some(&index) if !state.recorded.uploads[index].used => index,
                _ => {
                    return invalid(
                        json!({"token": [{"description": "is not an upload in progress"}]}),
                    )
                }
            },
            None => {
                let token = format!("upload-token-{}", state.id());
                state.recorded.uploads.push(Upload {
                    token: token.clone(),
                    attachments: Vec::new(),
                    used: false,
                });
                let index = state.recorded.uploads.len() - 1;
                state.uploads.insert(token, index);
                index
            }
        };
        let upload = &mut state.recorded.uploads[index];
        upload.attachments.push(attachment.clone());
        json_answer(
            StatusCode::CREATED,
            json!({"upload": {
                "token": upload.token,
                "expires_at": "2100-01-01T00:00:00Z",
                "attachment": attachment_json(&attachment),
                "attachments": upload.attachments.iter().map(attachment_json).collect::<Vec<_>>(),
            }}),
        )
    }
}

fn create_or_update_user(state: &mut State, body: Option<Value>) -> Answer {
    let Some(user) = body
        .as_ref()
        .and_then(|b| b.get("user"))
        .and_then(Value::as_object)
    else {
        return invalid(json!({"user": [{"description": "is required"}]}));
    };
    let text = |name: &str| user.get(name).and_then(Value::as_str).map(str::to_owned);
    for field in ["name", "email", "phone", "external_id"] {
        if user.get(field).is_some_and(|v| !v.is_string()) {
            return invalid(json!({field: [{"description": "must be a string"}]}));
        }
    }
    if user
        .get("skip_verify_email")
        .is_some_and(|v| !v.is_boolean())
    {
        return invalid(json!({"skip_verify_email": [{"description": "must be a boolean"}]}));
    }
    let name = text("name").unwrap_or_default();
    let (email, external_id) = (text("email"), text("external_id"));
    if name.trim().is_empty() {
        return invalid(
            json!({"name": [{"description": "Name:  is too short (minimum is 1 character)"}]}),
        );
    }
    if email.is_none() && external_id.is_none() {
        return invalid(
            json!({"email": [{"description": "an email or external_id identifies the user"}]}),
        );
    }
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    let found = state
        .recorded
        .users
        .iter()
        .position(|u| same(&u.external_id, &external_id))
        .or_else(|| {
            state
                .recorded
                .users
                .iter()
                .position(|u| same(&u.email, &email))
        });
    let (status, user) = match found {
        Some(index) => {
            let user = &mut state.recorded.users[index];
            user.name = name;
            if user.email.is_none() {
                user.email = email;
            }
            if let Some(phone) = text("phone") {
                user.phone = Some(phone);
            }
            if external_id.is_some() {
                user.external_id = external_id;
            }
            (StatusCode::OK, user.clone())
        }
        None => {
            let user = User {
                id: state.id(),
                name,
                email,
                phone: text("phone"),
                external_id,
            };
            state.recorded.users.push(user.clone());
            (StatusCode::CREATED, user)
        }
    };
    json_answer(
        status,
        json!({"user": {"id": user.id, "name": user.name, "email": user.email, "phone": user.phone,
            "external_id": user.external_id, "role": "end-user",
            "url": format!("/api/v2/users/{}.json", user.id)}}),
    )
}

fn create_ticket(state: &mut State, body: Option<Value>) -> Answer {
    let Some(fields) = body
        .as_ref()
        .and_then(|b| b.get("ticket"))
        .and_then(Value::as_object)
    else {
        return invalid(json!({"ticket": [{"description": "is required"}]}));
    };
    let requester_id = fields.get("requester_id").and_then(Value::as_u64);
    if !requester_id.is_some_and(|id| state.recorded.users.iter().any(|u| u.id == id)) {
        return invalid(json!({"requester": [{"description": "Requester: is not a user"}]}));
    }
    let comment = match comment_of(state, fields.get("comment")) {
        Ok(Some(comment)) => comment,
        Ok(None) => {
            return invalid(json!({"base": [{"description": "Description: cannot be blank"}]}))
        }
        Err(refusal) => return refusal,
    };
    let tags = match fields.get("tags") {
        None => Vec::new(),
        Some(Value::Array(tags)) if tags.iter().all(Value::is_string) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return invalid(json!({"tags": [{"description": "must be a list of strings"}]})),
    };
    let custom_fields = match fields.get("custom_fields") {
        None => Vec::new(),
        Some(Value::Array(list)) => {
            let parsed: Option<Vec<(u64, Value)>> = list
                .iter()
                .map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?.clone())))
                .collect();
            match parsed {
                Some(parsed) => parsed,
                None => {
                    return invalid(
                        json!({"custom_fields": [{"description": "each is {id, value}"}]}),
                    )
                }
            }
        }
        Some(_) => return invalid(json!({"custom_fields": [{"description": "must be a list"}]})),
    };
    if fields.get("subject").is_some_and(|v| !v.is_string())
        || fields.get("external_id").is_some_and(|v| !v.is_string())
    {
        return invalid(
            json!({"ticket": [{"description": "subject and external_id are strings"}]}),
        );
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let ticket = Ticket {
        id: state.id(),
        subject: text("subject").unwrap_or_default(),
        requester_id: requester_id.unwrap_or_default(),
        status: "new".into(),
        tags,
        external_id: text("external_id"),
        custom_fields,
        comments: vec![comment],
    };
    state.recorded.tickets.push(ticket.clone());
    json_answer(StatusCode::CREATED, json!({"ticket": ticket_json(&ticket)}))
}

fn update_ticket(state: &mut State, id: &str, body: Option<Value>) -> Answer {
    let Some(index) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.recorded.tickets.iter().position(|t| t.id == id))
    else {
        return not_found();
    };
    let Some(fields) = body
        .as_ref()
        .and_then(|b| b.get("ticket"))
        .and_then(Value::as_object)
    else {
        return invalid(json!({"ticket": [{"description": "is required"}]}));
    };
    if state.recorded.tickets[index].status == "closed" {
        return invalid(json!({"status": [{"description": "closed prevents ticket update"}]}));
    }
    let status = match fields.get("status") {
        None => None,
        Some(Value::String(status))
            if ["new", "open", "pending", "hold", "solved", "closed"]
                .contains(&status.as_str()) =>
        {
            Some(status.clone())
        }
        Some(_) => return invalid(json!({"status": [{"description": "is not a status"}]})),
    };
    let requester_id = match fields.get("requester_id") {
        None => None,
        Some(id) => match id.as_u64() {
            Some(id) if state.recorded.users.iter().any(|u| u.id == id) => Some(id),
            _ => {
                return invalid(json!({"requester": [{"description": "Requester: is not a user"}]}))
            }
        },
    };
    let comment = match comment_of(state, fields.get("comment")) {
        Ok(comment) => comment,
        Err(refusal) => return refusal,
    };
    let ticket = &mut state.recorded.tickets[index];
    if let Some(status) = status {
        ticket.status = status;
    }
    if let Some(requester_id) = requester_id {
        ticket.requester_id = requester_id;
    }
    if let Some(comment) = comment {
        ticket.comments.push(comment);
    }
    let ticket = ticket.clone();
    json_answer(
        StatusCode::OK,
        json!({"ticket": ticket_json(&ticket), "audit": {"ticket_id": ticket.id, "events": []}}),
    )
}

/// A comment of a ticket request; its upload tokens are taken (used once, as Zendesk does).
fn comment_of(state: &mut State, comment: Option<&Value>) -> Result<Option<Comment>, Answer> {
    let Some(comment) = comment else {
        return Ok(None);
    };
    let Some(fields) = comment.as_object() else {
        return Err(invalid(
            json!({"comment": [{"description": "must be an object"}]}),
        ));
    };
    let body = match fields.get("body") {
        Some(Value::String(body)) if !body.trim().is_empty() => body.clone(),
        _ => {
            return Err(invalid(
                json!({"comment": [{"description": "body cannot be blank"}]}),
            ))
        }
    };
    let public = match fields.get("public") {
        None => true,
        Some(Value::Bool(public)) => *public,
        Some(_) => {
            return Err(invalid(
                json!({"public": [{"description": "must be a boolean"}]}),
            ))
        }
    };
    let tokens: Vec<String> = match fields.get("uploads") {
        None => Vec::new(),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return Err(invalid(
                json!({"uploads": [{"description": "must be a list of tokens"}]}),
            ))
        }
    };
    let mut indexes = Vec::new();
    for token in &tokens {
        match state.uploads.get(token) {
            Some(&index) if !state.recorded.uploads[index].used && !indexes.contains(&index) => {
                indexes.push(index)
            }
            _ => {
                return Err(invalid(
                    json!({"uploads": [{"description": format!("{token} is not an unused upload token")}]}),
                ))
            }
        }
    }
    let mut attachments = Vec::new();
    for index in indexes {
        let upload = &mut state.recorded.uploads[index];
        upload.used = true;
        attachments.extend(upload.attachments.iter().cloned());
    }
    Ok(Some(Comment {
        id: state.id(),
        body,
        public,
        attachments,
    }))
}

fn find_ticket<'a>(state: &'a State, id: &str) -> Option<&'a Ticket> {
    let id = id.parse::<u64>().ok()?;
    state.recorded.tickets.iter().find(|t| t.id == id)
}

/// One page of a list: cursor pagination only (`page[size]` up to 100, `page[after]`).
fn page(state: &State, query: &HashMap<String, String>, name: &str, items: Vec<Value>) -> Answer {
    let Some(size) = query
        .get("page[size]")
        .and_then(|s| s.parse::<usize>().ok())
    else {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "InvalidPaginationParameter", "description": "this fake answers cursor pagination only: page[size]"}),
        );
    };
    if size == 0 || size > 100 {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "InvalidPaginationParameter", "description": "page[size] is 1 to 100"}),
        );
    }
    let start = match query.get("page[after]") {
        None => 0,
        Some(cursor) => match cursor
            .strip_prefix("after-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(start) if start <= items.len() => start,
            _ => {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "InvalidPaginationParameter", "description": "page[after] is not a cursor of this list"}),
                )
            }
        },
    };
    let end = (start + size.min(state.page_cap)).min(items.len());
    let has_more = end < items.len();
    json_answer(
        StatusCode::OK,
        json!({
            name: items[start..end],
            "meta": {"has_more": has_more, "after_cursor": format!("after-{end}"), "before_cursor": format!("before-{start}")},
            "links": {"next": has_more.then(|| format!("/api/v2/{name}?page[size]={size}&page[after]=after-{end}")), "prev": null},
        }),
    )
}

fn ticket_json(ticket: &Ticket) -> Value {
    json!({"id": ticket.id, "url": format!("/api/v2/tickets/{}.json", ticket.id), "subject": ticket.subject,
        "requester_id": ticket.requester_id, "status": ticket.status, "tags": ticket.tags,
        "external_id": ticket.external_id,
        "custom_fields": ticket.custom_fields.iter().map(|(id, value)| json!({"id": id, "value": value})).collect::<Vec<_>>(),
        "description": ticket.comments.first().map(|c| c.body.clone())})
}

fn comment_json(comment: &Comment) -> Value {
    json!({"id": comment.id, "type": "Comment", "body": comment.body, "plain_body": comment.body,
        "public": comment.public,
        "attachments": comment.attachments.iter().map(attachment_json).collect::<Vec<_>>()})
}

fn attachment_json(attachment: &Attachment) -> Value {
    json!({"id": attachment.id, "file_name": attachment.file_name, "content_type": attachment.content_type,
        "size": attachment.size, "content_url": format!("/attachments/{}", attachment.id), "thumbnails": []})
}

/// A JSON body, where the request has one: it must say it is JSON and be an object.
async fn read_json(headers: &HeaderMap, body: Body) -> Result<Option<Value>, Answer> {
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| {
        json_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "RequestEntityTooLarge"}),
        )
    })?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(json_answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "UnsupportedMediaType", "description": "send JSON with Content-Type: application/json"}),
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) if value.is_object() => Ok(Some(value)),
        _ => Err(json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "Unprocessable Entity", "description": "the body is not a JSON object"}),
        )),
    }
}

/// The query's pairs, %-escapes undone (as reqwest's URL reads them).
fn query_of(uri: &Uri) -> HashMap<String, String> {
    let Some(query) = uri.query() else {
        return HashMap::new();
    };
    reqwest::Url::parse(&format!("http://zendesk.invalid/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// A JSON answer: its status and body.
type Answer = (StatusCode, Value);

fn json_answer(status: StatusCode, body: Value) -> Answer {
    (status, body)
}

fn respond((status, body): Answer) -> (StatusCode, Response) {
    (status, (status, axum::Json(body)).into_response())
}

fn invalid(details: Value) -> Answer {
    json_answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": "RecordInvalid", "description": "Record validation errors", "details": details}),
    )
}

fn not_found() -> Answer {
    json_answer(
        StatusCode::NOT_FOUND,
        json!({"error": "RecordNotFound", "description": "Not found"}),
    )
}

fn html(status: StatusCode) -> Response {
    (
        status,
        [("content-type", "text/html")],
        format!("<html><body><h1>{status}</h1></body></html>"),
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
