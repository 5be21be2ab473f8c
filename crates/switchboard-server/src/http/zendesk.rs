//! Zendesk's Support API on the wire: the JSON bodies the Zendesk connector (`crate::zendesk`)
//! sends and the parts of Zendesk's answers it reads. Requests wrap their object the way
//! Zendesk documents them (`{"user": …}`, `{"ticket": …}`); answers are read leniently, only
//! the fields used, so a field Zendesk adds later changes nothing. Kept here so that JSON for
//! the outside world stays in `http/`.

use serde::{Deserialize, Serialize};

/// `POST /api/v2/users/create_or_update`: Zendesk finds the user by email or external id and
/// updates them, or creates an end user.
#[derive(Serialize)]
pub struct UserRequest<'a> {
    pub user: UserFields<'a>,
}

#[derive(Serialize)]
pub struct UserFields<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    pub external_id: &'a str,
    /// A consumer who chatted should not be mailed a verification request by Zendesk.
    pub skip_verify_email: bool,
}

/// `POST /api/v2/tickets`.
#[derive(Serialize)]
pub struct NewTicketRequest<'a> {
    pub ticket: NewTicketFields<'a>,
}

#[derive(Serialize)]
pub struct NewTicketFields<'a> {
    pub subject: &'a str,
    /// The ticket's first comment, its description.
    pub comment: CommentFields<'a>,
    pub requester_id: u64,
    pub tags: &'a [String],
    /// Our ticket's id, so a retry finds the ticket a lost answer created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub custom_fields: Vec<CustomFieldValue<'a>>,
}

#[derive(Serialize)]
pub struct CustomFieldValue<'a> {
    pub id: u64,
    pub value: &'a str,
}

/// `PUT /api/v2/tickets/{id}`: a comment (the only way Zendesk adds one, with its uploads),
/// a status, a requester; what is left out is left as it is.
#[derive(Serialize)]
pub struct TicketUpdateRequest<'a> {
    pub ticket: TicketUpdateFields<'a>,
}

#[derive(Serialize)]
pub struct TicketUpdateFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentFields<'a>>,
}

#[derive(Serialize)]
pub struct CommentFields<'a> {
    pub body: &'a str,
    /// `false`: an internal note, which the requester is not mailed.
    pub public: bool,
    /// Upload tokens whose files the comment carries.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub uploads: &'a [String],
}

/// `{"user": {...}}`, the answer to create_or_update.
#[derive(Deserialize)]
pub struct UserAnswer {
    pub user: IdOnly,
}

/// `{"ticket": {...}}`, the answer to creating or updating a ticket.
#[derive(Deserialize)]
pub struct TicketAnswer {
    pub ticket: TicketFound,
}

#[derive(Deserialize)]
pub struct IdOnly {
    pub id: u64,
}

/// A ticket as a list or an answer shows it: what the connector reads of it.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct TicketFound {
    pub id: u64,
    #[serde(default)]
    pub requester_id: Option<u64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A comment as `GET /api/v2/tickets/{id}/comments` lists it.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct CommentFound {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub plain_body: Option<String>,
}

/// One page of a cursor-paginated list (`?page[size]=…&page[after]=…`): the items under the
/// list's name, and `meta` saying whether there are more after the cursor.
#[derive(Deserialize)]
pub struct TicketsPage {
    pub tickets: Vec<TicketFound>,
    pub meta: PageMeta,
}

#[derive(Deserialize)]
pub struct CommentsPage {
    pub comments: Vec<CommentFound>,
    pub meta: PageMeta,
}

#[derive(Deserialize)]
pub struct PageMeta {
    pub has_more: bool,
    #[serde(default)]
    pub after_cursor: Option<String>,
}

/// `{"upload": {"token": …}}`, the answer to `POST /api/v2/uploads`.
#[derive(Deserialize)]
pub struct UploadAnswer {
    pub upload: UploadToken,
}

#[derive(Deserialize)]
pub struct UploadToken {
    pub token: String,
}

/// What a refusal says, in the shapes Zendesk uses: `{"error": "RecordInvalid",
/// "description": "…"}`, `{"error": "Couldn't authenticate you"}`, or `{"error": {"title",
/// "message"}}`; anything else is shown as the text it is, shortened.
pub fn refusal_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        error: Option<serde_json::Value>,
        #[serde(default)]
        description: Option<String>,
    }
    let short = |text: &str| text.trim().chars().take(300).collect::<String>();
    match serde_json::from_str::<Refusal>(body) {
        Ok(refusal) => {
            let error = match refusal.error {
                Some(serde_json::Value::String(text)) => Some(text),
                Some(serde_json::Value::Object(fields)) => fields
                    .get("message")
                    .or_else(|| fields.get("title"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                _ => None,
            };
            match (error, refusal.description) {
                (Some(error), Some(description)) => short(&format!("{error}: {description}")),
                (Some(text), None) | (None, Some(text)) => short(&text),
                (None, None) => short(body),
            }
        }
        Err(_) => short(body),
    }
}

/// Serialises a request body; the types above always serialise.
pub fn to_body<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Reads an answer's body as `T`, or says why it cannot be.
pub fn from_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}
