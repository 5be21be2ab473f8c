//! The webhook CRM's wire: the JSON body of each CRM event, its signature
//! (`X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the body>`) and its delivery. The CRM
//! connector (`crate::crm`) decides what to send and when; this module says how it looks on
//! the wire, so JSON for the outside world stays in `http/`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchboard_core::{AttachmentId, VisitorId};
use switchboard_store::{Attachment, Identity, Ticket};

/// One line of a chat's transcript as the CRM receives it.
pub struct TranscriptMessage {
    pub seq: i64,
    /// Who wrote it, as a name.
    pub from: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
    pub attachment: Option<AttachmentId>,
}

/// A closed chat's transcript: the text (in the center's time zone), its messages and files.
pub struct Transcript {
    pub text: String,
    pub messages: Vec<TranscriptMessage>,
    pub attachments: Vec<Attachment>,
}

/// What the CRM hears about.
pub enum CrmEvent<'a> {
    TicketCreated {
        ticket: &'a Ticket,
    },
    TicketClosed {
        ticket: &'a Ticket,
        transcript: &'a Transcript,
    },
    IdentityMerged {
        identity: &'a Identity,
        visitor: VisitorId,
        tickets: &'a [Ticket],
    },
}

/// The event's JSON body.
pub fn body(event: &CrmEvent<'_>) -> Value {
    match event {
        CrmEvent::TicketCreated { ticket } => {
            json!({ "event": "ticket.created", "ticket": ticket_json(ticket) })
        }
        CrmEvent::TicketClosed { ticket, transcript } => {
            let messages: Vec<Value> = transcript
                .messages
                .iter()
                .map(|m| json!({ "seq": m.seq, "from": m.from, "text": m.text, "sent_at": m.sent_at, "attachment_id": m.attachment.map(|a| a.to_string()) }))
                .collect();
            let attachments: Vec<Value> = transcript
                .attachments
                .iter()
                .map(|a| json!({ "id": a.id.to_string(), "name": a.name, "mime": a.kind.mime(), "size": a.size, "url": format!("/apps/api/v1/attachments/{}", a.id) }))
                .collect();
            json!({ "event": "ticket.closed", "ticket": ticket_json(ticket), "transcript": transcript.text, "messages": messages, "attachments": attachments })
        }
        CrmEvent::IdentityMerged {
            identity,
            visitor,
            tickets,
        } => {
            let tickets: Vec<Value> = tickets.iter().map(ticket_json).collect();
            json!({ "event": "identity.merged", "identity": { "external_id": identity.external_id, "email": identity.email, "name": identity.name }, "visitor_id": visitor.to_string(), "tickets": tickets })
        }
    }
}

fn ticket_json(ticket: &Ticket) -> Value {
    json!({
        "id": ticket.id.to_string(),
        "name": ticket.name,
        "status": ticket.status,
        "contact_id": ticket.contact.map(|c| c.to_string()),
        "visitor_id": ticket.visitor.map(|v| v.to_string()),
        "identity_id": ticket.identity.map(|i| i.to_string()),
        "external_id": ticket.external_id,
        "created_at": ticket.created_at,
        "channel": ticket_channel(ticket),
        "call_id": ticket.call.map(|c| c.to_string()),
        "phone": ticket.phone,
        // A message left for the help center is its own text (AHD-4).
        "text": match ticket_channel(ticket) {
            "email" => ticket.transcript.as_deref(),
            _ => None,
        },
    })
}

/// What a ticket is of: a call, a chat, or a message left for the help center (no contact).
fn ticket_channel(ticket: &Ticket) -> &'static str {
    match (ticket.call, ticket.contact) {
        (Some(_), _) => "phone",
        (None, Some(_)) => "chat",
        (None, None) => "email",
    }
}

/// The signature a webhook receiver checks: hex HMAC-SHA256 of the exact body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut signer = Signer::new(secret);
    signer.update(body);
    signer.finish()
}

/// The signature of a body read in pieces (a recording's part, streamed).
pub struct Signer(Hmac<Sha256>);

impl Signer {
    pub fn new(secret: &str) -> Self {
        Signer(Hmac::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length"))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The signature as lower-case hex.
    pub fn finish(self) -> String {
        self.0
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// POSTs the event; any answer but 2xx is a failure to retry. Returns the `external_id` the
/// CRM answered with, if any.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    delivery: &str,
    body: &Value,
) -> Result<Option<String>, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-switchboard-event",
            body["event"].as_str().unwrap_or_default(),
        )
        .header("x-switchboard-delivery", delivery)
        .header(
            "x-switchboard-signature",
            format!("sha256={}", signature(secret, &bytes)),
        )
        .body(bytes)
        .send()
        .await
        .map_err(|e| format!("webhook unreachable: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("webhook answered {status}"));
    }
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok(answer
        .get("external_id")
        .and_then(Value::as_str)
        .map(str::to_owned))
}
