//! What a consumer is offered instead of a chat or instead of waiting (AHD-4): which offers a
//! closed queue's rule makes, the wait offer to chats that have waited long enough, and a
//! message left for the help center (`leave_message`), stored as a job before it is
//! acknowledged.

use super::protocol::ServerEvent;
use super::{ChatError, ChatService};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use switchboard_core::after_hours::{ChatOffer, Decision};
use switchboard_core::offer::{EmailRequest, OfferSettings, Reason};
use switchboard_core::{Channel, ContactId, ContactStatus, QueueId};
use switchboard_services::contacts::{ContactError, Standing};
use switchboard_store::Visitor;

/// Why a chat ended whose consumer left a message instead of waiting on.
pub const LEFT_MESSAGE: &str = "left_message";

/// A `leave_message` request as the consumer sent it.
pub struct LeaveMessage<'a> {
    pub client_id: &'a str,
    pub queue: &'a str,
    pub chat: Option<&'a str>,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub text: &'a str,
}

impl ChatService {
    /// Stores a message the consumer leaves for the help center and says how it will get
    /// there (`mail` or `ticket`). Allowed when the queue is closed and its rule offers email,
    /// or for the consumer's own chat waiting in the queue past the wait offer (that chat then
    /// ends: the consumer chose the message over the wait).
    pub async fn leave_message(
        &self,
        visitor: &Visitor,
        leave: LeaveMessage<'_>,
    ) -> Result<&'static str, ChatError> {
        let request = EmailRequest::new(leave.email, leave.name, leave.text)?;
        let queue = QueueId::parse(leave.queue)
            .map_err(|_| ChatError::Contact(ContactError::UnknownQueue))?;
        let node = self
            .contacts
            .queue_node(queue)
            .await
            .ok_or(ChatError::Contact(ContactError::UnknownQueue))?;
        if !matches!(node.channel, Channel::Web | Channel::Mobile) {
            return Err(ChatError::Invalid(
                "messages are left in a queue of the web or mobile menu".into(),
            ));
        }
        let settings = self.store.offer_settings().await?;
        let now = Utc::now();
        let (reason, waiting) = match leave.chat {
            Some(chat) => {
                let chat = super::parse_chat_id(chat)?;
                let session = self.store.get_chat(chat).await?;
                if session.visitor != visitor.id {
                    return Err(ChatError::NotFound);
                }
                let contact = self.store.get_contact(chat).await?;
                if contact.queue != Some(queue) {
                    return Err(ChatError::Invalid(
                        "that chat does not wait in this queue".into(),
                    ));
                }
                // A resend after a lost answer finds the chat ended for its message: the job
                // it stored names the same request, so nothing is sent twice.
                let resent = !contact.status.is_open()
                    && contact.end_reason.as_deref() == Some(LEFT_MESSAGE);
                if !resent {
                    if contact.status != ContactStatus::Queued {
                        return Err(ChatError::Invalid(
                            "that chat does not wait in this queue".into(),
                        ));
                    }
                    if !settings.wait_offer_due(contact.created_at, now) {
                        return Err(ChatError::Invalid(
                            "a message can be left once the chat has waited past the wait offer"
                                .into(),
                        ));
                    }
                }
                (Reason::Waited, (!resent).then_some(chat))
            }
            None => {
                let hours = crate::http::after_hours::load(self.store.as_ref()).await?;
                let offered = match hours.decide(queue, node.channel, None, self.wall_clock.now()) {
                    Decision::Deflect(rule) => rule
                        .offers()
                        .iter()
                        .any(|offer| matches!(offer, ChatOffer::Email)),
                    _ => false,
                };
                if !offered {
                    return Err(ChatError::Invalid(
                        "this queue offers no message now: start a chat instead".into(),
                    ));
                }
                (Reason::Closed, None)
            }
        };
        let delivery = settings.delivery();
        let issue = self
            .contacts
            .issue_of(queue)
            .await
            .unwrap_or_else(|| node.name.to_string());
        crate::offers::store(
            &self.jobs,
            crate::offers::LeftMessage {
                request: &request,
                queue,
                queue_path: &issue,
                reason,
                visitor: visitor.id,
                client_id: leave.client_id,
                delivery: &delivery,
            },
            now,
        )
        .await?;
        if let Some(chat) = waiting {
            // The message is stored: the wait is over. A chat an agent took meanwhile stays.
            match self.contacts.end(chat, LEFT_MESSAGE.into()).await {
                Ok(_) | Err(ContactError::UnknownContact | ContactError::AlreadyEnded) => {}
                Err(error) => {
                    tracing::warn!(%error, %chat, "a waiting chat left for a message did not end")
                }
            }
        }
        Ok(delivery.kind())
    }
}

/// The chats among `standings` that have waited past the wait offer and were not offered it
/// yet, each remembered as offered (and forgotten once it no longer waits).
pub fn due_wait_offers(
    standings: &[(ContactId, Standing)],
    settings: &OfferSettings,
    offered: &mut HashSet<ContactId>,
    now: DateTime<Utc>,
) -> Vec<(ContactId, QueueId)> {
    let waiting: HashSet<ContactId> = standings.iter().map(|(id, _)| *id).collect();
    offered.retain(|id| waiting.contains(id));
    standings
        .iter()
        .filter(|(id, standing)| {
            settings.wait_offer_due(standing.waiting_since, now) && offered.insert(*id)
        })
        .map(|(id, standing)| (*id, standing.queue))
        .collect()
}

impl ChatService {
    /// The wait offer's frame for a chat waiting in `queue`: a message for the help center,
    /// and the scheduled call its queue's after-hours rule offers, if any (its slots start now,
    /// the queue being open).
    pub async fn wait_offer_frame(&self, chat: ContactId, queue: QueueId) -> Arc<str> {
        let mut offers = vec![ChatOffer::Email];
        if let Some(node) = self.contacts.queue_node(queue).await {
            match crate::http::after_hours::load(self.store.as_ref()).await {
                Ok(hours) => {
                    if let Some(rule) = hours.rule_for(queue, node.channel) {
                        offers.extend(
                            rule.offers()
                                .iter()
                                .filter(|o| matches!(o, ChatOffer::ScheduledCall { .. }))
                                .cloned(),
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "after-hours rules not read for a wait offer"),
            }
        }
        ServerEvent::WaitOffers {
            chat_id: chat.to_string(),
            queue_id: queue.to_string(),
            offers: self.offers_frame(&offers).await,
        }
        .to_json()
    }
}
