//! The Zendesk connector (PLT-9): chat tickets, their transcripts and files, and their
//! requesters in a Zendesk Support account, through Zendesk's documented REST API (the JSON
//! is in `http::zendesk`).
//!
//! `Zendesk` is the client: one account (its address, an agent's email and API token, sent as
//! basic auth `{email}/token:{token}`), a timeout per request, and the operations the
//! connectors need. Every failure is a `ZendeskError` that says what the caller can do: wait
//! as long as Zendesk asks (429 with `Retry-After`), send less (413), try again later (5xx,
//! 408, 409, timeouts, connection errors, an answer that is not what Zendesk documents), or
//! stop (any other answer: asking again would be refused the same way).
//!
//! `ZendeskCrm` is what the CRM job handler (`crate::crm`) hands chat tickets to when the
//! connector is `zendesk`. A job may run more than once (an acknowledgement lost on the way
//! back is retried), so every step first looks for what an earlier run did: our ticket's id is
//! the Zendesk ticket's `external_id`, and the transcript's comment starts with a line naming
//! our ticket. Lists are read with cursor pagination, all pages.

use crate::blobs::{BlobError, BlobReader, BlobStore};
use crate::crm::Event;
use crate::http::webhook::Transcript;
use crate::http::zendesk as wire;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use std::sync::Arc;
use std::time::Duration;
use switchboard_core::{CallId, Channel, Email, IdentityId};
use switchboard_services::jobs::JobOutcome;
use switchboard_store::{Identity, IntegrationSettings, Store, Ticket};
use tokio::io::AsyncReadExt;

/// How long one request may take, answer included. An upload is given a second more per MiB
/// of its file (`UPLOAD_BYTES_PER_SECOND`), so a large file on a slow link is not cut off.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an upload of a recording's part may take (within the upload lane's lease).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// The slowest upload the timeout allows for.
const UPLOAD_BYTES_PER_SECOND: u64 = 1024 * 1024;
/// Items per page of a cursor-paginated list: Zendesk's largest.
const PAGE_SIZE: &str = "100";
/// A list longer than this many pages is taken as a server that never stops paging.
const MAX_PAGES: usize = 1000;
/// The wait when a 429 says no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest wait a `Retry-After` is taken at.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How much of a file is read at a time while it streams out.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why a Zendesk request did not go through, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZendeskError {
    /// 429: Zendesk's rate limit; send nothing more before `retry_after` (its `Retry-After`).
    #[error("Zendesk's rate limit was reached; it asks to wait {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// 413: the body (a file) is larger than Zendesk takes in one request.
    #[error("Zendesk refused the file as too large (413)")]
    TooLarge,
    /// No acknowledgement: a 5xx, 408 or 409, a timeout, a connection that failed, or an
    /// answer that is not what Zendesk documents. The same request may go through later.
    #[error("Zendesk did not acknowledge: {0}")]
    Transient(String),
    /// Any other answer (a 4xx such as 401 for a wrong token, 404, 422; or a redirect, which
    /// means a wrong address): asking again would be refused the same way.
    #[error("Zendesk refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

impl ZendeskError {
    /// The error an answer that is not a success stands for.
    fn from_answer(status: StatusCode, headers: &HeaderMap, body: &str) -> Self {
        let message = wire::refusal_message(body);
        match status.as_u16() {
            429 => ZendeskError::RateLimited {
                retry_after: retry_after(headers),
            },
            413 => ZendeskError::TooLarge,
            408 | 409 | 500..=599 => {
                ZendeskError::Transient(format!("Zendesk answered {status}: {message}"))
            }
            300..=399 => ZendeskError::Refused {
                status: status.as_u16(),
                message: format!(
                    "redirected to {} (is zendesk_url the account's address?)",
                    headers
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("nowhere")
                ),
            },
            code => ZendeskError::Refused {
                status: code,
                message,
            },
        }
    }
}

/// `Retry-After` in seconds, as Zendesk sends it; the default when it is missing or unreadable.
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// A request that got no answer, with every cause (reqwest's own text stops at the first).
fn unanswered(error: &reqwest::Error) -> ZendeskError {
    let mut text = if error.is_timeout() {
        "no answer in time".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    ZendeskError::Transient(text)
}

/// A Zendesk account to connect to, checked: its address (https; http only on this machine,
/// for tests), the email of the agent whose API token it uses, and the token.
#[derive(Clone, Debug)]
pub struct ZendeskAccount {
    base: Url,
    email: Email,
    token: String,
}

/// Which part of an account's settings is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("zendesk_url is the account's https address, such as https://example.zendesk.com (http only for 127.0.0.1 or localhost)")]
    Url,
    #[error("zendesk_email is the email of the Zendesk agent whose API token is used")]
    Email,
    #[error("zendesk_token is a Zendesk API token: 1 to 200 visible characters, no spaces")]
    Token,
}

impl ZendeskAccount {
    pub fn parse(url: &str, email: &str, token: &str) -> Result<Self, AccountError> {
        Ok(ZendeskAccount {
            base: parse_base_url(url)?,
            email: Email::parse(email).map_err(|_| AccountError::Email)?,
            token: parse_token(token)?,
        })
    }

    /// The account in the integration settings; a missing field is as wrong as a bad one.
    pub fn from_settings(settings: &IntegrationSettings) -> Result<Self, AccountError> {
        Self::parse(
            settings.zendesk_url.as_deref().ok_or(AccountError::Url)?,
            settings
                .zendesk_email
                .as_deref()
                .ok_or(AccountError::Email)?,
            settings
                .zendesk_token
                .as_deref()
                .ok_or(AccountError::Token)?,
        )
    }

    /// The address as stored: no trailing slash.
    pub fn url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    pub fn email(&self) -> &str {
        self.email.as_str()
    }
}

/// Checks a `zendesk_url` on its own (the settings form checks it before any token is given)
/// and gives it as stored, without a trailing slash.
pub fn normalize_url(url: &str) -> Result<String, AccountError> {
    Ok(parse_base_url(url)?
        .as_str()
        .trim_end_matches('/')
        .to_owned())
}

/// An account's address: https, or http to this machine; no path, query, fragment or
/// credentials, since the API's paths are appended to it and the token travels in a header.
fn parse_base_url(text: &str) -> Result<Url, AccountError> {
    let url = Url::parse(text.trim()).map_err(|_| AccountError::Url)?;
    let host = url.host_str().ok_or(AccountError::Url)?;
    let local = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && local);
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if scheme_ok && bare {
        Ok(url)
    } else {
        Err(AccountError::Url)
    }
}

/// Checks a `zendesk_token` on its own and gives it as stored.
pub fn parse_token(text: &str) -> Result<String, AccountError> {
    let token = text.trim();
    if token.is_empty() || token.len() > 200 || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AccountError::Token);
    }
    Ok(token.to_owned())
}

/// Who a ticket is from, as a Zendesk end user: found by `external_id` (or email) and
/// updated, or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Our id for the person: an identified consumer's id on the embedding site (the
    /// identity token's `sub`), else the visitor's id.
    pub external_id: String,
}

impl Requester {
    /// An identified consumer, named as the site named them.
    pub fn of_identity(identity: &Identity) -> Self {
        Requester {
            name: identity
                .name
                .clone()
                .or_else(|| identity.email.clone())
                .unwrap_or_else(|| identity.external_id.clone()),
            email: identity.email.clone(),
            phone: identity.phone.as_ref().map(|digits| format!("+{digits}")),
            external_id: identity.external_id.clone(),
        }
    }
}

/// A ticket to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTicket {
    /// The queue path ("Billing > Refunds").
    pub subject: String,
    /// The first comment, an internal note.
    pub description: String,
    /// The requester's Zendesk user id (`Zendesk::create_or_update_user`).
    pub requester_id: u64,
    pub tags: Vec<String>,
    /// Our ticket's id, by which a later run finds this ticket again.
    pub external_id: Option<String>,
    /// Values of the account's custom ticket fields, by field id.
    pub custom_fields: Vec<(u64, String)>,
}

/// A ticket's status, of those the connector sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Solved,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Solved => "solved",
        }
    }
}

/// A change to a ticket; what is `None` stays as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketUpdate {
    pub status: Option<Status>,
    pub requester_id: Option<u64>,
    /// An internal note with the files of these upload tokens.
    pub comment: Option<(String, Vec<String>)>,
}

pub use wire::{CommentFound, TicketFound};

/// A page of a cursor-paginated list.
trait Page: for<'de> serde::Deserialize<'de> {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, wire::PageMeta);
}

impl Page for wire::TicketsPage {
    type Item = TicketFound;
    fn into_parts(self) -> (Vec<TicketFound>, wire::PageMeta) {
        (self.tickets, self.meta)
    }
}

impl Page for wire::CommentsPage {
    type Item = CommentFound;
    fn into_parts(self) -> (Vec<CommentFound>, wire::PageMeta) {
        (self.comments, self.meta)
    }
}

/// A client of one Zendesk account. Cloning is cheap (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Zendesk {
    http: reqwest::Client,
    account: ZendeskAccount,
    /// Per request; see `REQUEST_TIMEOUT`.
    timeout: Duration,
}

impl Zendesk {
    /// A client on `http`, which should not follow redirects (`ZendeskCrm::new` makes one):
    /// a redirect means a wrong address, and the request is not sent on with the token.
    pub fn new(http: reqwest::Client, account: ZendeskAccount) -> Self {
        Zendesk {
            http,
            account,
            timeout: REQUEST_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn account(&self) -> &ZendeskAccount {
        &self.account
    }

    /// The API address of `segments` (each %-escaped as a path segment).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.account.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v2"]).extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(
                format!("{}/token", self.account.email.as_str()),
                Some(&self.account.token),
            )
            .header(ACCEPT, "application/json")
            .timeout(self.timeout)
    }

    /// Sends a request (with a JSON body, if any) and reads its JSON answer.
    async fn call<T: for<'de> serde::Deserialize<'de>>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, ZendeskError> {
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        read_answer(request.send().await).await
    }

    /// Every item of a cursor-paginated list (`page[size]`, then `page[after]` with the
    /// cursor of the page before, until `meta.has_more` is false). The next page's address is
    /// made here from the cursor rather than taken from the answer's links, so the token is
    /// only ever sent to the account's own address.
    async fn all_pages<P: Page>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Vec<P::Item>, ZendeskError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = self.url(segments);
            {
                let mut pairs = url.query_pairs_mut();
                pairs
                    .extend_pairs(query)
                    .append_pair("page[size]", PAGE_SIZE);
                if let Some(cursor) = &after {
                    pairs.append_pair("page[after]", cursor);
                }
            }
            let (page, meta) = self.call::<P>(Method::GET, url, None).await?.into_parts();
            items.extend(page);
            match meta.after_cursor {
                _ if !meta.has_more => return Ok(items),
                Some(cursor) if after.as_deref() != Some(cursor.as_str()) => after = Some(cursor),
                _ => {
                    return Err(ZendeskError::Transient(
                        "Zendesk said more items follow but gave no new cursor".into(),
                    ))
                }
            }
        }
        Err(ZendeskError::Transient(format!(
            "Zendesk's list did not end within {MAX_PAGES} pages"
        )))
    }

    /// Creates the requester as an end user, or updates the user Zendesk finds by their
    /// external id or email; returns their user id.
    pub async fn create_or_update_user(&self, requester: &Requester) -> Result<u64, ZendeskError> {
        let name = requester.name.trim();
        let body = wire::to_body(&wire::UserRequest {
            user: wire::UserFields {
                name: if name.is_empty() { "Visitor" } else { name },
                email: requester.email.as_deref(),
                phone: requester.phone.as_deref(),
                external_id: &requester.external_id,
                skip_verify_email: true,
            },
        });
        let answer: wire::UserAnswer = self
            .call(
                Method::POST,
                self.url(&["users", "create_or_update"]),
                Some(body),
            )
            .await?;
        Ok(answer.user.id)
    }

    /// Creates a ticket; returns its id.
    pub async fn create_ticket(&self, ticket: &NewTicket) -> Result<u64, ZendeskError> {
        let body = wire::to_body(&wire::NewTicketRequest {
            ticket: wire::NewTicketFields {
                subject: &ticket.subject,
                comment: wire::CommentFields {
                    body: &ticket.description,
                    public: false,
                    uploads: &[],
                },
                requester_id: ticket.requester_id,
                tags: &ticket.tags,
                external_id: ticket.external_id.as_deref(),
                custom_fields: ticket
                    .custom_fields
                    .iter()
                    .map(|(id, value)| wire::CustomFieldValue { id: *id, value })
                    .collect(),
            },
        });
        let answer: wire::TicketAnswer = self
            .call(Method::POST, self.url(&["tickets"]), Some(body))
            .await?;
        Ok(answer.ticket.id)
    }

    /// Changes a ticket (by its Zendesk id): a status, a requester, a comment with files.
    pub async fn update_ticket(
        &self,
        ticket: &str,
        update: &TicketUpdate,
    ) -> Result<(), ZendeskError> {
        let body = wire::to_body(&wire::TicketUpdateRequest {
            ticket: wire::TicketUpdateFields {
                status: update.status.map(Status::as_str),
                requester_id: update.requester_id,
                comment: update
                    .comment
                    .as_ref()
                    .map(|(body, uploads)| wire::CommentFields {
                        body,
                        public: false,
                        uploads,
                    }),
            },
        });
        let _: wire::TicketAnswer = self
            .call(Method::PUT, self.url(&["tickets", ticket]), Some(body))
            .await?;
        Ok(())
    }

    /// Adds an internal note to a ticket, carrying the files of `uploads` (tokens from
    /// `upload`). Zendesk adds comments only through a ticket update.
    pub async fn add_comment(
        &self,
        ticket: &str,
        body: &str,
        uploads: &[String],
    ) -> Result<(), ZendeskError> {
        self.update_ticket(
            ticket,
            &TicketUpdate {
                comment: Some((body.to_owned(), uploads.to_vec())),
                ..TicketUpdate::default()
            },
        )
        .await
    }

    /// Uploads a file of `length` bytes, streamed from `reader` (never held whole), for a
    /// comment to carry; returns the upload's token. With `token`, the file joins that upload
    /// (Zendesk keeps an unused upload for an hour). A reader that ends before `length` fails
    /// the request rather than sending a short file.
    pub async fn upload(
        &self,
        filename: &str,
        content_type: &str,
        length: u64,
        reader: BlobReader,
        token: Option<&str>,
    ) -> Result<String, ZendeskError> {
        let mut url = self.url(&["uploads"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("filename", filename);
            if let Some(token) = token {
                pairs.append_pair("token", token);
            }
        }
        let content_type = HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let timeout = self.timeout + Duration::from_secs(length / UPLOAD_BYTES_PER_SECOND);
        let sent = self
            .request(Method::POST, url)
            .timeout(timeout)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, length)
            .body(streamed(reader, length))
            .send()
            .await;
        let answer: wire::UploadAnswer = read_answer(sent).await?;
        Ok(answer.upload.token)
    }

    /// The tickets whose `external_id` is `external_id` (every page).
    pub async fn tickets_with_external_id(
        &self,
        external_id: &str,
    ) -> Result<Vec<TicketFound>, ZendeskError> {
        self.all_pages::<wire::TicketsPage>(&["tickets"], &[("external_id", external_id)])
            .await
    }

    /// A ticket's comments, oldest first (every page).
    pub async fn comments(&self, ticket: &str) -> Result<Vec<CommentFound>, ZendeskError> {
        self.all_pages::<wire::CommentsPage>(&["tickets", ticket, "comments"], &[])
            .await
    }

    /// Attaches files to a ticket (by its Zendesk id, our ticket's `external_id`) as one
    /// internal note: each file `(filename, content type, length, reader)` is uploaded, then
    /// the note references every token. A ticket that already has a note with this very text
    /// has it from an earlier run whose answer was lost, and nothing is sent again; so a
    /// caller gives each note a text of its own (a recording's part number, say).
    pub async fn attach(
        &self,
        ticket_external_id: &str,
        comment_text: &str,
        files: Vec<(String, String, u64, BlobReader)>,
    ) -> Result<(), ZendeskError> {
        let text = comment_text.trim();
        if self
            .has_comment(ticket_external_id, |body| body.trim() == text)
            .await?
        {
            return Ok(());
        }
        let mut tokens = Vec::with_capacity(files.len());
        for (filename, content_type, length, reader) in files {
            tokens.push(
                self.upload(&filename, &content_type, length, reader, None)
                    .await?,
            );
        }
        self.add_comment(ticket_external_id, comment_text, &tokens)
            .await
    }

    /// Whether a comment of the ticket (its body or plain text) matches.
    pub async fn has_comment(
        &self,
        ticket: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<bool, ZendeskError> {
        Ok(self.comments(ticket).await?.iter().any(|comment| {
            matches(&comment.body) || comment.plain_body.as_deref().is_some_and(&matches)
        }))
    }
}

/// Reads the answer to a request: its JSON on a success, else the error it stands for.
async fn read_answer<T: for<'de> serde::Deserialize<'de>>(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, ZendeskError> {
    let response = sent.map_err(|e| unanswered(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| unanswered(&e))?;
    if status.is_success() {
        return wire::from_body(&body).map_err(|e| {
            ZendeskError::Transient(format!(
                "the answer ({status}) is not what Zendesk documents: {e}"
            ))
        });
    }
    Err(ZendeskError::from_answer(
        status,
        &headers,
        &String::from_utf8_lossy(&body),
    ))
}

/// A request body that streams `length` bytes of `reader` in chunks.
fn streamed(reader: BlobReader, length: u64) -> reqwest::Body {
    let chunks = futures_util::stream::try_unfold(
        (reader.take(length), 0u64),
        move |(mut reader, sent)| async move {
            let mut chunk = vec![0; CHUNK_BYTES];
            let read = reader.read(&mut chunk).await?;
            if read == 0 {
                if sent < length {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the file ended after {sent} of its {length} bytes"),
                    ));
                }
                return Ok(None);
            }
            chunk.truncate(read);
            Ok(Some((chunk, (reader, sent + read as u64))))
        },
    );
    reqwest::Body::wrap_stream(chunks)
}

/// Why the Zendesk connector did not deliver a CRM event.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    /// The settings name no usable account (the API checks them, so a token sealed under a
    /// key that is gone, say).
    #[error("the Zendesk connector is not set up: {0}")]
    NotConfigured(AccountError),
    /// Our side: the store or the file store failed.
    #[error("{0}")]
    Local(String),
}

impl DeliveryError {
    /// What the job worker does about it. A refusal or missing settings give up (the job
    /// shows as failed, with the reason); everything else is tried again by the policy.
    pub fn into_outcome(self) -> JobOutcome {
        let error = self.to_string();
        match self {
            DeliveryError::Zendesk(ZendeskError::Refused { .. })
            | DeliveryError::NotConfigured(_) => JobOutcome::GiveUp { error },
            // Never sooner than Zendesk asked (nor sooner than the policy says).
            DeliveryError::Zendesk(ZendeskError::RateLimited { retry_after }) => {
                JobOutcome::RetryAfter {
                    error,
                    wait: chrono::Duration::from_std(retry_after)
                        .unwrap_or(chrono::Duration::seconds(60)),
                }
            }
            DeliveryError::Zendesk(ZendeskError::TooLarge | ZendeskError::Transient(_))
            | DeliveryError::Local(_) => JobOutcome::Retry { error },
        }
    }
}

fn local(error: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Local(error.to_string())
}

/// The first line of a closed chat's transcript note, by which a later run knows it is there.
pub fn transcript_heading(ticket: &Ticket) -> String {
    match ticket.call {
        Some(_) => format!("Call summary (Switchboard ticket {})", ticket.id),
        None => format!("Chat transcript (Switchboard ticket {})", ticket.id),
    }
}

/// Chat tickets in Zendesk: a ticket when a chat starts (its requester created or updated
/// first), the transcript with the chat's files as an internal note when it ends (the ticket
/// solved in the same update), and the requester changed when a visitor turns out to be an
/// identified consumer.
pub struct ZendeskCrm {
    store: Arc<dyn Store>,
    /// Where chats' files are, to be uploaded with the transcript.
    attachments: Arc<dyn BlobStore>,
    /// Follows no redirects (see `Zendesk::new`).
    http: reqwest::Client,
}

impl ZendeskCrm {
    pub fn new(
        store: Arc<dyn Store>,
        attachments: Arc<dyn BlobStore>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ZendeskCrm {
            store,
            attachments,
            http,
        })
    }

    /// A client of the account the settings name.
    pub fn client(&self, settings: &IntegrationSettings) -> Result<Zendesk, DeliveryError> {
        let account =
            ZendeskAccount::from_settings(settings).map_err(DeliveryError::NotConfigured)?;
        Ok(Zendesk::new(self.http.clone(), account))
    }

    /// Delivers one CRM event; `transcript` is the chat's for `TicketClosed`.
    pub async fn deliver(
        &self,
        settings: &IntegrationSettings,
        event: &Event,
        transcript: Option<&Transcript>,
    ) -> Result<(), DeliveryError> {
        let zendesk = self.client(settings)?;
        match event {
            Event::TicketCreated { ticket } => {
                let ticket = self.store.get_ticket(*ticket).await.map_err(local)?;
                self.ensure_ticket(&zendesk, &ticket).await?;
            }
            Event::TicketClosed { ticket } => {
                let ticket = self.store.get_ticket(*ticket).await.map_err(local)?;
                let transcript =
                    transcript.ok_or_else(|| local("a closed chat came without its transcript"))?;
                let id = self.ensure_ticket(&zendesk, &ticket).await?;
                self.add_transcript(&zendesk, &ticket, &id, transcript)
                    .await?;
            }
            Event::IdentityMerged { identity, .. } => {
                self.change_requester(&zendesk, *identity).await?;
            }
            Event::CallEnded { call } => {
                let ticket = self.call_ticket(*call).await?;
                self.ensure_ticket(&zendesk, &ticket).await?;
            }
            Event::CallWrapped { call } => {
                let ticket = self.call_ticket(*call).await?;
                let summary =
                    transcript.ok_or_else(|| local("a wrapped call came without its summary"))?;
                let id = self.ensure_ticket(&zendesk, &ticket).await?;
                self.add_transcript(&zendesk, &ticket, &id, summary).await?;
            }
        }
        Ok(())
    }

    /// A call's ticket, which the CRM job made before handing the event over.
    async fn call_ticket(&self, call: CallId) -> Result<Ticket, DeliveryError> {
        self.store
            .ticket_of_call(call)
            .await
            .map_err(local)?
            .ok_or_else(|| local("the call has no ticket yet"))
    }

    /// Attaches a file to a ticket already in Zendesk as an internal note naming it (a
    /// recording's part): uploaded first, then referenced by its token.
    pub async fn attach_file(
        &self,
        settings: &IntegrationSettings,
        ticket: &Ticket,
        note: &str,
        file: (String, String, u64, crate::blobs::BlobReader),
    ) -> Result<String, DeliveryError> {
        // A part of 50 MB takes a while on a slow link: the per-request limit is for the
        // small requests.
        let zendesk = self.client(settings)?.with_timeout(UPLOAD_TIMEOUT);
        let id = self.ensure_ticket(&zendesk, ticket).await?;
        zendesk.attach(&id, note, vec![file]).await?;
        Ok(id)
    }

    /// The Zendesk ticket of ours, found by its external id or created; its id is stored as
    /// our ticket's `external_id`.
    async fn ensure_ticket(
        &self,
        zendesk: &Zendesk,
        ticket: &Ticket,
    ) -> Result<String, DeliveryError> {
        let ours = ticket.id.to_string();
        let found = zendesk.tickets_with_external_id(&ours).await?;
        let id = match found.iter().map(|t| t.id).min() {
            Some(id) => id,
            None => {
                let requester = self.requester_of(ticket).await?;
                let requester_id = zendesk.create_or_update_user(&requester).await?;
                let (subject, channel) = match ticket.contact {
                    Some(contact) => {
                        let contact = self.store.get_contact(contact).await.map_err(local)?;
                        (contact.issue, Some(contact.channel))
                    }
                    None => (ticket.name.clone(), None),
                };
                let (kind, tag) = match channel {
                    Some(Channel::Voice) => ("call".to_owned(), "call"),
                    Some(channel) => (format!("{channel} chat"), "chat"),
                    None => ("chat".to_owned(), "chat"),
                };
                let description = match (&ticket.call, &ticket.contact, &ticket.transcript) {
                    // A message left for the help center (AHD-4) is its own description.
                    (None, None, Some(text)) => format!("{text}\n(Switchboard ticket {ours}.)"),
                    _ => format!(
                        "A {kind} with {} in {subject}, started {} (Switchboard ticket {ours}).",
                        ticket.name,
                        ticket.created_at.format("%Y-%m-%d %H:%M UTC"),
                    ),
                };
                zendesk
                    .create_ticket(&NewTicket {
                        description,
                        subject,
                        requester_id,
                        tags: vec!["switchboard".into(), tag.into()],
                        external_id: Some(ours),
                        custom_fields: Vec::new(),
                    })
                    .await?
            }
        };
        let id = id.to_string();
        if ticket.external_id.as_deref() != Some(id.as_str()) {
            let mut stored = self.store.get_ticket(ticket.id).await.map_err(local)?;
            stored.external_id = Some(id.clone());
            self.store.update_ticket(&stored).await.map_err(local)?;
        }
        Ok(id)
    }

    /// The consumer a ticket is from: the identity if the visitor was identified, else the
    /// anonymous visitor under the ticket's name.
    async fn requester_of(&self, ticket: &Ticket) -> Result<Requester, DeliveryError> {
        if let Some(identity) = ticket.identity {
            let identity = self.store.identity(identity).await.map_err(local)?;
            return Ok(Requester::of_identity(&identity));
        }
        // A caller is one person by their number, so their calls gather under one user.
        if let Some(phone) = &ticket.phone {
            let international = if phone.chars().all(|c| c.is_ascii_digit()) {
                format!("+{phone}")
            } else {
                phone.clone()
            };
            return Ok(Requester {
                name: ticket.name.clone(),
                email: None,
                phone: Some(international),
                external_id: format!("phone:{phone}"),
            });
        }
        Ok(Requester {
            name: ticket.name.clone(),
            email: None,
            phone: None,
            external_id: ticket
                .visitor
                .map(|v| v.to_string())
                .unwrap_or_else(|| ticket.id.to_string()),
        })
    }

    /// The transcript as an internal note with the chat's files, and the ticket solved, in
    /// one update; nothing if an earlier run added it. A file Zendesk refuses as too large,
    /// or that is no longer stored, is named in the note instead (it stays reachable in
    /// Switchboard through the link in the transcript).
    async fn add_transcript(
        &self,
        zendesk: &Zendesk,
        ticket: &Ticket,
        id: &str,
        transcript: &Transcript,
    ) -> Result<(), DeliveryError> {
        let heading = transcript_heading(ticket);
        if zendesk
            .has_comment(id, |body| body.contains(&heading))
            .await?
        {
            return Ok(());
        }
        let mut tokens = Vec::new();
        let mut left_out = Vec::new();
        for file in &transcript.attachments {
            match self.attachments.open_reader(&file.id.to_string()).await {
                Ok((length, reader)) => match zendesk
                    .upload(&file.name, file.kind.mime(), length, reader, None)
                    .await
                {
                    Ok(token) => tokens.push(token),
                    Err(ZendeskError::TooLarge) => left_out.push(format!(
                        "{} ({length} bytes) is larger than Zendesk takes and stays in Switchboard.",
                        file.name
                    )),
                    Err(error) => return Err(error.into()),
                },
                Err(BlobError::NotFound) => {
                    left_out.push(format!("{} is no longer stored.", file.name))
                }
                Err(error) => return Err(local(format!("reading {}: {error}", file.name))),
            }
        }
        let mut body = format!("{heading}\n\n{}", transcript.text);
        if !left_out.is_empty() {
            body.push_str("\n\nNot attached: ");
            body.push_str(&left_out.join(" "));
        }
        zendesk
            .update_ticket(
                id,
                &TicketUpdate {
                    status: Some(Status::Solved),
                    requester_id: None,
                    comment: Some((body, tokens)),
                },
            )
            .await?;
        Ok(())
    }

    /// A visitor was identified: the identity becomes the requester of the visitor's tickets
    /// that are in Zendesk.
    async fn change_requester(
        &self,
        zendesk: &Zendesk,
        identity: IdentityId,
    ) -> Result<(), DeliveryError> {
        let identity = self.store.identity(identity).await.map_err(local)?;
        let user = zendesk
            .create_or_update_user(&Requester::of_identity(&identity))
            .await?;
        // The visitor's chats, and the calls from the identity's number.
        let tickets = self
            .store
            .tickets_of_identity(identity.id)
            .await
            .map_err(local)?;
        for ticket in tickets {
            for found in zendesk
                .tickets_with_external_id(&ticket.id.to_string())
                .await?
            {
                if found.requester_id != Some(user) {
                    zendesk
                        .update_ticket(
                            &found.id.to_string(),
                            &TicketUpdate {
                                requester_id: Some(user),
                                ..TicketUpdate::default()
                            },
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}
