//! Chats whose channel is SMS (see `crate::sms`): a conversation started for a phone number in
//! an SMS queue, the sender's messages added to it by their `MessageSid` (so a webhook Twilio
//! retries is shown once), and an agent's messages handed to the SMS connector as jobs.

use super::{ChatError, ChatService};
use chrono::Utc;
use switchboard_core::chat::{ChatMessage, ClientMessageId, ReservedProperties, Sender};
use switchboard_core::{Channel, Contact, ContactId, MessageId, QueueId, TicketId, VisitorId};
use switchboard_services::contacts::{ContactError, NewContact};
use switchboard_store::{ChatSession, NewMessage, Ticket};
use uuid::Uuid;

impl ChatService {
    /// Starts an SMS conversation for `phone` in `queue` (a leaf of the SMS tree); its ticket
    /// carries the number, which the agent's replies are sent to.
    pub async fn start_sms(
        &self,
        visitor: VisitorId,
        phone: &str,
        queue: QueueId,
    ) -> Result<ContactId, ChatError> {
        let node = self
            .contacts
            .queue_node(queue)
            .await
            .ok_or(ChatError::Contact(ContactError::UnknownQueue))?;
        if node.channel != Channel::Sms {
            return Err(ChatError::Contact(ContactError::WrongChannel));
        }
        let now = Utc::now();
        let contact_id = ContactId::from_uuid(Uuid::now_v7());
        let name = format!("SMS {phone}");
        let ticket = Ticket {
            id: TicketId::from_uuid(Uuid::now_v7()),
            contact: Some(contact_id),
            visitor: Some(visitor),
            identity: None,
            name: name.clone(),
            status: "open".into(),
            transcript: None,
            external_id: None,
            created_at: now,
            updated_at: now,
            call: None,
            phone: Some(phone.to_owned()),
        };
        let session = ChatSession {
            contact: contact_id,
            visitor,
            identity: None,
            ticket: ticket.id,
            source: "sms".into(),
            properties: ReservedProperties::default(),
            accepted_at: None,
        };
        let request = NewContact {
            queue,
            priority: None,
            language: None,
            customer: Some(name),
            chat: Some((session, ticket.clone())),
        };
        let contact = self.contacts.enqueue(request, contact_id).await?;
        crate::crm::enqueue(
            &self.jobs,
            crate::crm::Event::TicketCreated { ticket: ticket.id },
        )
        .await;
        Ok(contact.id)
    }

    /// Adds the sender's message to their conversation (once per `MessageSid`) and shows it to
    /// the agent.
    pub async fn receive_sms(
        &self,
        chat: ContactId,
        message_sid: &str,
        body: &str,
    ) -> Result<ChatMessage, ChatError> {
        let client_id = ClientMessageId::parse(message_sid)?;
        let contact = self
            .contacts
            .open_contact(chat)
            .await
            .ok_or(ChatError::Ended)?;
        let message = NewMessage {
            id: MessageId::from_uuid(Uuid::now_v7()),
            contact: chat,
            sender: Sender::Consumer,
            client_id: Some(client_id),
            text: body.to_owned(),
            attachment: None,
            sent_at: Utc::now(),
        };
        let (stored, new) = self.store_message(message).await?;
        if new {
            self.broadcast(&contact, &stored, None).await;
        }
        Ok(stored)
    }

    /// An agent's message in an SMS conversation goes out as a job named by the message, so a
    /// resend of it sends nothing twice.
    pub(super) async fn sms_reply(
        &self,
        contact: &Contact,
        sender: Sender,
        message: &ChatMessage,
    ) -> Result<(), ChatError> {
        if contact.channel != Channel::Sms || !matches!(sender, Sender::Agent(_)) {
            return Ok(());
        }
        crate::sms::queue_reply(
            &self.store,
            &self.jobs,
            contact.id,
            message.id,
            &message.text,
        )
        .await?;
        Ok(())
    }
}
