//! Voice: SIP trunks, dialled numbers (DIDs) and where their calls start, agents' SIP phone
//! credentials (HA1 only), the keys of uploaded prompts and hold music, and call records
//! (upserted in batches: a busy center changes thousands a second). `VoiceStore` says what is
//! kept; `voice_sql!` is its SQL for both backends.

use crate::codec;
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_core::voice::{CallRecord, Did, Trunk};
use switchboard_core::whisper::{Whisper, WhisperMessage, WhisperOverride};
use switchboard_core::{CallId, QueueId, TrunkId, UserId, Username};

/// Voice configuration and call history. Each method is one transaction.
#[async_trait]
pub trait VoiceStore: Send + Sync {
    async fn list_trunks(&self) -> StoreResult<Vec<Trunk>>;
    async fn get_trunk(&self, id: TrunkId) -> StoreResult<Trunk>;
    /// Creates or replaces a trunk.
    async fn put_trunk(&self, trunk: &Trunk) -> StoreResult<()>;
    async fn delete_trunk(&self, id: TrunkId) -> StoreResult<()>;
    async fn list_dids(&self) -> StoreResult<Vec<Did>>;
    /// Creates or replaces a dialled number's entry point.
    async fn put_did(&self, did: &Did) -> StoreResult<()>;
    async fn delete_did(&self, number: &str) -> StoreResult<()>;
    /// Sets (or with `None` removes) an agent's SIP phone credential (HA1).
    async fn set_sip_phone(&self, user: UserId, ha1: Option<&str>) -> StoreResult<()>;
    /// Every enabled agent's SIP phone credential: the user, their username and the HA1.
    async fn list_sip_phones(&self) -> StoreResult<Vec<(UserId, Username, String)>>;
    async fn put_voice_audio(&self, key: &str, blob: &str, at: DateTime<Utc>) -> StoreResult<()>;
    async fn voice_audio(&self, key: &str) -> StoreResult<Option<String>>;
    async fn delete_voice_audio(&self, key: &str) -> StoreResult<()>;
    /// Creates or replaces call records, in one transaction.
    async fn put_calls(&self, calls: &[CallRecord]) -> StoreResult<()>;
    /// Creates or replaces a call's record.
    async fn put_call(&self, call: &CallRecord) -> StoreResult<()> {
        self.put_calls(std::slice::from_ref(call)).await
    }
    async fn get_call(&self, id: CallId) -> StoreResult<CallRecord>;
    /// The call a voice contact belongs to, if its record is stored.
    async fn call_of_contact(
        &self,
        contact: switchboard_core::ContactId,
    ) -> StoreResult<Option<CallId>>;
    /// The newest calls first.
    async fn list_calls(&self, limit: u32) -> StoreResult<Vec<CallRecord>>;
    /// After a restart: closes every call record still in progress (disposition
    /// `interrupted`) and ends every open voice contact, in one transaction, so no ghost call
    /// keeps an agent busy or is routed later. Chats are not touched: they survive restarts.
    /// Returns how many calls and contacts were closed.
    async fn close_interrupted_calls(&self, now: DateTime<Utc>) -> StoreResult<(u64, u64)>;
    /// The center's whisper (the default when never set) and every queue's changes to it.
    async fn whisper_settings(&self) -> StoreResult<WhisperSettings>;
    async fn put_center_whisper(&self, whisper: &Whisper) -> StoreResult<()>;
    /// Sets a voice queue's changes to the center's whisper (`NotFound` for no such queue,
    /// `Conflict` for a queue of another channel).
    async fn put_queue_whisper(&self, queue: QueueId, changes: &WhisperOverride)
        -> StoreResult<()>;
    /// The queue takes the center's whisper again.
    async fn delete_queue_whisper(&self, queue: QueueId) -> StoreResult<()>;
}

/// The center's whisper and queues' changes to it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WhisperSettings {
    pub center: Whisper,
    pub queues: std::collections::HashMap<QueueId, WhisperOverride>,
}

/// A stored whisper message: its kind and text, both absent when the row keeps the center's.
pub(crate) fn whisper_message(
    kind: Option<String>,
    text: Option<String>,
) -> StoreResult<Option<WhisperMessage>> {
    kind.map(|kind| WhisperMessage::parse(&kind, text.as_deref()).map_err(codec::corrupt))
        .transpose()
}

/// Trunk source networks, comma-joined (`192.0.2.0/24,198.51.100.7`).
pub(crate) fn networks(text: &str) -> StoreResult<Vec<switchboard_core::voice::Network>> {
    codec::split(text)
        .map(|n| switchboard_core::voice::Network::parse(n).map_err(codec::corrupt))
        .collect()
}

pub(crate) fn networks_text(networks: &[switchboard_core::voice::Network]) -> String {
    codec::join(&networks.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// Dial rules as JSON: `[{"prefix":"9","strip":1,"prepend":""}]`.
pub(crate) fn dial_rules(text: &str) -> StoreResult<Vec<switchboard_core::voice::DialRule>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(codec::corrupt)?;
    values
        .iter()
        .map(|v| {
            let field = |name: &str| {
                v.get(name)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            };
            let strip = v
                .get("strip")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            switchboard_core::voice::DialRule::new(
                field("prefix"),
                u8::try_from(strip).map_err(codec::corrupt)?,
                field("prepend"),
            )
            .map_err(codec::corrupt)
        })
        .collect()
}

pub(crate) fn dial_rules_text(rules: &[switchboard_core::voice::DialRule]) -> String {
    serde_json::Value::Array(
        rules
            .iter()
            .map(
                |r| serde_json::json!({"prefix": r.prefix, "strip": r.strip, "prepend": r.prepend}),
            )
            .collect(),
    )
    .to_string()
}

pub(crate) fn header_flags(text: &str) -> StoreResult<Vec<switchboard_core::voice::HeaderFlag>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(codec::corrupt)?;
    values
        .iter()
        .map(|v| {
            let field = |name: &str| {
                v.get(name)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            };
            switchboard_core::voice::HeaderFlag::new(field("header"), field("property"))
                .map_err(codec::corrupt)
        })
        .collect()
}

pub(crate) fn header_flags_text(flags: &[switchboard_core::voice::HeaderFlag]) -> String {
    serde_json::Value::Array(
        flags
            .iter()
            .map(|f| serde_json::json!({"header": f.header, "property": f.property}))
            .collect(),
    )
    .to_string()
}

/// Implements `VoiceStore` for a backend type with `writer()` and `reader()` pool accessors.
macro_rules! voice_sql {
    ($store:ty, $row:ty) => {
        use crate::codec::{self, millis};
        use crate::sql::not_found_unless_one;
        use crate::voice::{
            dial_rules, dial_rules_text, header_flags, header_flags_text, networks, networks_text, VoiceStore,
        };
        use crate::{StoreError, StoreResult};
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::Row;
        use switchboard_core::{ContactId, Language, Name, QueueId, UserId, Username};

        crate::sql::opt_id!($row);

        const TRUNK_COLUMNS: &str =
            "id, name, direction, addresses, username, secret, host, port, tcp, caller_id, dial_rules, max_calls, max_calls_per_second, header_flags, emergency";
        const CALL_COLUMNS: &str = "id, caller, did, ivr_path, queue_id, agent_id, contact_id, started_at, queued_at, \
             ringing_at, answered_at, ended_at, disposition, ended_by, transfers, rtp_from_caller, rtp_to_caller, rtp_from_agent, rtp_to_agent, \
             verified_customer, bad_actor, repeat_customer, direction, whisper_ms";

        fn trunk_from_row(row: &$row, secrets: &crate::SecretKeys) -> StoreResult<switchboard_core::voice::Trunk> {
            use switchboard_core::voice::{PhoneNumber, Trunk, TrunkDirection};
            let addresses: String = row.try_get("addresses")?;
            let caller_id: Option<String> = row.try_get("caller_id")?;
            let port: Option<i32> = row.try_get("port")?;
            let limit = |column: &str| -> StoreResult<Option<u32>> {
                let value: Option<i64> = row.try_get(column)?;
                value.map(|v| u32::try_from(v).map_err(codec::corrupt)).transpose()
            };
            Ok(Trunk {
                id: codec::id(&row.try_get::<String, _>("id")?, switchboard_core::TrunkId::parse)?,
                name: Name::parse("name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                direction: TrunkDirection::parse(&row.try_get::<String, _>("direction")?).map_err(codec::corrupt)?,
                addresses: networks(&addresses)?,
                username: row.try_get("username")?,
                secret: secrets.open_opt("secret", row.try_get("secret")?)?,
                host: row.try_get("host")?,
                port: port.map(|p| u16::try_from(p).map_err(codec::corrupt)).transpose()?,
                tcp: row.try_get("tcp")?,
                caller_id: caller_id
                    .as_deref()
                    .map(|c| PhoneNumber::parse("caller_id", c))
                    .transpose()
                    .map_err(codec::corrupt)?,
                dial_rules: dial_rules(&row.try_get::<String, _>("dial_rules")?)?,
                max_calls: limit("max_calls")?,
                max_calls_per_second: limit("max_calls_per_second")?,
                header_flags: header_flags(&row.try_get::<String, _>("header_flags")?)?,
                emergency: row.try_get("emergency")?,
            })
        }

        fn call_from_row(row: &$row) -> StoreResult<switchboard_core::voice::CallRecord> {
            use switchboard_core::voice::{CallRecord, Disposition};
            let transfers: String = row.try_get("transfers")?;
            Ok(CallRecord {
                id: codec::id(&row.try_get::<String, _>("id")?, switchboard_core::CallId::parse)?,
                caller: row.try_get("caller")?,
                did: row.try_get("did")?,
                ivr_path: row.try_get("ivr_path")?,
                queue: opt_id(row, "queue_id", QueueId::parse)?,
                agent: opt_id(row, "agent_id", UserId::parse)?,
                contact: opt_id(row, "contact_id", ContactId::parse)?,
                started_at: codec::time(row.try_get("started_at")?)?,
                queued_at: codec::opt_time(row.try_get("queued_at")?)?,
                ringing_at: codec::opt_time(row.try_get("ringing_at")?)?,
                answered_at: codec::opt_time(row.try_get("answered_at")?)?,
                ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                disposition: Disposition::parse(&row.try_get::<String, _>("disposition")?).map_err(codec::corrupt)?,
                ended_by: row.try_get("ended_by")?,
                transfers: serde_json::from_str(&transfers).map_err(codec::corrupt)?,
                rtp: switchboard_core::voice::RtpCounts {
                    from_caller: codec::count(row.try_get("rtp_from_caller")?)?,
                    to_caller: codec::count(row.try_get("rtp_to_caller")?)?,
                    from_agent: codec::count(row.try_get("rtp_from_agent")?)?,
                    to_agent: codec::count(row.try_get("rtp_to_agent")?)?,
                },
                properties: switchboard_core::chat::ReservedProperties {
                    verified_customer: row.try_get("verified_customer")?,
                    bad_actor: row.try_get("bad_actor")?,
                    repeat_customer: row.try_get("repeat_customer")?,
                },
                direction: switchboard_core::voice::CallDirection::parse(&row.try_get::<String, _>("direction")?).map_err(codec::corrupt)?,
                whisper_ms: row
                    .try_get::<Option<i64>, _>("whisper_ms")?
                    .map(|ms| u32::try_from(ms).map_err(codec::corrupt))
                    .transpose()?,
                // Live state only: a stored call has no recording running.
                recording: None,
                // Emergency calls are never stored (EMG-6).
                emergency: None,
            })
        }

        #[async_trait]
        impl VoiceStore for $store {
            async fn list_trunks(&self) -> StoreResult<Vec<switchboard_core::voice::Trunk>> {
                let rows = sqlx::query(&format!("SELECT {TRUNK_COLUMNS} FROM trunks")).fetch_all(self.reader()).await?;
                let mut trunks = rows.iter().map(|row| trunk_from_row(row, self.secrets())).collect::<StoreResult<Vec<_>>>()?;
                trunks.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()).then(a.id.cmp(&b.id)));
                Ok(trunks)
            }

            async fn get_trunk(&self, id: switchboard_core::TrunkId) -> StoreResult<switchboard_core::voice::Trunk> {
                let row = sqlx::query(&format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("trunk"))?;
                trunk_from_row(&row, self.secrets())
            }

            async fn put_trunk(&self, trunk: &switchboard_core::voice::Trunk) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO trunks (id, name, direction, addresses, username, secret, host, port, tcp, caller_id, dial_rules, created_at, max_calls, max_calls_per_second, header_flags, emergency) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, direction = excluded.direction, addresses = excluded.addresses, \
                     username = excluded.username, secret = excluded.secret, host = excluded.host, port = excluded.port, tcp = excluded.tcp, \
                     caller_id = excluded.caller_id, dial_rules = excluded.dial_rules, max_calls = excluded.max_calls, \
                     max_calls_per_second = excluded.max_calls_per_second, header_flags = excluded.header_flags, \
                     emergency = excluded.emergency",
                )
                .bind(trunk.id.to_string())
                .bind(trunk.name.as_str())
                .bind(trunk.direction.as_str())
                .bind(networks_text(&trunk.addresses))
                .bind(&trunk.username)
                .bind(self.secrets().seal_opt("secret", trunk.secret.as_deref())?)
                .bind(&trunk.host)
                .bind(trunk.port.map(i32::from))
                .bind(trunk.tcp)
                .bind(trunk.caller_id.as_ref().map(|c| c.as_str().to_owned()))
                .bind(dial_rules_text(&trunk.dial_rules))
                .bind(millis(Utc::now()))
                .bind(trunk.max_calls.map(i64::from))
                .bind(trunk.max_calls_per_second.map(i64::from))
                .bind(header_flags_text(&trunk.header_flags))
                .bind(trunk.emergency)
                .execute(self.writer()).await?;
                Ok(())
            }

            async fn delete_trunk(&self, id: switchboard_core::TrunkId) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM trunks WHERE id = $1").bind(id.to_string()).execute(self.writer()).await
                    .map_err(|e| StoreError::from(e).conflict_as("an emergency number routes through this trunk: change the emergency numbers first"))?;
                not_found_unless_one(done.rows_affected(), "trunk")
            }

            async fn list_dids(&self) -> StoreResult<Vec<switchboard_core::voice::Did>> {
                let rows = sqlx::query("SELECT number, entry_queue_id, language FROM dids").fetch_all(self.reader()).await?;
                let mut dids = rows.iter().map(|row| {
                    let language: Option<String> = row.try_get("language")?;
                    Ok(switchboard_core::voice::Did {
                        number: switchboard_core::voice::PhoneNumber::parse("number", &row.try_get::<String, _>("number")?).map_err(codec::corrupt)?,
                        entry: opt_id(row, "entry_queue_id", QueueId::parse)?,
                        language: language.as_deref().map(Language::parse).transpose().map_err(codec::corrupt)?,
                    })
                }).collect::<StoreResult<Vec<_>>>()?;
                dids.sort_by(|a, b| a.number.cmp(&b.number));
                Ok(dids)
            }

            async fn put_did(&self, did: &switchboard_core::voice::Did) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                if let Some(entry) = did.entry {
                    let found = sqlx::query("SELECT channel FROM queues WHERE id = $1").bind(entry.to_string()).fetch_optional(&mut *tx).await?;
                    match found {
                        Some(row) if row.try_get::<String, _>("channel")? == "voice" => {}
                        Some(_) => return Err(StoreError::Conflict("a number's entry point must be a voice queue or menu".into())),
                        None => return Err(StoreError::NotFound("queue")),
                    }
                }
                sqlx::query(
                    "INSERT INTO dids (number, entry_queue_id, language) VALUES ($1, $2, $3) \
                     ON CONFLICT (number) DO UPDATE SET entry_queue_id = excluded.entry_queue_id, language = excluded.language",
                )
                .bind(did.number.as_str())
                .bind(did.entry.map(|q| q.to_string()))
                .bind(did.language.as_ref().map(|l| l.as_str().to_owned()))
                .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_did(&self, number: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM dids WHERE number = $1").bind(number).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "number")
            }

            async fn set_sip_phone(&self, user: UserId, ha1: Option<&str>) -> StoreResult<()> {
                match ha1 {
                    Some(ha1) => {
                        let mut tx = self.writer().begin().await?;
                        let exists = sqlx::query("SELECT id FROM users WHERE id = $1").bind(user.to_string()).fetch_optional(&mut *tx).await?;
                        if exists.is_none() {
                            return Err(StoreError::NotFound("user"));
                        }
                        sqlx::query("INSERT INTO sip_phones (user_id, ha1) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET ha1 = excluded.ha1")
                            .bind(user.to_string()).bind(ha1).execute(&mut *tx).await?;
                        tx.commit().await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM sip_phones WHERE user_id = $1").bind(user.to_string()).execute(self.writer()).await?;
                    }
                }
                Ok(())
            }

            async fn list_sip_phones(&self) -> StoreResult<Vec<(UserId, Username, String)>> {
                let rows = sqlx::query("SELECT p.user_id, u.username, p.ha1 FROM sip_phones p JOIN users u ON u.id = p.user_id WHERE NOT u.disabled")
                    .fetch_all(self.reader()).await?;
                let mut phones = rows
                    .iter()
                    .map(|row| {
                        let user = codec::id(&row.try_get::<String, _>("user_id")?, UserId::parse)?;
                        let username = Username::parse(&row.try_get::<String, _>("username")?)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        Ok((user, username, row.try_get("ha1")?))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                phones.sort_by(|a: &(UserId, Username, String), b| a.1.as_str().cmp(b.1.as_str()));
                Ok(phones)
            }

            async fn put_voice_audio(&self, key: &str, blob: &str, at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("INSERT INTO voice_audio (key, blob_id, created_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (key) DO UPDATE SET blob_id = excluded.blob_id, created_at = excluded.created_at")
                    .bind(key).bind(blob).bind(millis(at)).execute(self.writer()).await?;
                Ok(())
            }

            async fn voice_audio(&self, key: &str) -> StoreResult<Option<String>> {
                let row = sqlx::query("SELECT blob_id FROM voice_audio WHERE key = $1").bind(key).fetch_optional(self.reader()).await?;
                row.map(|row| Ok(row.try_get("blob_id")?)).transpose()
            }

            async fn delete_voice_audio(&self, key: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM voice_audio WHERE key = $1").bind(key).execute(self.writer()).await?;
                not_found_unless_one(done.rows_affected(), "audio")
            }

            async fn put_calls(&self, calls: &[switchboard_core::voice::CallRecord]) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                for call in calls {
                sqlx::query(&format!(
                    "INSERT INTO calls ({CALL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
                     ON CONFLICT (id) DO UPDATE SET rtp_from_caller = excluded.rtp_from_caller, rtp_to_caller = excluded.rtp_to_caller, \
                     rtp_from_agent = excluded.rtp_from_agent, rtp_to_agent = excluded.rtp_to_agent, ivr_path = excluded.ivr_path, queue_id = excluded.queue_id, agent_id = excluded.agent_id, \
                     contact_id = excluded.contact_id, queued_at = excluded.queued_at, ringing_at = excluded.ringing_at, \
                     answered_at = excluded.answered_at, ended_at = excluded.ended_at, disposition = excluded.disposition, \
                     ended_by = excluded.ended_by, transfers = excluded.transfers, verified_customer = excluded.verified_customer, \
                     bad_actor = excluded.bad_actor, repeat_customer = excluded.repeat_customer, whisper_ms = excluded.whisper_ms"
                ))
                .bind(call.id.to_string())
                .bind(&call.caller)
                .bind(&call.did)
                .bind(&call.ivr_path)
                .bind(call.queue.map(|q| q.to_string()))
                .bind(call.agent.map(|a| a.to_string()))
                .bind(call.contact.map(|c| c.to_string()))
                .bind(millis(call.started_at))
                .bind(call.queued_at.map(millis))
                .bind(call.ringing_at.map(millis))
                .bind(call.answered_at.map(millis))
                .bind(call.ended_at.map(millis))
                .bind(call.disposition.as_str())
                .bind(&call.ended_by)
                .bind(serde_json::to_string(&call.transfers).map_err(codec::corrupt)?)
                .bind(i32::try_from(call.rtp.from_caller).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.to_caller).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.from_agent).unwrap_or(i32::MAX))
                .bind(i32::try_from(call.rtp.to_agent).unwrap_or(i32::MAX))
                .bind(call.properties.verified_customer)
                .bind(call.properties.bad_actor)
                .bind(call.properties.repeat_customer)
                .bind(call.direction.as_str())
                .bind(call.whisper_ms.map(i64::from))
                .execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_call(&self, id: switchboard_core::CallId) -> StoreResult<switchboard_core::voice::CallRecord> {
                let row = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"))
                    .bind(id.to_string()).fetch_optional(self.reader()).await?
                    .ok_or(StoreError::NotFound("call"))?;
                call_from_row(&row)
            }

            async fn call_of_contact(&self, contact: switchboard_core::ContactId) -> StoreResult<Option<switchboard_core::CallId>> {
                let id: Option<String> = sqlx::query_scalar("SELECT id FROM calls WHERE contact_id = $1 ORDER BY started_at DESC LIMIT 1")
                    .bind(contact.to_string()).fetch_optional(self.reader()).await?;
                id.map(|id| codec::id(&id, switchboard_core::CallId::parse)).transpose()
            }

            async fn close_interrupted_calls(&self, now: DateTime<Utc>) -> StoreResult<(u64, u64)> {
                let mut tx = self.writer().begin().await?;
                let calls = sqlx::query(
                    "UPDATE calls SET disposition = 'interrupted', ended_at = $1, ended_by = 'system' \
                     WHERE disposition = 'in_progress'",
                )
                .bind(millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let contacts = sqlx::query(
                    "UPDATE contacts SET status = 'ended', ended_at = $1, end_reason = 'the server stopped during the call' \
                     WHERE channel = 'voice' AND status IN ('queued', 'assigned') \
                     AND id NOT IN (SELECT contact_id FROM voicemails WHERE contact_id IS NOT NULL)",
                )
                .bind(millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok((calls, contacts))
            }

            async fn list_calls(&self, limit: u32) -> StoreResult<Vec<switchboard_core::voice::CallRecord>> {
                let rows = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, id DESC LIMIT $1"))
                    .bind(i64::from(limit)).fetch_all(self.reader()).await?;
                rows.iter().map(call_from_row).collect()
            }

            async fn whisper_settings(&self) -> StoreResult<crate::voice::WhisperSettings> {
                let rows = sqlx::query("SELECT scope, message, text, speed, countdown FROM whisper_settings")
                    .fetch_all(self.reader()).await?;
                let mut settings = crate::voice::WhisperSettings::default();
                for row in &rows {
                    let scope: String = row.try_get("scope")?;
                    let message = crate::voice::whisper_message(row.try_get("message")?, row.try_get("text")?)?;
                    let speed = row
                        .try_get::<Option<i32>, _>("speed")?
                        .map(|s| u16::try_from(s).map_err(codec::corrupt))
                        .transpose()?;
                    let countdown: Option<bool> = row.try_get("countdown")?;
                    if scope == "center" {
                        let center = &mut settings.center;
                        center.message = message.unwrap_or(center.message.clone());
                        center.speed = speed.unwrap_or(center.speed);
                        center.countdown = countdown.unwrap_or(center.countdown);
                    } else {
                        let queue = codec::id(&scope, QueueId::parse)?;
                        settings.queues.insert(queue, switchboard_core::whisper::WhisperOverride { message, speed, countdown });
                    }
                }
                Ok(settings)
            }

            async fn put_center_whisper(&self, whisper: &switchboard_core::whisper::Whisper) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO whisper_settings (scope, message, text, speed, countdown) VALUES ('center', $1, $2, $3, $4) \
                     ON CONFLICT (scope) DO UPDATE SET message = excluded.message, text = excluded.text, speed = excluded.speed, countdown = excluded.countdown",
                )
                .bind(whisper.message.as_str())
                .bind(whisper.message.text())
                .bind(i32::from(whisper.speed))
                .bind(whisper.countdown)
                .execute(self.writer()).await?;
                Ok(())
            }

            async fn put_queue_whisper(&self, queue: QueueId, changes: &switchboard_core::whisper::WhisperOverride) -> StoreResult<()> {
                let mut tx = self.writer().begin().await?;
                let found = sqlx::query("SELECT channel FROM queues WHERE id = $1").bind(queue.to_string()).fetch_optional(&mut *tx).await?;
                match found {
                    Some(row) if row.try_get::<String, _>("channel")? == "voice" => {}
                    Some(_) => return Err(StoreError::Conflict("a whisper belongs to a voice queue".into())),
                    None => return Err(StoreError::NotFound("queue")),
                }
                sqlx::query(
                    "INSERT INTO whisper_settings (scope, message, text, speed, countdown) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (scope) DO UPDATE SET message = excluded.message, text = excluded.text, speed = excluded.speed, countdown = excluded.countdown",
                )
                .bind(queue.to_string())
                .bind(changes.message.as_ref().map(|m| m.as_str()))
                .bind(changes.message.as_ref().and_then(|m| m.text()))
                .bind(changes.speed.map(i32::from))
                .bind(changes.countdown)
                .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_queue_whisper(&self, queue: QueueId) -> StoreResult<()> {
                sqlx::query("DELETE FROM whisper_settings WHERE scope = $1").bind(queue.to_string()).execute(self.writer()).await?;
                Ok(())
            }
        }
    };
}

pub(crate) use voice_sql;
