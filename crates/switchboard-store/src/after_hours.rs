//! After-hours deflection: the rules per channel (center-wide) and per queue, and whether
//! agents may transfer to queues outside their hours. `AfterHoursStore` says what is kept;
//! `after_hours_sql!` is its SQL for both backends.

use crate::codec::corrupt;
use crate::StoreResult;
use async_trait::async_trait;
use switchboard_core::after_hours::{
    AfterHoursAction, AfterHoursMessage, ChatOffer, DeflectionRule,
};
use switchboard_core::voice::PhoneNumber;
use switchboard_core::{Channel, Language, QueueId};

/// After-hours deflection. Each method is one transaction.
#[async_trait]
pub trait AfterHoursStore: Send + Sync {
    /// Every rule, center-wide ones first, then by queue and channel.
    async fn list_deflection_rules(&self) -> StoreResult<Vec<DeflectionRule>>;
    /// Creates or replaces the rule of its queue (or the center) and channel.
    async fn put_deflection_rule(&self, rule: &DeflectionRule) -> StoreResult<()>;
    async fn delete_deflection_rule(
        &self,
        queue: Option<QueueId>,
        channel: Channel,
    ) -> StoreResult<()>;
    /// The "allow transfers to after-hours queues" setting (off until set).
    async fn after_hours_transfers(&self) -> StoreResult<bool>;
    async fn set_after_hours_transfers(&self, allow: bool) -> StoreResult<()>;
}

/// The row's key: one rule per queue (or `center`) and channel.
pub(crate) fn rule_key(queue: Option<QueueId>, channel: Channel) -> String {
    format!(
        "{}:{}",
        queue.map_or_else(|| "center".to_owned(), |q| q.to_string()),
        channel.as_str()
    )
}

/// Messages as stored: a JSON list of `{"language": …, "text": …}` (a storage format).
pub(crate) fn messages_text(messages: &[AfterHoursMessage]) -> String {
    let list: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "language": m.language.as_ref().map(Language::as_str),
                "text": m.text(),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// Offers as stored: a JSON list of `{"kind": "scheduled_call", "queue_id": …}` and
/// `{"kind": "email"}` (a storage format).
pub(crate) fn offers_text(offers: &[ChatOffer]) -> String {
    let list: Vec<serde_json::Value> = offers
        .iter()
        .map(|o| match o {
            ChatOffer::ScheduledCall { queue } => {
                serde_json::json!({"kind": o.kind(), "queue_id": queue.to_string()})
            }
            ChatOffer::Email => serde_json::json!({"kind": o.kind()}),
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn offers_from(text: &str) -> StoreResult<Vec<ChatOffer>> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(corrupt)?;
    list.iter()
        .map(|o| match o["kind"].as_str() {
            Some("email") => Ok(ChatOffer::Email),
            Some("scheduled_call") => Ok(ChatOffer::ScheduledCall {
                queue: crate::codec::id(
                    o["queue_id"].as_str().unwrap_or_default(),
                    QueueId::parse,
                )?,
            }),
            _ => Err(corrupt(format!("after-hours offer {o}"))),
        })
        .collect()
}

fn messages_from(text: &str) -> StoreResult<Vec<AfterHoursMessage>> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(corrupt)?;
    list.iter()
        .map(|m| {
            let language = m["language"]
                .as_str()
                .map(Language::parse)
                .transpose()
                .map_err(corrupt)?;
            let text = m["text"]
                .as_str()
                .ok_or_else(|| corrupt("an after-hours message without text"))?;
            AfterHoursMessage::new(language, text).map_err(corrupt)
        })
        .collect()
}

/// The columns of `deflection_rules`, decoded and checked again (the tree given is the
/// stored one, so a rule always names queues that exist).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rule_from(
    queue: Option<&str>,
    channel: &str,
    enabled: bool,
    action: &str,
    target: Option<&str>,
    number: Option<&str>,
    voicemail_seconds: Option<i64>,
    messages: &str,
    offers: &str,
    nodes: &[switchboard_core::QueueNode],
) -> StoreResult<DeflectionRule> {
    let queue = queue
        .map(|q| crate::codec::id(q, QueueId::parse))
        .transpose()?;
    let channel = Channel::parse(channel).map_err(corrupt)?;
    let action = match (action, target, number) {
        ("message", _, _) => AfterHoursAction::Message,
        ("queue", Some(target), _) => {
            AfterHoursAction::Queue(crate::codec::id(target, QueueId::parse)?)
        }
        ("forward", _, Some(number)) => {
            AfterHoursAction::Forward(PhoneNumber::parse("number", number).map_err(corrupt)?)
        }
        ("voicemail", _, _) => AfterHoursAction::Voicemail {
            max_seconds: voicemail_seconds
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| corrupt("a voicemail rule without its length"))?,
        },
        _ => return Err(corrupt(format!("after-hours action {action}"))),
    };
    // A scheduled call into a queue deleted since is no longer offered.
    let offers = offers_from(offers)?
        .into_iter()
        .filter(|o| match o {
            ChatOffer::ScheduledCall { queue } => nodes.iter().any(|n| n.id == *queue),
            ChatOffer::Email => true,
        })
        .collect();
    DeflectionRule::new(
        queue,
        channel,
        enabled,
        action,
        messages_from(messages)?,
        nodes,
    )
    .and_then(|rule| rule.with_offers(offers, nodes))
    .map_err(corrupt)
}

/// Implements `AfterHoursStore` for a backend type with `writer()` and `reader()` pool
/// accessors; the queue tree for the rules' checks comes from its `DirectoryStore`.
macro_rules! after_hours_sql {
    ($store:ty, $row:ty) => {
        use crate::after_hours::{messages_text, offers_text, rule_from, rule_key, AfterHoursStore};
        use crate::directory::DirectoryStore;
        use crate::sql::not_found_unless_one;
        use crate::StoreResult;
        use async_trait::async_trait;
        use sqlx::Row;
        use switchboard_core::after_hours::{AfterHoursAction, DeflectionRule};
        use switchboard_core::{Channel, QueueId};

        #[async_trait]
        impl AfterHoursStore for $store {
            async fn list_deflection_rules(&self) -> StoreResult<Vec<DeflectionRule>> {
                let nodes = self.list_queues().await?;
                let rows = sqlx::query(
                    "SELECT queue_id, channel, enabled, action, target_queue_id, forward_number, voicemail_seconds, messages, offers \
                     FROM deflection_rules ORDER BY scope_key",
                )
                .fetch_all(self.reader())
                .await?;
                let mut rules = rows
                    .iter()
                    .map(|row| {
                        rule_from(
                            row.try_get::<Option<String>, _>("queue_id")?.as_deref(),
                            &row.try_get::<String, _>("channel")?,
                            row.try_get::<bool, _>("enabled")?,
                            &row.try_get::<String, _>("action")?,
                            row.try_get::<Option<String>, _>("target_queue_id")?.as_deref(),
                            row.try_get::<Option<String>, _>("forward_number")?.as_deref(),
                            row.try_get::<Option<i64>, _>("voicemail_seconds")?,
                            &row.try_get::<String, _>("messages")?,
                            &row.try_get::<String, _>("offers")?,
                            &nodes,
                        )
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                rules.sort_by_key(|r| (r.queue.is_some(), r.queue, r.channel.as_str()));
                Ok(rules)
            }

            async fn put_deflection_rule(&self, rule: &DeflectionRule) -> StoreResult<()> {
                let (target, number) = match &rule.action {
                    AfterHoursAction::Queue(q) => (Some(q.to_string()), None),
                    AfterHoursAction::Forward(n) => (None, Some(n.as_str().to_owned())),
                    AfterHoursAction::Message | AfterHoursAction::Voicemail { .. } => (None, None),
                };
                let voicemail_seconds = match rule.action {
                    AfterHoursAction::Voicemail { max_seconds } => Some(i64::from(max_seconds)),
                    _ => None,
                };
                sqlx::query(
                    "INSERT INTO deflection_rules (scope_key, queue_id, channel, enabled, action, target_queue_id, forward_number, messages, voicemail_seconds, offers) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (scope_key) DO UPDATE SET enabled = excluded.enabled, action = excluded.action, \
                     target_queue_id = excluded.target_queue_id, forward_number = excluded.forward_number, \
                     messages = excluded.messages, voicemail_seconds = excluded.voicemail_seconds, offers = excluded.offers",
                )
                .bind(rule_key(rule.queue, rule.channel))
                .bind(rule.queue.map(|q| q.to_string()))
                .bind(rule.channel.as_str())
                .bind(rule.enabled)
                .bind(rule.action.kind())
                .bind(target)
                .bind(number)
                .bind(messages_text(rule.messages()))
                .bind(voicemail_seconds)
                .bind(offers_text(rule.offers()))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn delete_deflection_rule(
                &self,
                queue: Option<QueueId>,
                channel: Channel,
            ) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM deflection_rules WHERE scope_key = $1")
                    .bind(rule_key(queue, channel))
                    .execute(self.writer())
                    .await?;
                not_found_unless_one(done.rows_affected(), "after-hours rule")
            }

            async fn after_hours_transfers(&self) -> StoreResult<bool> {
                let allow: Option<bool> = sqlx::query_scalar(
                    "SELECT after_hours_transfers FROM center_settings WHERE id = 1",
                )
                .fetch_optional(self.reader())
                .await?;
                Ok(allow.unwrap_or(false))
            }

            async fn set_after_hours_transfers(&self, allow: bool) -> StoreResult<()> {
                sqlx::query("UPDATE center_settings SET after_hours_transfers = $1 WHERE id = 1")
                    .bind(allow)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use after_hours_sql;
