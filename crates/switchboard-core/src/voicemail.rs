//! What a web or mobile queue offers by phone (AHD-3, the mobile SDK's options): the number to
//! call instead of chatting, and whether a caller there can leave a voicemail now (AHD-7).
//!
//! A chat queue is matched to the voice queue of the same path ("Sales" to "Sales", "Billing >
//! Refunds" to "Billing > Refunds"). The number is the dialled number whose entry point is
//! nearest that voice queue (the queue itself, then each menu above it), else one that starts
//! at the top of the IVR. Voicemail is available when that voice queue is closed now and its
//! rule takes voicemail. A chat queue with no voice queue of its path gets the IVR's number,
//! without voicemail.

use crate::after_hours::{AfterHours, Decision};
use crate::ids::QueueId;
use crate::queue::{Channel, QueueKind, QueueTree};
use crate::voice::{Did, PhoneNumber};
use chrono::{DateTime, Utc};

/// A chat queue's phone option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneOption<'a> {
    pub number: &'a PhoneNumber,
    /// Whether a caller of that number reaching the queue now can leave a voicemail.
    pub voicemail: bool,
}

/// The phone option of the chat queue `queue` at `now`; `None` when no number reaches it.
pub fn phone_option<'a>(
    hours: &AfterHours,
    tree: &QueueTree,
    dids: &'a [Did],
    queue: QueueId,
    now: DateTime<Utc>,
) -> Option<PhoneOption<'a>> {
    let path = tree.path(queue)?;
    let voice = tree
        .nodes()
        .filter(|n| n.channel == Channel::Voice && n.kind == QueueKind::Leaf)
        .find(|n| tree.path(n.id).as_deref() == Some(path.as_str()));
    let top = || dids.iter().find(|d| d.entry.is_none());
    let Some(voice) = voice else {
        return top().map(|d| PhoneOption {
            number: &d.number,
            voicemail: false,
        });
    };
    // The queue, then each menu above it, then the top of the IVR.
    let mut cursor = Some(voice.id);
    let mut did = None;
    while let Some(node) = cursor {
        if let Some(found) = dids.iter().find(|d| d.entry == Some(node)) {
            did = Some(found);
            break;
        }
        cursor = tree.get(node).and_then(|n| n.parent);
    }
    let did = did.or_else(top)?;
    let voicemail = match hours.decide(voice.id, Channel::Voice, did.language.as_ref(), now) {
        Decision::Deflect(rule) => rule.takes_voicemail(),
        Decision::Open | Decision::ClosedRouted => false,
    };
    Some(PhoneOption {
        number: &did.number,
        voicemail,
    })
}
