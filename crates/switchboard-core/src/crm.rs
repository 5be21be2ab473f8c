//! What the CRM receives of calls (PLT-9, REC-1, REC-6): the text of a call's ticket, and how a
//! recording is cut into parts. Pure: the shell reads the rows and sends the bytes.

use crate::chat::ReservedProperties;
use crate::voice::{CallDirection, CallRecord};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The largest part a recording is sent in (REC-6: "50 MB").
pub const PART_MAX_BYTES: u64 = 50_000_000;
/// Parts are never made smaller than this when a CRM refuses one as too large: below it, the
/// CRM is refusing the file, not its size.
pub const PART_MIN_BYTES: u64 = 1_000_000;

/// One part of a recording to send: bytes `offset..offset + len` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// From 1, in the order parts are attached.
    pub number: u32,
    /// How many parts the recording has, as planned now.
    pub of: u32,
    pub offset: u64,
    pub len: u64,
}

/// How many parts a file of `size` bytes has when `bytes_done` of it went in `parts_done` parts
/// and the rest goes in parts of `part_bytes`. An empty file is still one (empty) part, so
/// that the CRM hears of it.
pub fn parts_total(size: u64, parts_done: u32, bytes_done: u64, part_bytes: u64) -> u32 {
    let left = size.saturating_sub(bytes_done);
    let part_bytes = part_bytes.max(1);
    let more = left.div_ceil(part_bytes);
    let more = if more == 0 && parts_done == 0 {
        1
    } else {
        more
    };
    parts_done.saturating_add(u32::try_from(more).unwrap_or(u32::MAX))
}

/// The next part to send, or `None` when every byte is acknowledged.
pub fn next_part(size: u64, parts_done: u32, bytes_done: u64, part_bytes: u64) -> Option<Part> {
    let of = parts_total(size, parts_done, bytes_done, part_bytes);
    if parts_done >= of {
        return None;
    }
    let len = size.saturating_sub(bytes_done).min(part_bytes.max(1));
    Some(Part {
        number: parts_done + 1,
        of,
        offset: bytes_done,
        len,
    })
}

/// The part size to try after a CRM refused a part of `part_bytes` as too large: half, or
/// `None` once that would be under `PART_MIN_BYTES`.
pub fn smaller_part(part_bytes: u64) -> Option<u64> {
    let half = part_bytes / 2;
    (half >= PART_MIN_BYTES).then_some(half)
}

/// What a call's ticket says, besides the call record itself.
pub struct CallTicketFacts<'a> {
    pub call: &'a CallRecord,
    /// The queue path (the contact's issue), when the call reached a queue.
    pub queue_path: Option<&'a str>,
    pub agent_name: Option<&'a str>,
    pub disposition: Option<&'a str>,
    pub note: Option<&'a str>,
    /// Recordings of the call, to be attached.
    pub recordings: usize,
}

/// The subject of a call's ticket: its queue path, as a chat's is.
pub fn call_ticket_subject(facts: &CallTicketFacts<'_>) -> String {
    match facts.queue_path {
        Some(path) if !path.is_empty() => path.to_owned(),
        _ => match facts.call.direction {
            CallDirection::Inbound => format!("Phone call to {}", facts.call.did),
            CallDirection::Outbound => format!("Phone call to {}", facts.call.caller),
        },
    }
}

/// The ticket's text: who called, the queue path, the agent, the times in the center's zone,
/// the wrap-up and the profile flags, a line each so that a CRM shows it as it is.
pub fn call_ticket_text(facts: &CallTicketFacts<'_>, zone: Tz) -> String {
    let call = facts.call;
    let at = |t: DateTime<Utc>| {
        t.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let mut lines = vec![match call.direction {
        CallDirection::Inbound => format!("Phone call from {} to {}", call.caller, call.did),
        CallDirection::Outbound => format!("Phone call to {}", call.caller),
    }];
    if let Some(path) = facts.queue_path.filter(|p| !p.is_empty()) {
        lines.push(format!("Queue: {path}"));
    }
    if let Some(agent) = facts.agent_name {
        lines.push(format!("Agent: {agent}"));
    }
    lines.push(format!("Started: {}", at(call.started_at)));
    if let Some(answered) = call.answered_at {
        lines.push(format!("Answered: {}", at(answered)));
    }
    if let Some(ended) = call.ended_at {
        lines.push(format!("Ended: {}", at(ended)));
        if let Some(answered) = call.answered_at {
            let talk = (ended - answered).num_seconds().max(0);
            lines.push(format!("Talk time: {}:{:02}", talk / 60, talk % 60));
        }
    }
    if !call.transfers.is_empty() {
        lines.push(format!("Transfers: {}", call.transfers.join(", ")));
    }
    let flags = profile_flags(&call.properties);
    if !flags.is_empty() {
        lines.push(format!("Profile: {}", flags.join(", ")));
    }
    if let Some(disposition) = facts.disposition {
        lines.push(format!("Disposition: {disposition}"));
    }
    if let Some(note) = facts.note.filter(|n| !n.is_empty()) {
        lines.push(format!("Note: {note}"));
    }
    if facts.recordings > 0 {
        lines.push(format!("Recordings: {}", facts.recordings));
    }
    lines.join("\n")
}

/// The profile flags that are set, as words.
pub fn profile_flags(properties: &ReservedProperties) -> Vec<&'static str> {
    let mut flags = Vec::new();
    let named = [
        (
            properties.verified_customer,
            "verified customer",
            "not verified",
        ),
        (
            properties.repeat_customer,
            "repeat customer",
            "first contact",
        ),
        (properties.bad_actor, "bad actor", ""),
    ];
    for (value, yes, no) in named {
        match value {
            Some(true) => flags.push(yes),
            Some(false) if !no.is_empty() => flags.push(no),
            _ => {}
        }
    }
    flags
}
