//! The SMS channel's rows: the connector's settings (the Twilio auth token sealed at rest), the
//! senders we know with the visitor their conversations belong to, inbound messages once each
//! by Twilio's `MessageSid`, outbound messages with their delivery state, and the number on an
//! agent's profile that incoming calls are texted to (NTF-4). `SmsStore` says what is kept;
//! `sms_sql!` is its SQL for both backends.

use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::sms::{DeliveryStatus, SmsPurpose};
use switchboard_core::{ContactId, JobId, UserId, VisitorId};

/// How the center sends and receives SMS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsSettings {
    /// `log` (messages written to the outbox folder; the default) or `twilio`.
    pub connector: String,
    pub account_sid: Option<String>,
    /// Twilio's auth token: the API's password and the key of its webhook signatures.
    pub auth_token: Option<String>,
    /// The number messages are sent from (ours).
    pub from_number: Option<String>,
    /// The API's base URL (`https://api.twilio.com` unless set; tests point it at a fake).
    pub api_base: Option<String>,
    /// Our public base URL as Twilio sees it: the webhook signatures cover it.
    pub public_url: Option<String>,
    /// NTF-4: an incoming call that rings an agent also texts the number on their profile.
    pub notify_agents: bool,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            connector: "log".into(),
            account_sid: None,
            auth_token: None,
            from_number: None,
            api_base: None,
            public_url: None,
            notify_agents: false,
        }
    }
}

/// A phone number that texted us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsSender {
    pub phone: String,
    /// The visitor its conversations (chats whose channel is SMS) belong to.
    pub visitor: VisitorId,
    /// When it was sent the queue menu it has not answered yet.
    pub menu_sent_at: Option<DateTime<Utc>>,
}

/// An inbound message as the webhook delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundSms {
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// The conversation it joined or started, if any.
    pub contact: Option<ContactId>,
    pub received_at: DateTime<Utc>,
}

/// An outbound message; its id is the id of the job that sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundSms {
    pub id: JobId,
    pub contact: Option<ContactId>,
    pub to: String,
    pub body: String,
    pub purpose: SmsPurpose,
    pub status: DeliveryStatus,
    /// The provider's id for it (Twilio's `sid`), once the API accepted it.
    pub provider_sid: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The SMS channel. Each method is one transaction.
#[async_trait]
pub trait SmsStore: Send + Sync {
    /// The settings (the defaults until they are first saved).
    async fn sms_settings(&self) -> StoreResult<SmsSettings>;
    async fn put_sms_settings(&self, settings: &SmsSettings) -> StoreResult<()>;
    async fn sms_sender(&self, phone: &str) -> StoreResult<Option<SmsSender>>;
    /// A sender with its open conversation (a chat of its visitor still queued or assigned,
    /// the oldest), in one read: the path every inbound message takes.
    async fn sms_conversation(
        &self,
        phone: &str,
    ) -> StoreResult<Option<(SmsSender, Option<ContactId>)>>;
    /// Creates or replaces a sender's row.
    async fn put_sms_sender(&self, sender: &SmsSender) -> StoreResult<()>;
    /// Stores an inbound message unless one with its `MessageSid` is stored; returns whether
    /// it was new. A conversation given later is filled in by `set_inbound_contact`.
    async fn record_inbound_sms(&self, message: &InboundSms) -> StoreResult<bool>;
    /// Stores many inbound messages in one transaction (group commit), each unless one with
    /// its `MessageSid` is stored.
    async fn record_inbound_sms_batch(&self, messages: &[InboundSms]) -> StoreResult<()>;
    async fn set_inbound_contact(&self, message_sid: &str, contact: ContactId) -> StoreResult<()>;
    async fn inbound_sms(&self, message_sid: &str) -> StoreResult<Option<InboundSms>>;
    async fn count_inbound_sms(&self) -> StoreResult<u64>;
    /// Stores an outbound message; a second one with the same id is ignored (false).
    async fn add_outbound_sms(&self, message: &OutboundSms) -> StoreResult<bool>;
    async fn outbound_sms(&self, id: JobId) -> StoreResult<OutboundSms>;
    /// Outbound messages, oldest first (at most `limit`).
    async fn list_outbound_sms(&self, limit: u32) -> StoreResult<Vec<OutboundSms>>;
    /// Records what the API said of a send: its sid (when accepted), the status and the error.
    async fn set_outbound_sms_state(
        &self,
        id: JobId,
        provider_sid: Option<&str>,
        status: DeliveryStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// A status callback: moves the message with that provider sid forward to `status` (a
    /// callback that arrives late never moves it back); returns whether a message has the sid.
    async fn advance_sms_status(
        &self,
        provider_sid: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn agent_sms_number(&self, user: UserId) -> StoreResult<Option<String>>;
    /// Sets (or with `None` removes) the number on an agent's profile.
    async fn set_agent_sms_number(&self, user: UserId, phone: Option<&str>) -> StoreResult<()>;
}

/// Implements `SmsStore` for a backend type with `writer()`, `reader()` and `secrets()`.
macro_rules! sms_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis, time};
        use crate::sms::{InboundSms, OutboundSms, SmsSender, SmsSettings, SmsStore};
        use crate::sql::not_found_unless_one;
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use switchboard_core::sms::{DeliveryStatus, SmsPurpose};
        use switchboard_core::{ContactId, JobId, UserId, VisitorId};

        fn outbound_from(row: &$row) -> StoreResult<OutboundSms> {
            Ok(OutboundSms {
                id: codec::id(&row.try_get::<String, _>("id")?, JobId::parse)?,
                contact: row
                    .try_get::<Option<String>, _>("contact_id")?
                    .map(|c| codec::id(&c, ContactId::parse))
                    .transpose()?,
                to: row.try_get("to_number")?,
                body: row.try_get("body")?,
                purpose: SmsPurpose::parse(&row.try_get::<String, _>("purpose")?)
                    .map_err(codec::corrupt)?,
                status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)
                    .ok_or_else(|| codec::corrupt("an SMS status"))?,
                provider_sid: row.try_get("provider_sid")?,
                error: row.try_get("error")?,
                created_at: time(row.try_get("created_at")?)?,
                updated_at: time(row.try_get("updated_at")?)?,
            })
        }

        #[async_trait]
        impl SmsStore for $store {
            async fn sms_settings(&self) -> StoreResult<SmsSettings> {
                let row = sqlx::query("SELECT connector, account_sid, sms_auth_token, from_number, api_base, public_url, notify_agents FROM sms_settings WHERE id = 1")
                    .fetch_optional(self.reader()).await?;
                let Some(row) = row else {
                    return Ok(SmsSettings::default());
                };
                Ok(SmsSettings {
                    connector: row.try_get("connector")?,
                    account_sid: row.try_get("account_sid")?,
                    auth_token: self.secrets().open_opt("sms_auth_token", row.try_get("sms_auth_token")?)?,
                    from_number: row.try_get("from_number")?,
                    api_base: row.try_get("api_base")?,
                    public_url: row.try_get("public_url")?,
                    notify_agents: row.try_get("notify_agents")?,
                })
            }

            async fn put_sms_settings(&self, settings: &SmsSettings) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sms_settings (id, connector, account_sid, sms_auth_token, from_number, api_base, public_url, notify_agents) \
                     VALUES (1, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET connector = excluded.connector, \
                     account_sid = excluded.account_sid, sms_auth_token = excluded.sms_auth_token, from_number = excluded.from_number, \
                     api_base = excluded.api_base, public_url = excluded.public_url, notify_agents = excluded.notify_agents",
                )
                .bind(&settings.connector)
                .bind(&settings.account_sid)
                .bind(self.secrets().seal_opt("sms_auth_token", settings.auth_token.as_deref())?)
                .bind(&settings.from_number)
                .bind(&settings.api_base)
                .bind(&settings.public_url)
                .bind(settings.notify_agents)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn sms_sender(&self, phone: &str) -> StoreResult<Option<SmsSender>> {
                let row = sqlx::query("SELECT phone, visitor_id, menu_sent_at FROM sms_senders WHERE phone = $1")
                    .bind(phone).fetch_optional(self.reader()).await?;
                row.map(|row| -> StoreResult<SmsSender> {
                    Ok(SmsSender {
                        phone: row.try_get("phone")?,
                        visitor: codec::id(&row.try_get::<String, _>("visitor_id")?, VisitorId::parse)?,
                        menu_sent_at: row.try_get::<Option<i64>, _>("menu_sent_at")?.map(time).transpose()?,
                    })
                })
                .transpose()
            }

            async fn sms_conversation(&self, phone: &str) -> StoreResult<Option<(SmsSender, Option<ContactId>)>> {
                let row = sqlx::query(
                    "SELECT phone, visitor_id, menu_sent_at, \
                     (SELECT s.contact_id FROM chat_sessions s JOIN contacts c ON c.id = s.contact_id \
                      WHERE s.visitor_id = sms_senders.visitor_id AND c.status IN ('queued', 'assigned') \
                      ORDER BY c.created_at LIMIT 1) AS open_chat \
                     FROM sms_senders WHERE phone = $1",
                )
                .bind(phone).fetch_optional(self.reader()).await?;
                row.map(|row| -> StoreResult<(SmsSender, Option<ContactId>)> {
                    Ok((
                        SmsSender {
                            phone: row.try_get("phone")?,
                            visitor: codec::id(&row.try_get::<String, _>("visitor_id")?, VisitorId::parse)?,
                            menu_sent_at: row.try_get::<Option<i64>, _>("menu_sent_at")?.map(time).transpose()?,
                        },
                        row.try_get::<Option<String>, _>("open_chat")?
                            .map(|c| codec::id(&c, ContactId::parse))
                            .transpose()?,
                    ))
                })
                .transpose()
            }

            async fn put_sms_sender(&self, sender: &SmsSender) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sms_senders (phone, visitor_id, menu_sent_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (phone) DO UPDATE SET visitor_id = excluded.visitor_id, menu_sent_at = excluded.menu_sent_at",
                )
                .bind(&sender.phone)
                .bind(sender.visitor.to_string())
                .bind(sender.menu_sent_at.map(millis))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn record_inbound_sms(&self, message: &InboundSms) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO sms_inbound (message_sid, from_number, to_number, body, contact_id, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_sid) DO NOTHING",
                )
                .bind(&message.message_sid)
                .bind(&message.from)
                .bind(&message.to)
                .bind(&message.body)
                .bind(message.contact.map(|c| c.to_string()))
                .bind(millis(message.received_at))
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_inbound_sms_batch(&self, messages: &[InboundSms]) -> StoreResult<()> {
                // At most 100 rows a statement (600 parameters: well inside both dialects' limits).
                let mut tx = self.writer().begin().await?;
                for chunk in messages.chunks(100) {
                    let mut text = String::from(
                        "INSERT INTO sms_inbound (message_sid, from_number, to_number, body, contact_id, received_at) VALUES ",
                    );
                    for index in 0..chunk.len() {
                        let n = index * 6;
                        if index > 0 {
                            text.push_str(", ");
                        }
                        text.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5, n + 6));
                    }
                    text.push_str(" ON CONFLICT (message_sid) DO NOTHING");
                    let mut query = sqlx::query(&text);
                    for message in chunk {
                        query = query
                            .bind(&message.message_sid)
                            .bind(&message.from)
                            .bind(&message.to)
                            .bind(&message.body)
                            .bind(message.contact.map(|c| c.to_string()))
                            .bind(millis(message.received_at));
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn set_inbound_contact(&self, message_sid: &str, contact: ContactId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE sms_inbound SET contact_id = $1 WHERE message_sid = $2")
                    .bind(contact.to_string()).bind(message_sid).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "inbound SMS")
            }

            async fn inbound_sms(&self, message_sid: &str) -> StoreResult<Option<InboundSms>> {
                let row = sqlx::query("SELECT message_sid, from_number, to_number, body, contact_id, received_at FROM sms_inbound WHERE message_sid = $1")
                    .bind(message_sid).fetch_optional(self.reader()).await?;
                row.map(|row| -> StoreResult<InboundSms> {
                    Ok(InboundSms {
                        message_sid: row.try_get("message_sid")?,
                        from: row.try_get("from_number")?,
                        to: row.try_get("to_number")?,
                        body: row.try_get("body")?,
                        contact: row
                            .try_get::<Option<String>, _>("contact_id")?
                            .map(|c| codec::id(&c, ContactId::parse))
                            .transpose()?,
                        received_at: time(row.try_get("received_at")?)?,
                    })
                })
                .transpose()
            }

            async fn count_inbound_sms(&self) -> StoreResult<u64> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sms_inbound")
                    .fetch_one(self.reader()).await?;
                Ok(count.max(0) as u64)
            }

            async fn add_outbound_sms(&self, message: &OutboundSms) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO sms_outbound (id, contact_id, to_number, body, purpose, status, provider_sid, error, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
                )
                .bind(message.id.to_string())
                .bind(message.contact.map(|c| c.to_string()))
                .bind(&message.to)
                .bind(&message.body)
                .bind(message.purpose.as_str())
                .bind(message.status.as_str())
                .bind(&message.provider_sid)
                .bind(&message.error)
                .bind(millis(message.created_at))
                .bind(millis(message.updated_at))
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn outbound_sms(&self, id: JobId) -> StoreResult<OutboundSms> {
                let row = sqlx::query("SELECT * FROM sms_outbound WHERE id = $1")
                    .bind(id.to_string()).fetch_optional(self.writer()).await?
                    .ok_or(StoreError::NotFound("SMS"))?;
                outbound_from(&row)
            }

            async fn list_outbound_sms(&self, limit: u32) -> StoreResult<Vec<OutboundSms>> {
                let rows = sqlx::query("SELECT * FROM sms_outbound ORDER BY created_at, id LIMIT $1")
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(outbound_from).collect()
            }

            async fn set_outbound_sms_state(
                &self,
                id: JobId,
                provider_sid: Option<&str>,
                status: DeliveryStatus,
                error: Option<&str>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE sms_outbound SET provider_sid = COALESCE($1, provider_sid), status = $2, error = $3, updated_at = $4 WHERE id = $5",
                )
                .bind(provider_sid)
                .bind(status.as_str())
                .bind(error)
                .bind(millis(now))
                .bind(id.to_string())
                .execute(self.writer())
                .await?;
                not_found_unless_one(done.rows_affected(), "SMS")
            }

            async fn advance_sms_status(
                &self,
                provider_sid: &str,
                status: DeliveryStatus,
                error: Option<&str>,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let mut tx = self.writer().begin().await?;
                let current: Option<String> = sqlx::query_scalar("SELECT status FROM sms_outbound WHERE provider_sid = $1")
                    .bind(provider_sid).fetch_optional(&mut *tx).await?;
                let Some(current) = current else {
                    return Ok(false);
                };
                let current = DeliveryStatus::parse(&current).ok_or_else(|| codec::corrupt("an SMS status"))?;
                if current.advanced_by(status) {
                    sqlx::query("UPDATE sms_outbound SET status = $1, error = COALESCE($2, error), updated_at = $3 WHERE provider_sid = $4")
                        .bind(status.as_str()).bind(error).bind(millis(now)).bind(provider_sid)
                        .execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn agent_sms_number(&self, user: UserId) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT phone FROM sms_agent_numbers WHERE user_id = $1")
                    .bind(user.to_string()).fetch_optional(self.reader()).await?)
            }

            async fn set_agent_sms_number(&self, user: UserId, phone: Option<&str>) -> StoreResult<()> {
                match phone {
                    Some(phone) => {
                        sqlx::query("INSERT INTO sms_agent_numbers (user_id, phone) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone")
                            .bind(user.to_string()).bind(phone).execute(self.writer()).await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM sms_agent_numbers WHERE user_id = $1")
                            .bind(user.to_string()).execute(self.writer()).await?;
                    }
                }
                Ok(())
            }
        }
    };
}

pub(crate) use sms_sql;
